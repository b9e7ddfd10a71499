extension String {
    /// Foundation's name, without Foundation: every occurrence of `a` replaced by `b`.
    package func replacingOccurrences(of a: String, with b: String) -> String {
        split(separator: a, omittingEmptySubsequences: false).joined(separator: b)
    }
}
