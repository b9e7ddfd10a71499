extension DowngradeWalk {
    /// multipart-body := [preamble CRLF] dash-boundary CRLF body-part
    ///                   *(CRLF dash-boundary CRLF body-part) close-delimiter [CRLF epilogue]
    /// (RFC 2046 §5.1.1), split as ``MIMEWalk`` splits it. A multipart without a single
    /// delimiter of its own has no parts to convert, only text no reader agrees on.
    package mutating func multipart(from bodyStart: Int, type: String, boundary: [UInt8], depth: Int) throws(EightBitRefusal) -> MIMEWalk.Delimiter? {
        walk.boundaries.append(boundary)
        let level = walk.boundaries.count - 1
        let childType = type == "multipart/digest" ? "message/rfc822" : "text/plain"
        var found = walk.nextDelimiter(from: bodyStart)
        let preamble = bodyStart..<(found?.lineStart ?? buffer.count)
        guard let first = found, first.level == level else {
            if EightBitScan.contains(buffer, preamble) {
                throw EightBitRefusal(.composite, "8-bit octets in a \(type) without a delimiter line of its own")
            }
            walk.boundaries.removeLast()
            return found
        }
        try scrub(preamble)
        while let d = found, d.level == level, !d.isClose {
            found = try entity(from: d.next, depth: depth + 1, defaultType: childType, isMessage: false)
        }
        walk.boundaries.removeLast()
        guard let close = found, close.level == level else { return found }
        let next = walk.boundaries.isEmpty ? nil : walk.nextDelimiter(from: close.next)
        try scrub(close.next..<(next?.lineStart ?? buffer.count))
        return next
    }

    /// Preamble and epilogue: MIME readers must ignore them (RFC 2046 §5.1.1) and they have no
    /// header to declare an encoding in, so 8-bit octets there become `?`, as sendmail's
    /// mime8to7 strips them.
    private mutating func scrub(_ range: Range<Int>) throws(EightBitRefusal) {
        guard EightBitScan.contains(buffer, range) else { return }
        if let sealed { throw EightBitRefusal(.sealed, "8-bit octets inside \(sealed)") }
        edits.append(Edit(range: range, bytes: buffer[range].map { $0 < 0x80 ? $0 : 0x3F }))
    }
}
