/// Protocol limits, each with the reason for its value.
/// - SeeAlso: RFC 5321 §4.5.3.1
public enum SMTPDefaults {
    /// RFC 5321 allows 512 octets for a command line, but every ESMTP extension in use
    /// (SIZE, BODY, SMTPUTF8, DSN's ORCPT/ENVID at 500 octets xtext each) may add to it;
    /// Postfix's `line_length_limit` is 2048 for the same reason.
    public static let maxCommandLine = 2048
    /// RFC 5321 §4.5.3.1.6: 1000 octets including CRLF. Postfix's own client folds longer
    /// lines before it sends them, so a longer one comes from a broken or hostile client.
    public static let maxTextLine = 1000
    /// What the framer buffers before it gives up on finding a line end; anything longer is
    /// reported as overlong and skipped up to the next LF.
    public static let maxBufferedLine = 8192
    /// Upper bound on reply lines accepted by the client side (multi-line EHLO replies).
    public static let maxReplyLines = 128
    /// Size of the chunks in which message data is written to the spool.
    public static let writeChunk = 64 * 1024
    /// Octets per second a client must keep up inside DATA/BDAT beyond `DataTimeout`
    /// (Postfix's smtpd_min_data_rate): a slow trickle cannot hold a session for ever.
    public static let minDataRate = 500
}
