/// The walker's state: the message and the boundaries of the multiparts it is inside, innermost
/// last. Lives only inside ``MIMEParser/walk(_:_:)``, which owns the buffer.
package struct MIMEWalk {
    package let buffer: UnsafeBufferPointer<UInt8>
    package let source: [UInt8]
    package let maxDepth: Int
    package var boundaries: [[UInt8]] = []
    /// Entities being walked whose header has a later Content-Type naming another boundary.
    package var ignoredBoundaries = 0

    package init(buffer: UnsafeBufferPointer<UInt8>, source: [UInt8], maxDepth: Int) {
        self.buffer = buffer
        self.source = source
        self.maxDepth = maxDepth
    }

    /// A delimiter line of an open multipart: where it starts, where the next line starts,
    /// which multipart (index into `boundaries`), and whether it is the close delimiter.
    package struct Delimiter {
        package let lineStart: Int
        package let next: Int
        package let level: Int
        package let isClose: Bool
    }

    /// entity := header [CRLF body] (RFC 2045 §3). Returns the delimiter that ended the entity,
    /// nil at the end of input.
    ///
    /// XXX: a message/rfc822 part is walked into, so its own file name is not reported. One that is
    /// base64- or QP-encoded (RFC 2046 §5.2.1 forbids it, clients still open it) is a leaf: the
    /// visitor decodes and walks it if it cares.
    ///
    /// XXX: the structure follows the first Content-Type, as Python's email package does. A later
    /// one naming another multipart boundary is only flagged on the parts within
    /// (``MIMEPart/hasIgnoredBoundary``); a later message/rfc822 type is not even flagged.
    package mutating func entity<E: Error>(from start: Int, depth: Int, defaultType: String,
                                   _ visit: (MIMEPart) throws(E) -> Void) throws(E) -> Delimiter? {
        let header = parseHeader(from: start)
        let type = header.contentType.map(\.value).flatMap { $0.contains("/") ? $0 : nil } ?? defaultType
        let ignored = header.namesOtherBoundary(than: type.hasPrefix("multipart/") ? header.boundary : nil)
        if ignored { ignoredBoundaries += 1 }
        defer { if ignored { ignoredBoundaries -= 1 } }
        if type.hasPrefix("multipart/"), let boundary = header.boundary {
            guard depth < maxDepth else { return try leaf(header, type: type, depth: depth, cut: true, visit) }
            return try multipart(header, type: type, boundary: boundary, depth: depth, visit)
        }
        if type == "message/rfc822" || type == "message/global", header.transferEncoding == .identity {
            guard depth < maxDepth else { return try leaf(header, type: type, depth: depth, cut: true, visit) }
            return try entity(from: header.bodyStart, depth: depth + 1, defaultType: "text/plain", visit)
        }
        return try leaf(header, type: type, depth: depth, cut: false, visit)
    }

    /// multipart-body := [preamble CRLF] dash-boundary CRLF body-part
    ///                   *(CRLF dash-boundary CRLF body-part) close-delimiter [CRLF epilogue]
    /// (RFC 2046 §5.1.1). Preamble and epilogue are skipped; a missing close delimiter ends the
    /// multipart at an enclosing delimiter or at the end of input.
    private mutating func multipart<E: Error>(_ header: MIMEPartHeader, type: String, boundary: [UInt8], depth: Int,
                                              _ visit: (MIMEPart) throws(E) -> Void) throws(E) -> Delimiter? {
        boundaries.append(boundary)
        let level = boundaries.count - 1
        let childType = type == "multipart/digest" ? "message/rfc822" : "text/plain"
        var found = nextDelimiter(from: header.bodyStart)
        while let d = found, d.level == level, !d.isClose {
            found = try entity(from: d.next, depth: depth + 1, defaultType: childType, visit)
        }
        boundaries.removeLast()
        guard let close = found, close.level == level else { return found }
        return boundaries.isEmpty ? nil : nextDelimiter(from: close.next)
    }

    private mutating func leaf<E: Error>(_ header: MIMEPartHeader, type: String, depth: Int, cut: Bool,
                                         _ visit: (MIMEPart) throws(E) -> Void) throws(E) -> Delimiter? {
        let found = boundaries.isEmpty ? nil : nextDelimiter(from: header.bodyStart)
        let end = found.map { bodyEnd(before: $0.lineStart, notBefore: header.bodyStart) } ?? buffer.count
        try visit(MIMEPart(contentType: type, fileNames: header.fileNames, transferEncoding: header.transferEncoding,
                           depth: depth, nestingExceeded: cut, hasIgnoredBoundary: ignoredBoundaries > 0,
                           bodyRange: header.bodyStart..<end, source: source))
        return found
    }
}
