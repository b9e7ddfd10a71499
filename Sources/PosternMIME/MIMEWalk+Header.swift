import PosternUtil
extension MIMEWalk {
    private enum Field { case contentType, disposition, transferEncoding }

    private static let contentTypeName = Array("content-type".utf8)
    private static let dispositionName = Array("content-disposition".utf8)
    private static let encodingName = Array("content-transfer-encoding".utf8)

    /// fields := *(field-name ":" unstructured CRLF), folded lines joined (RFC 5322 §2.2.3).
    /// The header ends at an empty line, at a delimiter line of an open multipart (no body), or
    /// at a line that is not a field, where the body then starts.
    ///
    /// Only the three fields the walker needs are kept: every Content-Type and Content-Disposition,
    /// so that the names in all of them are checked, and the first Content-Transfer-Encoding.
    /// Repeats are not limited, as each costs work linear in its length like any other line.
    package func parseHeader(from start: Int) -> MIMEPartHeader {
        var contentTypes: [[UInt8]] = []
        var dispositions: [[UInt8]] = []
        var encoding: [UInt8]?
        var current: Field?
        var line = start
        var bodyStart = buffer.count
        while line < buffer.count {
            let (end, next) = lineBounds(from: line)
            if end == line { bodyStart = next; break }
            let first = buffer[line]
            if first == 0x20 || first == 0x09 {
                switch current {
                case .contentType: contentTypes[contentTypes.count - 1].append(contentsOf: buffer[line..<end])
                case .disposition: dispositions[dispositions.count - 1].append(contentsOf: buffer[line..<end])
                case .transferEncoding: encoding!.append(contentsOf: buffer[line..<end])
                case nil: break
                }
                line = next
                continue
            }
            if first == 0x2D, delimiter(at: line) != nil { bodyStart = line; break }
            // A line without a colon ends the header and starts the body, as in Python's email
            // package (MissingHeaderBodySeparatorDefect): it is far more often a body whose empty
            // line went missing than a broken field. XXX: a client that skips such a line and
            // reads on would see fields this walker does not.
            guard let colon = buffer[line..<end].firstIndex(of: 0x3A) else { bodyStart = line; break }
            let value = Array(buffer[(colon + 1)..<end])
            current = nil
            switch Self.field(buffer[line..<colon]) {
            case .contentType: contentTypes.append(value); current = .contentType
            case .disposition: dispositions.append(value); current = .disposition
            case .transferEncoding where encoding == nil: encoding = value; current = .transferEncoding
            default: break
            }
            line = next
        }
        return MIMEPartHeader(contentTypes: contentTypes, dispositions: dispositions, transferEncoding: encoding, bodyStart: bodyStart)
    }

    private static func field(_ name: Slice<UnsafeBufferPointer<UInt8>>) -> Field? {
        var name = name
        while let last = name.last, ASCII.isSpace(last) { name = name.dropLast() }
        switch name.count {
        case contentTypeName.count where ASCII.equal(name, lowered: contentTypeName): return .contentType
        case dispositionName.count where ASCII.equal(name, lowered: dispositionName): return .disposition
        case encodingName.count where ASCII.equal(name, lowered: encodingName): return .transferEncoding
        default: return nil
        }
    }
}
