import PosternSpool

/// `[Quarantine]`: where blocked mail is kept, for how long, and how recipients release it.
public struct QuarantineSection: Sendable {
    /// Quarantine directory; default `<SpoolDir>/quarantine` (the spool's quarantine state).
    public var path: String
    /// Entries older than this are removed.
    public var storedTime = ConfigDefaults.quarantineStoredTime
    /// Total size cap in bytes; the oldest entries are removed first.
    public var maxSize = ConfigDefaults.quarantineMaxSize
    /// The address a recipient replies to for a release (`quarantine-release@example.com`;
    /// the token goes after a `+`); nil: no release by reply.
    public var releaseAddress: String?
    /// How long a release token in a notice or digest stays valid.
    public var releaseLifetime = ConfigDefaults.quarantineReleaseLifetime
    /// The key of release tokens; empty: a random key kept in the spool (`.release-key`).
    public var releaseSecret = ""

    /// Defaults for a spool directory.
    public init(spoolDir: String = ConfigDefaults.spoolDir) {
        path = spoolDir + "/quarantine"
    }

    package static func read(_ reader: inout SectionReader, spoolDir: String) -> QuarantineSection {
        var section = QuarantineSection(spoolDir: spoolDir)
        section.path = reader.optionalString("Path") ?? section.path
        section.storedTime = reader.duration("StoredTime") ?? section.storedTime
        section.maxSize = reader.size("MaxSize") ?? section.maxSize
        section.releaseLifetime = reader.duration("ReleaseLifetime") ?? section.releaseLifetime
        section.releaseSecret = reader.string("ReleaseSecret") ?? ""
        if let raw = reader.value("ReleaseAddress"), !raw.text.isEmpty {
            let parts = raw.text.split(separator: "@", omittingEmptySubsequences: false)
            if parts.count != 2 || parts.contains(where: \.isEmpty) || parts[0].contains("+") || !ActionList.isAddress(raw.text) {
                reader.report(line: raw.line, column: raw.column,
                              "ReleaseAddress: expected local@domain without '+' (the token is added after a '+'), e.g. quarantine-release@example.com")
            } else {
                section.releaseAddress = raw.text
                // RFC 5321 §4.5.3.1.1: a local part of at most 64 octets, the token and its '+' included.
                if parts[0].utf8.count + 1 + ReleaseToken.length > 64 {
                    reader.warn(line: raw.line, column: raw.column, "ReleaseAddress: with its token the local part is longer than "
                                + "64 characters (RFC 5321); some MTAs refuse such addresses: keep the local part within \(63 - ReleaseToken.length)")
                }
            }
        }
        return section
    }
}
