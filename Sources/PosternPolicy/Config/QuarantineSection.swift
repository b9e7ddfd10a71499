/// `[Quarantine]`: where blocked mail is kept and for how long.
public struct QuarantineSection: Sendable {
    /// Quarantine directory; default `<SpoolDir>/quarantine` (the spool's quarantine state).
    public var path: String
    /// Entries older than this are removed.
    public var storedTime = ConfigDefaults.quarantineStoredTime
    /// Total size cap in bytes; the oldest entries are removed first.
    public var maxSize = ConfigDefaults.quarantineMaxSize

    /// Defaults for a spool directory.
    public init(spoolDir: String = ConfigDefaults.spoolDir) {
        path = spoolDir + "/quarantine"
    }

    package static func read(_ reader: inout SectionReader, spoolDir: String) -> QuarantineSection {
        var section = QuarantineSection(spoolDir: spoolDir)
        section.path = reader.optionalString("Path") ?? section.path
        section.storedTime = reader.duration("StoredTime") ?? section.storedTime
        section.maxSize = reader.size("MaxSize") ?? section.maxSize
        return section
    }
}
