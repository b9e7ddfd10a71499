import ArgumentParser
import Glibc
import NIOCore
import PosternPolicy
import PosternSMTP
import PosternSpool
import PosternUtil

extension QuarantineCommand {
    /// `posternctl quarantine digest`: each recipient's list of what was quarantined for them,
    /// queued as mail from FilterMail; run daily by `postern-digest.timer`.
    struct Digest: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Send each recipient one notice listing the messages quarantined for them since the last digest.",
            discussion: """
            The notice is [Notifier] TemplatesDir's quarantine-digest.txt, sent from FilterMail; a message \
            offered for release comes with its release address ([Quarantine] ReleaseAddress). What was \
            listed is kept in .digest-listed in the quarantine, so that no message is listed twice. \
            postern-digest.timer runs it daily.

            """ + exitCodesHelp)
        @OptionGroup var options: ConfigOption
        @Flag(help: "One JSON document of the digests queued (docs/operations.md).") var json = false

        /// The state file: `ID recipient` per line, for entries still in the quarantine.
        static let stateFile = ".digest-listed"

        func run() throws {
            let (config, q) = try QuarantineCommand.open(options)
            guard let templates = config.notifier.templates else {
                throw CtlError(.config, "the digest is written from \(NotificationTemplates.digestFile) in [Notifier] TemplatesDir: set TemplatesDir")
            }
            let layout = SpoolLayout(root: config.general.spoolDir)
            try QueueCommand.checkSpool(layout)
            var tokens: ReleaseToken?
            if config.quarantine.releaseAddress != nil {
                // scannerd makes the key file; made here as root, scannerd could not read it.
                do {
                    tokens = ReleaseToken(key: try ReleaseToken.loadKey(secret: config.quarantine.releaseSecret, layout: layout, create: false))
                } catch {
                    throw CtlError(error, "cannot read the release key (start scannerd once, or set [Quarantine] ReleaseSecret)")
                }
            }
            let ids = try QuarantineCommand.ids(q)
            var entries: [QuarantineDigest.Entry] = []
            for id in ids {
                // Only the head is read: where the header fields are.
                guard let file = try? SpoolFile.read(path: q.path(id)), let headers = try? StoredMessage(file: file).headerFields()
                else { continue }   // pruned meanwhile, or unreadable (quarantine list shows it)
                entries.append(.init(id: id, file: file, headers: headers))
            }
            let statePath = q.directory + "/" + Self.stateFile
            let present = Set(ids)
            // Entries gone from the quarantine need no line any more.
            var listed = Set(Self.readState(statePath).filter { present.contains(String($0.prefix(QueueID.length))) })
            var queued: [IPCMessage] = []
            var done: [JSON] = []
            for notice in QuarantineDigest(config: config, template: templates.digest, tokens: tokens).notices(entries, listed: listed) {
                let id = try LocalMessage.write(ByteBuffer(string: notice.text), from: notice.from, to: [notice.to], id: notice.id,
                                                hostname: config.general.hostname, layout: layout)
                listed.formUnion(notice.listed)
                // Saved after each notice: a failure later never lists these again.
                try Self.writeState(statePath, listed)
                queued.append(.scan(id: id))
                let messages = notice.listed.map { String($0.prefix(QueueID.length)) }
                AdminLog.record("quarantine digest to <\(printable(notice.to))> queued as \(id), listing \(messages.joined(separator: ","))")
                done.append(.object([("queue_id", .string(id)), ("to", .string(notice.to)), ("messages", .array(messages.map(JSON.string)))]))
            }
            if queued.isEmpty { try Self.writeState(statePath, listed) }
            if !queued.isEmpty { _ = QueueCommand.wake(config.scanner.address, queued) }
            if json { print(JSON.object([("count", .int(done.count)), ("digests", .array(done))]).text) }
        }

        static func readState(_ path: String) -> [String] {
            guard let bytes = try? SysCall.readFile(path, limit: 64 << 20) else { return [] }
            return String(decoding: bytes, as: UTF8.self).split(separator: "\n").map(String.init)
        }

        /// Atomically and durably: a digest sent is never listed again after a crash.
        static func writeState(_ path: String, _ listed: Set<String>) throws {
            do {
                try SysCall.replaceFile(path, with: Array(listed.sorted().map { $0 + "\n" }.joined().utf8), mode: 0o640, sync: true)
            } catch {
                throw CtlError(error, "cannot write the digest's state")
            }
        }
    }
}
