import PosternMIME
import PosternPolicy
/// Bans attachments by file name and content type, looking into zip archives, and stops
/// archive bombs before they cost the filter or the recipient.
///
/// Verdicts: `banned` (names are the file names, `docs.zip/inner.zip/evil.exe` for archive
/// members), `archive-bomb` (a limit of ``AttachmentsSettings`` or MIME nesting reached; names
/// say which), or `clean` (the detail counts parts, archives, members). Banned wins when both.
/// - SeeAlso: `docs/plugins.md` (Attachments), RFC 2046 §5, RFC 2183, RFC 2231, PKWARE APPNOTE.TXT
public struct AttachmentsPlugin: ScanPlugin {
    public static let banned = FindingVerdict.banned
    public static let archiveBomb = FindingVerdict.archiveBomb

    public let name = "attachments"
    public let settings: AttachmentsSettings
    package let bans: BanList

    public var maxSize: Int { settings.maxSize }

    public init(settings: AttachmentsSettings = AttachmentsSettings()) {
        self.settings = settings
        bans = BanList(settings)
    }

    public func scan(_ request: ScanRequest, deadline: ContinuousClock.Instant) throws(PluginError) -> Finding {
        guard request.message.count <= maxSize else {
            return Finding(plugin: name, verdict: .skipped, detail: "message over \(maxSize) bytes")
        }
        var inspection = AttachmentInspection(settings: settings, bans: bans, deadline: deadline)
        let message: [UInt8]
        do { message = try request.message.bytes() } catch { throw .unreadable(error) }
        try MIMEParser().walk(message) { (part: MIMEPart) throws(PluginError) in
            try inspection.inspect(part)
        }
        return inspection.finding(plugin: name)
    }
}
