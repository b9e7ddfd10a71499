import PosternMIME
import PosternUtil
/// The blocks of a PEM file (RFC 7468 §2, lax as OpenSSL is about text around the blocks):
/// their labels and DER contents, checked far enough to tell a certificate from a key, a
/// truncated file from a whole one, and text from base64.
public enum PEM {
    public struct Block: Sendable, Hashable {
        /// `CERTIFICATE`, `PRIVATE KEY`, `RSA PRIVATE KEY`, …
        public var label: String
        /// 1-based line of the BEGIN line.
        public var line: Int
        public var der: [UInt8]
    }

    /// ```
    /// block = "-----BEGIN " label "-----" LF *(base64 LF) "-----END " label "-----"
    /// ```
    public static func blocks(_ text: String) throws(PEMError) -> [Block] {
        var blocks: [Block] = []
        var open: (label: String, line: Int, body: [UInt8])?
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = ASCII.trim(raw)
            if let label = armor(line, "BEGIN") {
                if let open { throw PEMError("'-----BEGIN \(open.label)-----' on line \(open.line) has no END line") }
                open = (label, index + 1, [])
            } else if let label = armor(line, "END") {
                guard let current = open, current.label == label else {
                    throw PEMError("'-----END \(label)-----' on line \(index + 1) ends no BEGIN line")
                }
                guard current.body.count % 4 == 0, !current.body.isEmpty,
                      current.body.allSatisfy({ isBase64($0) }) else {
                    throw PEMError("\(label) on line \(current.line) is not base64")
                }
                let der = TransferDecoding.base64(current.body)
                guard derLength(der, at: 0) == der.count else {
                    throw PEMError("\(label) on line \(current.line) is not DER (truncated or damaged)")
                }
                blocks.append(Block(label: label, line: current.line, der: der))
                open = nil
            } else if open != nil, !line.contains(":") {   // RFC 1421 header lines are not the body
                open!.body += Array(line.utf8)
            }
        }
        if let open { throw PEMError("'-----BEGIN \(open.label)-----' on line \(open.line) has no END line") }
        return blocks
    }

    private static func armor(_ line: String, _ word: String) -> String? {
        let head = "-----\(word) ", tail = "-----"
        guard line.hasPrefix(head), line.hasSuffix(tail), line.utf8.count > head.utf8.count + tail.utf8.count else { return nil }
        return String(line.dropFirst(head.count).dropLast(tail.count))
    }

    private static func isBase64(_ byte: UInt8) -> Bool {
        ASCII.isAlphanumeric(byte) || byte == 0x2B || byte == 0x2F || byte == 0x3D
    }

    /// Tag and length octets of the SEQUENCE at the start of `der` (where its contents begin).
    package static func derHeaderLength(_ der: [UInt8]) -> Int {
        guard der.count >= 2 else { return der.count }
        return der[1] < 0x80 ? 2 : 2 + Int(der[1] & 0x7F)
    }

    /// Length of the DER SEQUENCE at `start` with its tag and length octets (X.690 §8.1), or
    /// nil when there is none: every certificate and key is one.
    package static func derLength(_ der: [UInt8], at start: Int) -> Int? {
        guard start + 2 <= der.count, der[start] == 0x30 else { return nil }
        let first = Int(der[start + 1])
        if first < 0x80 { return 2 + first }
        let octets = first & 0x7F
        guard octets >= 1, octets <= 4, start + 2 + octets <= der.count else { return nil }
        var length = 0
        for i in 0..<octets { length = length << 8 | Int(der[start + 2 + i]) }
        return 2 + octets + length
    }
}

/// A PEM file that is not what it should be.
public struct PEMError: Error, Sendable, Hashable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
