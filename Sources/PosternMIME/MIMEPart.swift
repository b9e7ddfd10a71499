/// One leaf part of a message: what its header says and where its body is.
///
/// The part holds the message array (a reference, not a copy) and a range into it; the body is
/// decoded only when ``decodedBody(limit:)`` is called.
/// - SeeAlso: RFC 2045 §5–6, RFC 2183 §2
public struct MIMEPart: Sendable {
    /// `type/subtype`, lower-cased; the RFC 2045 §5.2 default when absent or invalid.
    public let contentType: String
    /// Decoded names: Content-Disposition `filename` first, then Content-Type `name`, from every
    /// such field, without duplicates. Several when the forms or repeated fields disagree, as
    /// clients differ on which they show.
    public let fileNames: [String]
    public let transferEncoding: MIMETransferEncoding
    /// 0 for the message's own body, one more per multipart or message/rfc822 entered.
    public let depth: Int
    /// The part sits at the nesting limit: it is a multipart or message whose insides were not walked.
    public let nestingExceeded: Bool
    /// A later Content-Type of this part, or of a multipart or message around it, names a
    /// multipart boundary the walker did not split by: a client that reads that field sees other
    /// parts, which were not checked.
    public let hasIgnoredBoundary: Bool
    /// The encoded body within ``source``, the line break before the next delimiter excluded.
    public let bodyRange: Range<Int>
    /// The bytes the walker read: the message itself, shared, not copied.
    package let source: [UInt8]

    public var fileName: String? { fileNames.first }

    public var encodedBody: ArraySlice<UInt8> { source[bodyRange] }

    /// The body with its transfer encoding undone, at most `limit` bytes; decodes on every call.
    public func decodedBody(limit: Int = .max) -> [UInt8] {
        switch transferEncoding {
        case .base64: TransferDecoding.base64(encodedBody, limit: limit)
        case .quotedPrintable: TransferDecoding.quotedPrintable(encodedBody, limit: limit)
        case .identity, .unknown: Array(encodedBody.prefix(limit))
        }
    }
}
