/// The `[Attachments]` section: what counts as a banned attachment and how far archives are opened.
/// - SeeAlso: `docs/plugins.md` (Attachments)
public struct AttachmentsSettings: Sendable, Hashable {
    /// Messages larger than this skip the plug-in.
    public var maxSize: Int
    /// Case-insensitive shell globs on a file name's last path component: `*.exe`, `invoice*.pdf.*`.
    public var bannedNames: [String]
    /// Case-insensitive shell globs on `type/subtype`: `application/x-ms*`.
    public var bannedContentTypes: [String]
    /// Whether zip archives (by name `*.zip` or content `PK\3\4`) are looked into.
    public var scanArchives: Bool
    /// How many archives deep members are looked at; an archive deeper still is a bomb. 0 opens
    /// no archive, as `scanArchives = false` does.
    public var maxArchiveDepth: Int
    /// Members of all archives of one message together.
    public var maxArchiveFiles: Int
    /// Uncompressed over compressed size, per member and per archive.
    public var maxExpansionRatio: Int
    /// Bytes inflated per message, all archives together.
    public var maxExpandedSize: Int

    public init(maxSize: Int = AttachmentsDefaults.maxSize,
                bannedNames: [String] = AttachmentsDefaults.bannedNames,
                bannedContentTypes: [String] = AttachmentsDefaults.bannedContentTypes,
                scanArchives: Bool = AttachmentsDefaults.scanArchives,
                maxArchiveDepth: Int = AttachmentsDefaults.maxArchiveDepth,
                maxArchiveFiles: Int = AttachmentsDefaults.maxArchiveFiles,
                maxExpansionRatio: Int = AttachmentsDefaults.maxExpansionRatio,
                maxExpandedSize: Int = AttachmentsDefaults.maxExpandedSize) {
        self.maxSize = maxSize
        self.bannedNames = bannedNames
        self.bannedContentTypes = bannedContentTypes
        self.scanArchives = scanArchives
        self.maxArchiveDepth = maxArchiveDepth
        self.maxArchiveFiles = maxArchiveFiles
        self.maxExpansionRatio = maxExpansionRatio
        self.maxExpandedSize = maxExpandedSize
    }
}
