/// Makes a message with 8-bit octets fit a next hop that does not offer 8BITMIME, as RFC 6152
/// §3 allows: every MIME part whose body has 8-bit octets is encoded quoted-printable or base64,
/// multiparts and message/rfc822 are walked into, and the parts that are 7-bit already stay byte
/// for byte as they were. Only Content-Transfer-Encoding fields change (and MIME-Version is
/// added to a converted message that lacks it). Where no encoding can make the message 7-bit
/// without changing what it says (8-bit header fields, signed parts, broken structure) it is
/// refused with the reason.
/// - SeeAlso: RFC 6152 §3, RFC 2045 §6, RFC 2046 §5, RFC 1847 §2
public enum EightBitDowngrade {
    /// One part that was encoded.
    public struct Conversion: Sendable, Hashable {
        public var contentType: String
        public var encoding: TransferEncoding
    }

    /// The converted message and what was done to it.
    public struct Result: Sendable {
        public var message: [UInt8]
        public var conversions: [Conversion]

        /// "2 parts: 1 quoted-printable, 1 base64", for the log.
        public var summary: String {
            let qp = conversions.filter { $0.encoding == .quotedPrintable }.count
            let parts = conversions.count == 1 ? "1 part" : "\(conversions.count) parts"
            return "\(parts): \(qp) quoted-printable, \(conversions.count - qp) base64"
        }
    }

    /// `message` made 7-bit, or nil when it is 7-bit already and nothing was done.
    /// The message has CRLF line ends, as in the spool; the walker also reads bare LF.
    public static func convert(_ message: [UInt8]) throws(EightBitRefusal) -> Result? {
        guard EightBitScan.contains(message) else { return nil }
        return try message.withUnsafeBufferPointer { (buffer) throws(EightBitRefusal) -> Result in
            var walk = DowngradeWalk(buffer: buffer, source: message)
            _ = try walk.entity(from: 0, depth: 0, defaultType: "text/plain", isMessage: true)
            let out = walk.apply()
            // Every octet lies in a header, a body, a preamble or an epilogue, all dealt with
            // above; should one slip through anyway, refusing beats sending it 8-bit.
            guard !EightBitScan.contains(out) else {
                throw EightBitRefusal(.composite, "8-bit octets outside any part that could be encoded")
            }
            return Result(message: out, conversions: walk.conversions)
        }
    }
}
