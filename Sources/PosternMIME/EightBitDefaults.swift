/// Every limit and threshold of the 8-bit to 7-bit conversion, each with why.
/// - SeeAlso: RFC 6152 §3, RFC 2045 §6
public enum EightBitDefaults {
    /// RFC 2045 §6.7 rule 5 and §6.8: encoded lines are at most 76 characters.
    public static let maxEncodedLine = 76
    /// sendmail's mime8to7 rule: when more than one octet in eight is above 127, base64 is
    /// shorter than quoted-printable (three characters per such octet) and as readable.
    public static let base64Share = 8
    /// The nesting the converter walks, the same as the attachments scanner's: what it cannot
    /// see into it cannot convert, and deeper structures are only made to wear parsers down.
    public static let maxDepth = MIMEDefaults.maxDepth
}
