extension MIMEWalk {
    private enum Field { case contentType, disposition, transferEncoding }

    private static let contentTypeName = Array("content-type".utf8)
    private static let dispositionName = Array("content-disposition".utf8)
    private static let encodingName = Array("content-transfer-encoding".utf8)

    /// fields := *(field-name ":" unstructured CRLF), folded lines joined (RFC 5322 §2.2.3).
    /// The header ends at an empty line, at a delimiter line of an open multipart (no body), or
    /// at a line that is not a field, where the body then starts. XXX: Python's email package does
    /// the same; a client that skips such a line and reads on would see fields this walker does not.
    /// The first of repeated fields wins. Only the three fields the walker needs are kept.
    func parseHeader(from start: Int) -> MIMEPartHeader {
        var contentType: [UInt8]?
        var disposition: [UInt8]?
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
                case .contentType: contentType!.append(contentsOf: buffer[line..<end])
                case .disposition: disposition!.append(contentsOf: buffer[line..<end])
                case .transferEncoding: encoding!.append(contentsOf: buffer[line..<end])
                case nil: break
                }
                line = next
                continue
            }
            if first == 0x2D, delimiter(at: line) != nil { bodyStart = line; break }
            guard let colon = buffer[line..<end].firstIndex(of: 0x3A) else { bodyStart = line; break }
            let value = Array(buffer[(colon + 1)..<end])
            current = nil
            switch Self.field(buffer[line..<colon]) {
            case .contentType where contentType == nil: contentType = value; current = .contentType
            case .disposition where disposition == nil: disposition = value; current = .disposition
            case .transferEncoding where encoding == nil: encoding = value; current = .transferEncoding
            default: break
            }
            line = next
        }
        return MIMEPartHeader(contentType: contentType, disposition: disposition, transferEncoding: encoding, bodyStart: bodyStart)
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
