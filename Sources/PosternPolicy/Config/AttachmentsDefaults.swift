/// Every default and internal limit of the attachments plug-in, each with why.
public enum AttachmentsDefaults {
    /// Gmail's and Outlook.com's attachment limit: bigger mail is not what this plug-in guards.
    public static let maxSize = 25 << 20
    /// Files Windows runs on a double click, after Gmail's list of blocked file types.
    public static let bannedNames = [
        "*.exe", "*.scr", "*.com", "*.pif", "*.bat", "*.cmd", "*.cpl", "*.msi", "*.msc", "*.hta",
        "*.js", "*.jse", "*.vbs", "*.vbe", "*.wsf", "*.wsh", "*.ps1", "*.lnk", "*.jar",
    ]
    /// The types mailers give Windows executables when the name does not say it.
    public static let bannedContentTypes = [
        "application/x-msdownload", "application/x-msdos-program", "application/x-dosexec",
    ]
    /// Archives are the usual wrapping for executables sent past name filters.
    public static let scanArchives = true
    /// Mail rarely nests archives more than twice, and every level multiplies the work.
    public static let maxArchiveDepth = 3
    /// A document archive rarely has more members, and each member costs a look.
    public static let maxArchiveFiles = 1000
    /// Text and office files deflate 3–20:1; bombs (42.zip and kin) reach 1000:1.
    public static let maxExpansionRatio = 100
    /// Bounds memory and time per message whatever the archives declare.
    public static let maxExpandedSize = 100 << 20
    /// Small members compress arbitrarily well (a blank form); a ratio matters once output can hurt.
    public static let ratioFloor = 1 << 20
    /// Names end up in log lines and DSNs, which must stay readable.
    public static let maxReportedNames = 20
    /// The end record is 22 bytes plus a comment of at most 65535 (APPNOTE 4.3.16).
    package static let endRecordSearchWindow = 22 + 0xFFFF
    /// Inflate works in slices this big, checking the cap and the deadline between them.
    package static let inflateChunk = 64 << 10
}
