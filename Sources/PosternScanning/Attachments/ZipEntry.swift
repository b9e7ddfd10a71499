/// One member as the central directory describes it.
/// - SeeAlso: PKWARE APPNOTE.TXT 6.3.10 §4.3.12
public struct ZipEntry: Sendable, Hashable {
    /// The central directory's name: UTF-8 when flagged or valid, else read as Latin-1 (CP437 in
    /// the letter of the spec; only the ASCII extension matters to bans).
    public var name: String
    /// Other names extractors may use: the Info-ZIP Unicode Path field, the local header's name.
    public var alternateNames: [String]
    /// Declared sizes: never trusted for allocation, only to refuse early.
    public var compressedSize: Int
    public var uncompressedSize: Int
    /// 0 stored, 8 deflate; others (deflate64, bzip2, LZMA, AES as 99…) are not extracted.
    public var method: Int
    /// General purpose flag bit 0: traditional PKWARE or AES encryption.
    public var isEncrypted: Bool
    /// Offset of the local file header within ``ZipReader/bytes``: the recorded offset plus
    /// ``ZipReader/prependedLength``.
    public var localHeaderOffset: Int

    public var isDirectory: Bool { name.hasSuffix("/") || name.hasSuffix("\\") }

    public init(name: String, alternateNames: [String] = [], compressedSize: Int, uncompressedSize: Int,
                method: Int, isEncrypted: Bool, localHeaderOffset: Int) {
        self.name = name
        self.alternateNames = alternateNames
        self.compressedSize = compressedSize
        self.uncompressedSize = uncompressedSize
        self.method = method
        self.isEncrypted = isEncrypted
        self.localHeaderOffset = localHeaderOffset
    }
}
