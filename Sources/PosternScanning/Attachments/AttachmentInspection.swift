import PosternMIME
import PosternPolicy
/// What the plug-in learns about one message: banned names, bombs, notes, and what it looked at.
package struct AttachmentInspection {
    package let settings: AttachmentsSettings
    package let bans: BanList
    package let deadline: ContinuousClock.Instant
    package var parts = 0
    package var archives = 0
    package var members = 0
    /// Bytes inflated or unstored so far, against `maxExpandedSize`.
    package var expanded = 0
    package var banned: [String] = []
    package var bombs: [String] = []
    package var notes: [String] = []
    /// Set by the first bomb: nothing more is extracted, but names are still checked.
    package var exhausted = false
    /// MIME depth of the encoded message/rfc822 parts being walked into.
    package var outerDepth = 0

    package static let zipMagic: [UInt8] = [0x50, 0x4B, 0x03, 0x04]
    package static let zipTypes: Set = ["application/zip", "application/x-zip-compressed", "application/x-zip"]
    /// Once per message: every part within such a header carries the flag.
    package static let ignoredBoundaryNote = "a repeated Content-Type names another boundary, walked by the first"

    package init(settings: AttachmentsSettings, bans: BanList, deadline: ContinuousClock.Instant) {
        self.settings = settings
        self.bans = bans
        self.deadline = deadline
    }

    package func checkDeadline() throws(PluginError) {
        if ContinuousClock.now >= deadline { throw PluginError("attachments: deadline passed") }
    }

    /// Name and type checks, then the archive if the part is one. The body is decoded only for
    /// archives, and only four bytes of it to tell a zip by content.
    package mutating func inspect(_ part: MIMEPart) throws(PluginError) {
        try checkDeadline()
        parts += 1
        let label = part.fileName ?? "part \(parts)"
        if part.nestingExceeded { bomb("\(label) (MIME nesting over \(MIMEDefaults.maxDepth))") }
        if part.hasIgnoredBoundary, !notes.contains(Self.ignoredBoundaryNote) { note(Self.ignoredBoundaryNote) }
        for name in part.fileNames where bans.isBanned(name: name) { banned.append(name) }
        if bans.isBanned(contentType: part.contentType) { banned.append(part.fileName ?? part.contentType) }
        if part.contentType.hasPrefix("message/"), part.transferEncoding != .identity {
            try inspectEncodedMessage(part)
        }
        guard settings.scanArchives, settings.maxArchiveDepth > 0 else { return }
        let named = part.fileNames.contains(where: Self.isZipName) || Self.zipTypes.contains(part.contentType)
        guard named || part.decodedBody(limit: 4) == Self.zipMagic else { return }
        try inspectArchive(part.decodedBody(), path: label, depth: 1)
    }

    /// An encoded message/rfc822 is decoded and walked like the rest. Its parts count their
    /// depth from 0 again, so the depth of the enclosing walks is carried in `outerDepth`: the
    /// MIME limit holds across any number of such messages, and what they decode to counts
    /// against `maxExpandedSize`.
    private mutating func inspectEncodedMessage(_ part: MIMEPart) throws(PluginError) {
        let depth = outerDepth + part.depth + 1
        guard depth < MIMEDefaults.maxDepth else {
            bomb("\(part.fileName ?? "part \(parts)") (MIME nesting over \(MIMEDefaults.maxDepth))")
            return
        }
        let body = part.decodedBody(limit: max(0, settings.maxExpandedSize - expanded) + 1)
        expanded += body.count
        guard expanded <= settings.maxExpandedSize else {
            bomb("\(part.fileName ?? "part \(parts)") (more than \(settings.maxExpandedSize) bytes decoded)")
            return
        }
        let saved = outerDepth
        outerDepth = depth
        defer { outerDepth = saved }
        let parser = MIMEParser(maxDepth: MIMEDefaults.maxDepth - depth)
        try parser.walk(body) { (inner: MIMEPart) throws(PluginError) in try inspect(inner) }
    }

    package static func isZipName(_ name: String) -> Bool {
        name.utf8.count >= 4 && name.lowercased().hasSuffix(".zip")
    }

    package mutating func bomb(_ name: String) {
        bombs.append(name)
        exhausted = true
    }

    package mutating func note(_ text: String) {
        notes.append(text)
    }

    /// Banned wins over archive-bomb: it is certain, while a bomb is a limit reached.
    package func finding(plugin: String) -> Finding {
        var detail = ["\(Self.count(parts, "part")), \(Self.count(archives, "archive")), \(Self.count(members, "member"))"]
        var verdict = FindingVerdict.clean
        var names: [String] = []
        if !banned.isEmpty {
            (verdict, names) = (AttachmentsPlugin.banned, Self.unique(banned))
            if !bombs.isEmpty { detail.append("also archive-bomb: " + Self.unique(bombs).prefix(3).joined(separator: ", ")) }
        } else if !bombs.isEmpty {
            (verdict, names) = (AttachmentsPlugin.archiveBomb, Self.unique(bombs))
        }
        let limit = AttachmentsDefaults.maxReportedNames
        if names.count > limit { detail.append("\(names.count - limit) more names") }
        detail += notes.prefix(limit)
        if notes.count > limit { detail.append("\(notes.count - limit) more notes") }
        return Finding(plugin: plugin, verdict: verdict, names: Array(names.prefix(limit)), detail: detail.joined(separator: "; "))
    }

    package static func count(_ n: Int, _ noun: String) -> String { n == 1 ? "1 \(noun)" : "\(n) \(noun)s" }

    package static func unique(_ names: [String]) -> [String] {
        var seen = Set<String>()
        return names.filter { seen.insert($0).inserted }
    }
}
