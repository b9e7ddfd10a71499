/// The one version every Postern binary reports (`--version`), and `posternctl status` shows.
public enum PosternVersion {
    /// Semantic version of the release; bump it with the release notes.
    public static let current = "0.1.0"
}
