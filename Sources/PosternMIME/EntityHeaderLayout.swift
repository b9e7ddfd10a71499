import PosternUtil
/// Where the fields of one entity header are, as the converter needs them: the
/// Content-Transfer-Encoding fields it may rewrite, whether MIME-Version is there, the first
/// field with an 8-bit octet, and where a new field goes. The rest of the header is never
/// touched, so only positions are kept.
/// - SeeAlso: RFC 5322 §2.2 (fields, folding), RFC 2045 §4 and §6.1
package struct EntityHeaderLayout {
    /// One field: from its name to the start of the next field, continuation lines and line ends included.
    package struct Field {
        package let range: Range<Int>
        package let colon: Int
    }

    /// Every Content-Transfer-Encoding field, in order.
    package var transferEncodings: [Field] = []
    /// The first Content-Transfer-Encoding's mechanism, lower-cased; "" when there is none
    /// (RFC 2045 §6.1: then it is 7bit). The first decides, as for ``MIMEWalk/parseHeader(from:)``.
    package var transferEncoding = ""
    package var hasMIMEVersion = false
    /// The name of the first field holding an octet above 127, nil when the header is 7-bit.
    package var eightBitField: String?
    /// Where a new field goes: before the empty line, or before the line that ended the header.
    package var end: Int

    private static let encodingName = Array("content-transfer-encoding".utf8)
    private static let versionName = Array("mime-version".utf8)

    /// fields := *(field-name ":" unstructured CRLF), folded lines starting with WSP (RFC 5322
    /// §2.2.3), from `start` up to `bodyStart` as ``MIMEWalk/parseHeader(from:)`` found it.
    package init(_ walk: MIMEWalk, from start: Int, to bodyStart: Int) {
        let buffer = walk.buffer
        end = bodyStart
        var fieldStart: Int?
        var line = start
        while line < bodyStart {
            let (contentEnd, next) = walk.lineBounds(from: line)
            if contentEnd == line { end = line; break }
            if !ASCII.isSpace(buffer[line]) {
                if let s = fieldStart { close(buffer, s..<line) }
                fieldStart = line
            } else if fieldStart == nil, eightBitField == nil, EightBitScan.contains(buffer, line..<contentEnd) {
                eightBitField = "(continuation line)"   // white space before the first field
            }
            line = next
        }
        if let s = fieldStart { close(buffer, s..<min(line, bodyStart)) }
    }

    private mutating func close(_ buffer: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) {
        guard let colon = buffer[range].firstIndex(of: 0x3A) else { return }
        var nameEnd = colon
        while nameEnd > range.lowerBound, ASCII.isSpace(buffer[nameEnd - 1]) { nameEnd -= 1 }
        let name = buffer[range.lowerBound..<nameEnd]
        if eightBitField == nil, EightBitScan.contains(buffer, range) {
            eightBitField = name.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) ? String(decoding: name, as: UTF8.self) : "(unreadable name)"
        }
        if name.count == Self.encodingName.count, ASCII.equal(name, lowered: Self.encodingName) {
            if transferEncodings.isEmpty {
                transferEncoding = MIMEHeaderValue.parse(buffer[(colon + 1)..<range.upperBound]).value
            }
            transferEncodings.append(Field(range: range, colon: colon))
        } else if name.count == Self.versionName.count, ASCII.equal(name, lowered: Self.versionName) {
            hasMIMEVersion = true
        }
    }
}
