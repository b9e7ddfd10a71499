/// Walks a message's MIME structure in one pass and hands every leaf part to a visitor.
///
/// Parts are ranges of the message: nothing is copied or decoded until the visitor asks.
/// Each byte is looked at once per line scan, whatever the nesting; a line is compared with the
/// open boundaries only when it starts with `--`. message/rfc822 parts are walked into.
/// Nesting past `maxDepth` is not walked: the part comes out flagged ``MIMEPart/nestingExceeded``.
/// - SeeAlso: RFC 2046 §5.1 (multipart), §5.2.1 (message/rfc822), RFC 2045 §5–6
public struct MIMEParser: Sendable {
    public var maxDepth: Int

    public init(maxDepth: Int = MIMEDefaults.maxDepth) {
        self.maxDepth = maxDepth
    }

    /// Calls `visit` for every leaf part of `message` (CRLF or LF line ends), in order.
    public func walk<E: Error>(_ message: [UInt8], _ visit: (MIMEPart) throws(E) -> Void) throws(E) {
        try message.withUnsafeBufferPointer { (buffer) throws(E) -> Void in
            var walk = MIMEWalk(buffer: buffer, source: message, maxDepth: maxDepth)
            _ = try walk.entity(from: 0, depth: 0, defaultType: "text/plain", visit)
        }
    }

    /// Every leaf part of `message`.
    public func parts(of message: [UInt8]) -> [MIMEPart] {
        var parts: [MIMEPart] = []
        walk(message) { (part: MIMEPart) throws(Never) in parts.append(part) }
        return parts
    }
}
