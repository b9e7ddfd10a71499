import NIOCore

/// An SMTP reply: a three-digit code, an optional enhanced status and one or more text lines.
/// - SeeAlso: RFC 5321 §4.2
public struct Reply: Sendable, Hashable, CustomStringConvertible {
    public var code: Int
    public var status: EnhancedStatus?
    public var lines: [String]

    public init(_ code: Int, _ status: EnhancedStatus?, _ text: String) {
        self.init(code, status, lines: [text])
    }

    public init(_ code: Int, _ status: EnhancedStatus?, lines: [String]) {
        self.code = code
        self.status = status
        self.lines = lines.isEmpty ? [""] : lines
    }

    public var isPositive: Bool { code >= 200 && code < 400 }
    public var isTransient: Bool { code >= 400 && code < 500 }
    public var isPermanent: Bool { code >= 500 }

    /// The text of all lines, joined, without the enhanced status.
    public var text: String { lines.joined(separator: " ") }

    public var description: String {
        let s = status.map { "\($0) " } ?? ""
        return "\(code) \(s)\(text)"
    }

    /// `Reply-line = *( Reply-code "-" [ textstring ] CRLF ) Reply-code [ SP textstring ] CRLF`
    /// The enhanced status is repeated on every line (RFC 2034 §3). CR and LF in the text
    /// are replaced so that a reply can never be split or smuggled.
    public func write(into buffer: inout ByteBuffer) {
        for (i, line) in lines.enumerated() {
            buffer.writeString(String(code))
            buffer.writeInteger(UInt8(ascii: i == lines.count - 1 ? " " : "-"))
            if let status {
                buffer.writeString(status.description)
                if !line.isEmpty { buffer.writeInteger(UInt8(ascii: " ")) }
            }
            for byte in line.utf8 {
                buffer.writeInteger(byte == 13 || byte == 10 || byte == 0 ? UInt8(ascii: " ") : byte)
            }
            buffer.writeStaticString("\r\n")
        }
    }

    public var bytes: ByteBuffer {
        var b = ByteBuffer()
        write(into: &b)
        return b
    }
}
