/// Text from the command line, the environment or a spool file, made safe to print on one
/// line: control characters and DEL become `?`, and it is cut at `limit` characters.
func printable(_ s: String, limit: Int = 200) -> String {
    var out = ""
    for (n, scalar) in s.unicodeScalars.enumerated() {
        if n == limit { return out + "…" }
        out.unicodeScalars.append(scalar.value < 0x20 || scalar.value == 0x7F ? "?" : scalar)
    }
    return out
}

extension String {
    func replacingSpaces() -> String {
        String(unicodeScalars.map { $0 == " " ? "?" : Character($0) })
    }
}
