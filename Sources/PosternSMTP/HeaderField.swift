import NIOCore

/// A header field of a message, unfolded. For the rules' `header:` term.
/// - SeeAlso: RFC 5322 §2.2
public struct HeaderField: Sendable, Hashable {
    public var name: String
    public var value: String

    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }

    /// How much of a message is looked at for its header section: fields past it are not seen.
    public static let sectionLimit = 1 << 20

    /// Parses the header section at the start of `message` (up to the first empty line).
    public static func parseSection(_ message: ByteBuffer, limit: Int = sectionLimit) -> [HeaderField] {
        parseSection(bytes: message.readableBytesView.prefix(limit))
    }

    /// The same for a message held as an array.
    public static func parseSection(_ message: [UInt8], limit: Int = sectionLimit) -> [HeaderField] {
        parseSection(bytes: message.prefix(limit))
    }

    private static func parseSection<Bytes: Collection<UInt8>>(bytes: Bytes) -> [HeaderField] where Bytes.Index == Int {
        var fields: [HeaderField] = []
        var lineStart = bytes.startIndex
        var current: (String, String)?
        var i = bytes.startIndex
        while i < bytes.endIndex {
            guard bytes[i] == UInt8(ascii: "\n") else { i += 1; continue }
            var end = i
            if end > lineStart && bytes[end - 1] == UInt8(ascii: "\r") { end -= 1 }
            let line = String(decoding: bytes[lineStart..<end], as: UTF8.self)
            lineStart = i + 1
            i += 1
            if line.isEmpty { break }
            if line.first == " " || line.first == "\t" {
                if current != nil { current!.1 += " " + line.drop(while: { $0 == " " || $0 == "\t" }) }
                continue
            }
            if let c = current { fields.append(HeaderField(name: c.0, value: c.1)) }
            if let colon = line.firstIndex(of: ":") {
                current = (String(line[..<colon]).trimmingTrailingSpace, String(line[line.index(after: colon)...].drop(while: { $0 == " " || $0 == "\t" })))
            } else {
                current = nil
            }
        }
        if let c = current { fields.append(HeaderField(name: c.0, value: c.1)) }
        return fields
    }
}

extension String {
    fileprivate var trimmingTrailingSpace: String {
        var s = Substring(self)
        while s.last == " " || s.last == "\t" { s = s.dropLast() }
        return String(s)
    }
}
