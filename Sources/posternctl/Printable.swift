import PosternUtil

/// Text from the command line, the environment or a spool file, made safe to print on one
/// line: control characters and DEL become `?`, and it is cut at `limit` characters.
func printable(_ s: String, limit: Int = 200) -> String {
    ASCII.oneLine(s, limit: limit)
}

extension String {
    func replacingSpaces() -> String {
        String(unicodeScalars.map { $0 == " " ? "?" : Character($0) })
    }
}
