import Glibc
import PosternSMTP
import PosternUtil

/// `[Sender] AuthFile`: credentials for next hops that want SMTP AUTH, in the shape of
/// Postfix's `smtp_sasl_password_maps` source file (`sasl_passwd`):
///
/// ```
/// # next hop                 username:password
/// [smtp.example.net]:587     relay-user:s3cret
/// inet:10025@192.0.2.10      filter:pa ss word      ; the password is the rest of the line
/// mx.example.org             other:secret           ; a host alone: any port
/// ```
/// `#` starts a comment line; the key is a ``NextHopMatch``; the value splits at the first `:`.
/// An exact host-and-port (or socket) line wins over a host-only line. The file must not be
/// accessible by group or others, or the whole configuration is refused.
public struct AuthFile: Sendable {
    /// Far more than any relay setup needs; stops a mistyped path from eating memory.
    public static let maximumSize = 1 << 20

    /// The file as resolved.
    public var path: String
    /// Each line's match and credentials, in file order.
    public var entries: [(match: NextHopMatch, credentials: SASLCredentials)]

    /// The credentials for `endpoint`: an exact line first, then a host-only one.
    public func credentials(for endpoint: Endpoint) -> SASLCredentials? {
        entries.first { if case .location = $0.match { $0.match.matches(endpoint) } else { false } }?.credentials
            ?? entries.first { $0.match.matches(endpoint) }?.credentials
    }

    /// Reads `path`: permission problems and unreadable files are one message (for the
    /// configuration key's position); syntax errors point into the file itself.
    public static func load(_ path: String) -> Result<AuthFile, AuthFileError> {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { return .failure(.unreadable(FileReadError(path: path, code: errno).description)) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let code = errno
            close(fd)
            return .failure(.unreadable(FileReadError(path: path, code: code).description))
        }
        close(fd)
        // Passwords in a file others can read are not secret (Postfix only warns; we refuse).
        if st.st_mode & 0o077 != 0 {
            let mode = String(st.st_mode & 0o777, radix: 8)
            return .failure(.unreadable("'\(path)' is accessible by group or others (mode 0\(mode)): chmod 600 it"))
        }
        let bytes: [UInt8]
        do throws(SpoolError) {
            bytes = try SysCall.readFile(path, limit: maximumSize)
        } catch {
            return .failure(.unreadable(FileReadError(path: path, code: error.errno).description))
        }
        let (file, errors) = parse(String(decoding: bytes, as: UTF8.self), path: path)
        return errors.isEmpty ? .success(file) : .failure(.syntax(errors))
    }

    /// Parses the file's text; errors are `path:line:column`.
    package static func parse(_ text: String, path: String) -> (AuthFile, [ConfigError]) {
        var file = AuthFile(path: path, entries: [])
        var errors: [ConfigError] = []
        var seen: [NextHopMatch: Int] = [:]
        // Bytes, not Characters: "\r\n" is one Character and would hide the line end.
        for (index, raw) in text.utf8.split(separator: 0x0A, omittingEmptySubsequences: false).enumerated() {
            let line = String(decoding: raw.filter { $0 != 0x0D }, as: UTF8.self)
            let trimmed = ASCII.trim(line)
            guard !trimmed.isEmpty, !trimmed.hasPrefix("#") else { continue }
            let indent = line.unicodeScalars.prefix { $0 == " " || $0 == "\t" }.count
            func report(_ column: Int, _ message: String) {
                errors.append(ConfigError(file: path, line: index + 1, column: column, message: message))
            }
            let parts = trimmed.split(maxSplits: 1, whereSeparator: { $0 == " " || $0 == "\t" })
            let key = String(parts[0])
            guard parts.count == 2 else {
                // No text of the line in messages: a misplaced password must not reach a log.
                report(indent + key.unicodeScalars.count + 1, "expected a next hop, then username:password")
                continue
            }
            let value = ASCII.trim(parts[1])
            let match: NextHopMatch
            do throws(EndpointError) {
                match = try NextHopMatch.parse(key)
            } catch {
                report(indent + 1 + error.offset, "invalid next hop: \(error.description)")
                continue
            }
            guard let colon = value.firstIndex(of: ":"), colon != value.startIndex else {
                report(Self.valueColumn(line, indent, key), "expected username:password after the next hop")
                continue
            }
            if let first = seen[match] {
                report(indent + 1, "next hop \(match) is already listed on line \(first)")
                continue
            }
            seen[match] = index + 1
            file.entries.append((match, SASLCredentials(username: String(value[..<colon]),
                                                        password: String(value[value.index(after: colon)...]))))
        }
        return (file, errors)
    }

    private static func valueColumn(_ line: String, _ indent: Int, _ key: String) -> Int {
        let afterKey = line.unicodeScalars.dropFirst(indent + key.unicodeScalars.count)
        return indent + key.unicodeScalars.count + afterKey.prefix { $0 == " " || $0 == "\t" }.count + 1
    }
}

/// Why an `AuthFile` was refused.
public enum AuthFileError: Error, Sendable {
    /// Missing, unreadable or too open: one message for the `AuthFile` key.
    case unreadable(String)
    /// Lines that do not parse, positioned in the file itself.
    case syntax([ConfigError])
}
