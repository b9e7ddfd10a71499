import PosternSMTP
import PosternUtil
/// `[Sender]` keys for STARTTLS and SMTP AUTH to the next hop. The files they name are read
/// here, at load time, so that `posternctl config check` and SIGHUP find a missing or wrong one.
/// Relative names are relative to the configuration file's directory, like `file:` lookups.
extension SenderSection {
    package static func readTLS(_ reader: inout SectionReader, into section: inout SenderSection) {
        if let raw = reader.value("TLS") {
            if let policy = TLSPolicy(text: raw.text) {
                section.tls = policy
            } else {
                reader.report(line: raw.line, column: raw.column,
                              "invalid TLS '\(raw.text)': expected none, may, encrypt or verify")
            }
        }
        section.tlsCAFile = pem(&reader, "TLSCAFile", .certificates)
        let certificate = reader.section.keys["tlscertificate"]?.values.first
        let key = reader.section.keys["tlskey"]?.values.first
        section.tlsCertificate = pem(&reader, "TLSCertificate", .certificates)
        section.tlsKey = pem(&reader, "TLSKey", .privateKey)
        let given = (certificate.map { !$0.text.isEmpty } ?? false, key.map { !$0.text.isEmpty } ?? false)
        if given.0 != given.1, let raw = given.0 ? certificate : key {
            reader.report(line: raw.line, column: raw.keyColumn, "TLSCertificate and TLSKey must be given together")
        }
        if let raw = reader.value("TLSServerName"), !raw.text.isEmpty {
            if isHostName(raw.text) {
                section.tlsServerName = ASCII.lowercased(raw.text)
            } else {
                reader.report(line: raw.line, column: raw.column,
                              "invalid TLSServerName '\(raw.text)': expected a host name such as mx.example.com")
            }
        }
    }

    package static func readAuth(_ reader: inout SectionReader, into section: inout SenderSection) {
        if let raw = reader.value("AuthFile"), !raw.text.isEmpty {
            switch AuthFile.load(TextFile.resolve(raw.text, relativeTo: TextFile.directory(of: reader.file))) {
            case .success(let file): section.authFile = file
            case .failure(.unreadable(let why)): reader.report(line: raw.line, column: raw.column, "AuthFile: \(why)")
            case .failure(.syntax(let errors)): reader.report(errors)
            }
        }
        for item in reader.items("AuthWithoutTLS") ?? [] {
            do throws(EndpointError) {
                section.authWithoutTLS.append(try NextHopMatch.parse(item.text))
            } catch {
                reader.report(line: item.line, column: item.column + error.offset, error.description)
            }
        }
    }

    private static func pem(_ reader: inout SectionReader, _ key: String, _ kind: PEMFile.Kind) -> PEMFile? {
        guard let raw = reader.value(key), !raw.text.isEmpty else { return nil }
        do throws(PEMFileError) {
            return try PEMFile.load(TextFile.resolve(raw.text, relativeTo: TextFile.directory(of: reader.file)), kind: kind)
        } catch {
            reader.report(line: raw.line, column: raw.column, "\(key): \(error.hint)")
            return nil
        }
    }

    /// RFC 1123 host name: dot-separated labels of letters, digits and inner hyphens; not an
    /// address (a certificate's IP entries are checked against the route's own address).
    private static func isHostName(_ text: String) -> Bool {
        guard text.utf8.count <= 253, !text.utf8.allSatisfy({ ASCII.isDigit($0) || $0 == 0x2E }) else { return false }
        let labels = text.split(separator: ".", omittingEmptySubsequences: false)
        return labels.allSatisfy { label in
            !label.isEmpty && label.utf8.count <= 63 && label.first != "-" && label.last != "-"
                && label.utf8.allSatisfy { ASCII.isAlphanumeric($0) || $0 == 0x2D }
        }
    }
}
