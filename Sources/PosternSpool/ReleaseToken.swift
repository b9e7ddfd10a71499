import Crypto
import Glibc
import PosternUtil

/// The token that lets one recipient release one quarantined message by replying to its
/// notice: the queue id, the expiry and an HMAC-SHA-256 (key: `[Quarantine] ReleaseSecret`)
/// over both and the recipient's address, all in Crockford base-32 so that it survives as the
/// extension of a plus-address (`quarantine-release+TOKEN@example.com`) whatever case an MTA
/// gives it.
///
/// 20 characters of id, 7 of expiry (Unix seconds, 35 bits: until the year 3058), 16 of MAC
/// (the first 80 bits, RFC 2104 §5's floor): 43 in all, so that `quarantine-release+TOKEN`
/// stays within RFC 5321's 64 octets of local part.
/// - SeeAlso: docs/postfix.md (Quarantine release by reply)
public struct ReleaseToken: Sendable {
    public static let length = QueueID.length + expiryLength + macLength
    private static let expiryLength = 7
    private static let macLength = 16
    private static let macBytes = macLength * 5 / 8

    /// Why a token was refused.
    public enum Refusal: Error, Sendable, Equatable, CustomStringConvertible {
        /// Not a token at all: wrong length or characters.
        case malformed
        /// The MAC does not match: forged, altered, or made for another recipient.
        case forged
        /// Genuine, but past its expiry (Unix seconds).
        case expired(at: Int)

        public var description: String {
            switch self {
            case .malformed: "malformed token"
            case .forged: "token not valid for this sender (forged, altered or for another recipient)"
            case .expired(let at): "token expired at \(Timestamp.format(time_t(at), Timestamp.rfc5322))"
            }
        }
    }

    private let key: SymmetricKey
    /// Unix seconds now; tests put a fake clock here.
    private let clock: @Sendable () -> Int

    public init(key: [UInt8], clock: @escaping @Sendable () -> Int = { Int(time(nil)) }) {
        self.key = SymmetricKey(data: key)
        self.clock = clock
    }

    /// A token for `recipient` to release entry `id`, valid for `lifetime`.
    public func make(id: String, recipient: String, lifetime: Duration) -> String {
        let expires = clock() + Int(lifetime.components.seconds)
        let expiry = Self.encode(UInt64(max(0, expires)), digits: Self.expiryLength)
        return id + expiry + mac(id: id, expiry: expiry, recipient: recipient)
    }

    /// The queue id of a token that `recipient` may use now. The MAC is checked first, in
    /// constant time, so that an expired token says so only when it is genuine.
    public func verify(_ token: String, recipient: String) -> Result<String, Refusal> {
        let upper = ASCII.uppercased(token)
        guard upper.utf8.count == Self.length, upper.utf8.allSatisfy(Self.alphabet.contains) else { return .failure(.malformed) }
        let bytes = Array(upper.utf8)
        let id = String(decoding: bytes[..<QueueID.length], as: UTF8.self)
        let expiry = String(decoding: bytes[QueueID.length..<(QueueID.length + Self.expiryLength)], as: UTF8.self)
        let given = Self.decodeBytes(bytes[(QueueID.length + Self.expiryLength)...])
        let full = HMAC<SHA256>.authenticationCode(for: Self.message(id: id, expiry: expiry, recipient: recipient), using: key)
        // Compare the truncated MAC in constant time: no early exit on the first wrong byte.
        var difference: UInt8 = 0
        for (a, b) in zip(Array(full).prefix(Self.macBytes), given) { difference |= a ^ b }
        guard given.count == Self.macBytes, difference == 0 else { return .failure(.forged) }
        let expires = Int(Self.decode(expiry))
        guard clock() < expires else { return .failure(.expired(at: expires)) }
        return .success(id)
    }

    private func mac(id: String, expiry: String, recipient: String) -> String {
        let code = Array(HMAC<SHA256>.authenticationCode(for: Self.message(id: id, expiry: expiry, recipient: recipient), using: key))
        return Self.encodeBytes(code.prefix(Self.macBytes))
    }

    /// Domain-separated from every other use of a key; the address compared without case.
    private static func message(id: String, expiry: String, recipient: String) -> [UInt8] {
        Array("postern-release|1|\(id)|\(expiry)|\(ASCII.lowercased(recipient))".utf8)
    }

    private static let alphabet = Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ".utf8)

    private static func encode(_ value: UInt64, digits: Int) -> String {
        String(decoding: (0..<digits).reversed().map { alphabet[Int((value >> (UInt64($0) * 5)) & 31)] }, as: UTF8.self)
    }

    private static func decode(_ text: String) -> UInt64 {
        text.utf8.reduce(0) { ($0 << 5) | UInt64(alphabet.firstIndex(of: $1) ?? 0) }
    }

    /// Bytes as base-32, 5 bits a digit, most significant first (10 bytes → 16 digits).
    private static func encodeBytes(_ bytes: ArraySlice<UInt8>) -> String {
        var out: [UInt8] = []
        var buffer = 0, bits = 0
        for b in bytes {
            buffer = (buffer << 8) | Int(b)
            bits += 8
            while bits >= 5 {
                bits -= 5
                out.append(alphabet[(buffer >> bits) & 31])
            }
        }
        if bits > 0 { out.append(alphabet[(buffer << (5 - bits)) & 31]) }
        return String(decoding: out, as: UTF8.self)
    }

    private static func decodeBytes(_ digits: ArraySlice<UInt8>) -> [UInt8] {
        var out: [UInt8] = []
        var buffer = 0, bits = 0
        for d in digits {
            buffer = ((buffer << 5) | (alphabet.firstIndex(of: d) ?? 0)) & 0xFFFF
            bits += 5
            if bits >= 8 {
                bits -= 8
                out.append(UInt8((buffer >> bits) & 0xFF))
            }
        }
        return out
    }

    /// `[Quarantine] ReleaseSecret`, or else a random key kept in the spool (`.release-key`),
    /// made by scannerd; see ``SpoolSecret``.
    public static func loadKey(secret: String, layout: SpoolLayout, create: Bool = true) throws(SpoolError) -> [UInt8] {
        try SpoolSecret.load(configured: secret, name: SpoolSecret.releaseKey, layout: layout, create: create)
    }
}

/// The key is a secret: nothing prints it.
extension ReleaseToken: CustomStringConvertible, CustomDebugStringConvertible {
    public var description: String { "ReleaseToken(key: <redacted>)" }
    public var debugDescription: String { description }
}

extension ReleaseToken {
    /// `quarantine-release+TOKEN@example.com` for the configured `quarantine-release@example.com`.
    public static func address(_ releaseAddress: String, token: String) -> String {
        guard let at = releaseAddress.lastIndex(of: "@") else { return releaseAddress + "+" + token }
        return releaseAddress[..<at] + "+" + token + releaseAddress[at...]
    }

    /// The token of a recipient address that is the release address with one (`""` for the
    /// release address itself); nil for any other address. Local part and domain are compared
    /// without case, as MTAs look them up.
    public static func token(in address: String, releaseAddress: String) -> String? {
        guard let at = address.lastIndex(of: "@"), let baseAt = releaseAddress.lastIndex(of: "@"),
              ASCII.lowercased(String(address[at...])) == ASCII.lowercased(String(releaseAddress[baseAt...]))
        else { return nil }
        let local = ASCII.lowercased(String(address[..<at])), base = ASCII.lowercased(String(releaseAddress[..<baseAt]))
        if local == base { return "" }
        guard local.hasPrefix(base + "+") else { return nil }
        return String(address[..<at].dropFirst(base.count + 1))
    }
}
