import PosternMIME
import PosternUtil
/// A PEM file named in the configuration (a CA bundle, a certificate chain, a private key),
/// read and checked when the configuration is loaded, so that `posternctl config check` and a
/// SIGHUP find a missing or wrong file instead of the first delivery.
///
/// Only the PEM structure is checked here (labels, base64, a DER SEQUENCE inside); the daemon
/// that uses the file parses the certificates or key with its TLS library.
/// - SeeAlso: RFC 7468
public struct PEMFile: Sendable, Hashable {
    /// What the file must hold.
    public enum Kind: Sendable, Hashable {
        /// One or more `CERTIFICATE` blocks.
        case certificates
        /// One unencrypted private key (`PRIVATE KEY`, `RSA PRIVATE KEY`, `EC PRIVATE KEY`).
        case privateKey
    }

    /// A CA bundle such as Debian's `ca-certificates.crt` is about 200 KB; the cap stops a
    /// mistyped path (a device, a mailbox) from eating memory at load time.
    public static let maximumSize = 8 << 20

    /// The path as written in the configuration, resolved against its directory.
    public var path: String
    /// The file's bytes as read at load time.
    public var bytes: [UInt8]
    /// How many PEM blocks of the wanted kind it holds.
    public var blocks: Int

    /// Reads and checks `path`.
    public static func load(_ path: String, kind: Kind) throws(PEMFileError) -> PEMFile {
        let bytes: [UInt8]
        do throws(SpoolError) {
            bytes = try SysCall.readFile(path, limit: maximumSize)
        } catch {
            throw PEMFileError(hint: FileReadError(path: path, code: error.errno).description)
        }
        let count = try check(String(decoding: bytes, as: UTF8.self), kind: kind, path: path)
        return PEMFile(path: path, bytes: bytes, blocks: count)
    }

    /// `-----BEGIN LABEL-----` base64 `-----END LABEL-----`, as many as the file holds; text
    /// around the blocks (openssl's "subject=" lines) is allowed, as OpenSSL allows it.
    package static func check(_ text: String, kind: Kind, path: String) throws(PEMFileError) -> Int {
        var count = 0
        var label: String?
        var body: [UInt8] = []
        for raw in text.split(omittingEmptySubsequences: true, whereSeparator: { $0 == "\n" || $0 == "\r\n" || $0 == "\r" }) {
            let line = ASCII.trim(raw)
            if let open = label {
                if line == "-----END \(open)-----" {
                    let der = TransferDecoding.base64(body)
                    guard der.first == 0x30 else { throw PEMFileError(hint: "'\(path)': the \(open) block is not valid base64 DER") }
                    if wanted(open, kind) { count += 1 }
                    label = nil
                    body = []
                } else if line.hasPrefix("-----") {
                    throw PEMFileError(hint: "'\(path)': the \(open) block has no END line")
                } else {
                    body += line.utf8
                }
            } else if line.hasPrefix("-----BEGIN "), line.hasSuffix("-----") {
                let name = String(line.dropFirst(11).dropLast(5))
                if name == "ENCRYPTED PRIVATE KEY" && kind == .privateKey {
                    throw PEMFileError(hint: "'\(path)': the private key is encrypted; a daemon cannot ask for its passphrase")
                }
                label = name
            }
        }
        if let open = label { throw PEMFileError(hint: "'\(path)': the \(open) block has no END line") }
        switch kind {
        case .certificates where count == 0:
            throw PEMFileError(hint: "'\(path)' holds no PEM certificate (-----BEGIN CERTIFICATE-----)")
        case .privateKey where count == 0:
            throw PEMFileError(hint: "'\(path)' holds no PEM private key (-----BEGIN PRIVATE KEY-----)")
        case .privateKey where count > 1:
            throw PEMFileError(hint: "'\(path)' holds \(count) private keys; give exactly one")
        default:
            return count
        }
    }

    private static func wanted(_ label: String, _ kind: Kind) -> Bool {
        switch kind {
        case .certificates: label == "CERTIFICATE" || label == "TRUSTED CERTIFICATE"
        case .privateKey: label == "PRIVATE KEY" || label == "RSA PRIVATE KEY" || label == "EC PRIVATE KEY"
        }
    }
}

/// A PEM file that is missing, unreadable or not what its key needs.
public struct PEMFileError: Error, Sendable, CustomStringConvertible {
    /// What is wrong, with the path.
    public var hint: String
    public var description: String { hint }
}
