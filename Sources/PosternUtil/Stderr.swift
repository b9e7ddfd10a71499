import Glibc

/// Unbuffered writes to standard error, one write(2) per call so that lines from several
/// threads or processes never interleave.
public enum Stderr {
    public static func write(_ text: String) {
        var text = text
        text.withUTF8 { p in _ = Glibc.write(2, p.baseAddress, p.count) }
    }
}
