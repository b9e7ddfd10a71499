import Crypto
import Glibc
import PosternUtil

/// The `X-Postern-Guard:` header: an HMAC (key: `[Sender] SecureHash`) over the host, queue id
/// and the SHA-256 of the body. A message that comes back with a valid guard was scanned by
/// a Postern sharing the key and is passed without a second scan. Binding the body hash means
/// the header cannot be copied onto another message.
public struct LoopGuard: Sendable {
    public static let headerName = "X-Postern-Guard"
    private let key: SymmetricKey
    /// The HMAC with the key taken in, copied for each guard senderd adds (the key's own
    /// hashing is done once, not per message).
    private let keyed: HMAC<SHA256>

    public init(key: [UInt8]) {
        self.key = SymmetricKey(data: key)
        keyed = HMAC<SHA256>(key: self.key)
    }

    /// The header field (without CRLF) senderd adds to a message on its way out.
    public func header(host: String, id: String, bodyHash: String) -> String {
        "\(LoopGuard.headerName): v=1; h=\(host); id=\(id); mac=\(mac(host: host, id: id, bodyHash: bodyHash))"
    }

    /// Checks a guard header's value (after `X-Postern-Guard:`) against the body hash.
    public func isValid(value: String, bodyHash: String) -> Bool {
        stamp(value: value, bodyHash: bodyHash) != nil
    }

    /// The host and queue id of a valid guard, nil for an invalid one.
    public func stamp(value: String, bodyHash: String) -> (host: String, id: String)? {
        var fields: [String: String] = [:]
        for part in value.split(separator: ";") {
            let kv = part.split(separator: "=", maxSplits: 1)
            guard kv.count == 2 else { continue }
            fields[String(kv[0].trimmingSpaces)] = String(kv[1].trimmingSpaces)
        }
        // A valid guard skips scanning: compare in constant time, so that timing cannot
        // lead a forger to a MAC byte by byte.
        guard fields["v"] == "1", let h = fields["h"], let id = fields["id"], let m = fields["mac"],
              let code = [UInt8](hex: Substring(m)), code.count == SHA256.byteCount,
              HMAC<SHA256>.isValidAuthenticationCode(code, authenticating: Array(Self.message(host: h, id: id, bodyHash: bodyHash).utf8),
                                                     using: key)
        else { return nil }
        return (h, id)
    }

    private static func message(host: String, id: String, bodyHash: String) -> String { "1|\(host)|\(id)|\(bodyHash)" }

    private func mac(host: String, id: String, bodyHash: String) -> String {
        var hmac = keyed
        hmac.update(data: Array(Self.message(host: host, id: id, bodyHash: bodyHash).utf8))
        return hmac.finalize().hex
    }

    /// The configured secret, or else a random one kept in the spool (`.guard-key`), so that all
    /// three daemons of one installation agree without configuration (``SpoolSecret``).
    public static func loadKey(secureHash: String, layout: SpoolLayout) throws(SpoolError) -> [UInt8] {
        try SpoolSecret.load(configured: secureHash, name: SpoolSecret.guardKey, layout: layout)
    }
}

/// The key is a secret: a service printed at debug level (ServiceLifecycle's "Starting
/// service") must not show it.
extension LoopGuard: CustomStringConvertible, CustomDebugStringConvertible {
    public var description: String { "LoopGuard(key: <redacted>)" }
    public var debugDescription: String { description }
}
