/// Limits of MIME walking shared by the attachments scanner and the 8-bit converter.
public enum MIMEDefaults {
    /// Real mail nests multiparts a handful of levels; deeper only wears parsers down, and the
    /// walker's recursion is bounded by it.
    public static let maxDepth = 20
}
