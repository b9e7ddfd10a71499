/// A part's Content-Transfer-Encoding, reduced to what decoding needs.
/// - SeeAlso: RFC 2045 §6.1
public enum MIMETransferEncoding: Sendable, Hashable {
    /// `7bit`, `8bit`, `binary`, or no field: the body is the content.
    case identity
    case base64
    case quotedPrintable
    /// `x-uuencode` and other private encodings. XXX: left as is; uuencode is not decoded.
    case unknown

    /// mechanism := "7bit" / "8bit" / "binary" / "quoted-printable" / "base64" / ietf-token / x-token
    package init(token: String) {
        switch token {
        case "", "7bit", "8bit", "binary": self = .identity
        case "base64": self = .base64
        case "quoted-printable": self = .quotedPrintable
        default: self = .unknown
        }
    }
}
