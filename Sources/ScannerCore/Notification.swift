import Glibc
import NIOCore
import PosternMIME
import PosternPolicy
import PosternSMTP
import PosternScanning
import PosternSpool
import PosternUtil

/// The notices `notify` asks for: to whom (`Notify`, `AdminMail`, `FilterMail`, resolved per
/// recipient), about what (the event of each recipient's decision), in which words (the
/// templates of `[Notifier] TemplatesDir`, or the built-in administrator's text without them).
///
/// The administrator gets one notice per event and address for the recipients concerned;
/// the sender one per event (never the null sender, never in reply to automatic mail,
/// RFC 3834 §2); each recipient one of its own, naming no other recipient.
package struct Notification {
    /// One notice: the envelope it goes with and the message.
    package struct Notice {
        /// Its queue id, which its Message-ID also has.
        package var id: String
        package var from: String
        package var to: String
        package var party: NotifyParty
        /// Nil for the built-in administrator's notice, which covers every event.
        package var event: NotifyEvent?
        package var buffer: ByteBuffer
    }

    package let original: Envelope
    package let headers: [HeaderField]
    package let config: PosternConfig
    package var now: time_t = time(nil)
    /// Each notice's queue id.
    package var makeID: () -> String = { QueueID.make() }
    /// The address a recipient replies to for releasing this message's quarantine copy
    /// (`$RELEASE$`, its token in it); nil when there is none.
    package var releaseAddress: ((_ recipient: String) -> String)?

    package init(original: Envelope, headers: [HeaderField], config: PosternConfig) {
        self.original = original
        self.headers = headers
        self.config = config
    }

    /// Every notice `decisions` (those with `notify`) ask for.
    package func notices(_ decisions: [RecipientDecision], findings: [Finding]) -> [Notice] {
        let resolver = RouteResolver(config: config)
        // Without templates the administrator's one notice covers every event.
        struct Key: Hashable { var party: NotifyParty, event: NotifyEvent?, to: String, from: String }
        var groups: [Key: [RecipientDecision]] = [:]
        var order: [Key] = []
        for d in decisions {
            let i = d.recipient
            let admin = resolver.adminMail(for: original, recipient: i, headers: headers, blocks: d.blocks, score: d.score)
            let from = resolver.filterMail(for: original, recipient: i, headers: headers, blocks: d.blocks, score: d.score)
            var parties = resolver.notify(for: original, recipient: i, headers: headers, blocks: d.blocks, score: d.score)
            // The load refuses sender and recipients without templates (rules too); never let
            // them get the administrator's built-in text.
            if config.notifier.templates == nil { parties = parties.filter { $0 == .admin } }
            for party in parties {
                let to: String
                switch party {
                case .admin: to = admin
                case .sender:
                    guard mayAnswerSender(filterMail: from) else { continue }
                    to = original.mailFrom
                case .recipients: to = original.recipients[i].address
                }
                let key = Key(party: party, event: config.notifier.templates == nil ? nil : Self.event(of: d), to: to, from: from)
                if groups[key] == nil { order.append(key) }
                groups[key, default: []].append(d)
            }
        }
        return order.map { key in
            let group = groups[key]!
            let id = makeID()
            let buffer = if let templates = config.notifier.templates, let event = key.event {
                message(templates.template(event, key.party), group, key.party, id: id, to: key.to, from: key.from)
            } else {
                builtIn(group, findings: findings, id: id, to: key.to, from: key.from)
            }
            return Notice(id: id, from: key.from, to: key.to, party: key.party, event: key.event, buffer: buffer)
        }
    }

    /// What a recipient's notice is about: the plug-in whose actions decided (its last step);
    /// a quarantined message is offered for release unless it carries a virus or a scanner failed.
    package static func event(of d: RecipientDecision) -> NotifyEvent {
        let parameter = d.steps.last?.parameter ?? "ProcessingErrors"
        if parameter == "ProcessingErrors" { return .error }
        let plugin = parameter.prefix { $0 != "/" }
        if plugin == "clamav" { return .virus }
        if d.extras.contains(.quarantine) { return .quarantine }
        return plugin == "spamassassin" || plugin == "rspamd" ? .spam : .banned
    }

    /// RFC 3834 §2: no automatic answer to the null sender, to Postern itself, or to mail
    /// that says it is automatic or bulk.
    private func mayAnswerSender(filterMail: String) -> Bool {
        guard !original.mailFrom.isEmpty, ASCII.lowercased(original.mailFrom) != ASCII.lowercased(filterMail) else { return false }
        let auto = ASCII.lowercased(ASCII.trim(field("auto-submitted")))
        let precedence = ASCII.lowercased(ASCII.trim(field("precedence")))
        return (auto.isEmpty || auto == "no" || auto.hasPrefix("no;") || auto.hasPrefix("no ")) && !["bulk", "junk", "list"].contains(precedence)
    }

    private func field(_ name: String) -> String {
        headers.first { ASCII.lowercased($0.name) == name }?.value ?? ""
    }

    /// The macros' values for the recipients of one notice.
    package func values(_ group: [RecipientDecision], to: String, from: String) -> [TemplateMacro: String] {
        let resolver = RouteResolver(config: config)
        let first = group[0]
        func names(_ plugins: Set<String>) -> String {
            StageScan.unique(group.flatMap { $0.findings.filter { plugins.contains($0.plugin) && $0.isBlocking }.flatMap(\.names) })
                .joined(separator: ", ")
        }
        let report = group.map { d in
            let extras = d.extras.map(\.description).joined(separator: ", ")
            let why = d.reasons.isEmpty ? "" : " (\(d.reasons.joined(separator: "; ")))"
            return ASCII.oneLine("<\(original.recipients[d.recipient].address)>: \(d.main.rawValue)\(extras.isEmpty ? "" : ", " + extras)\(why)", with: " ")
        }
        return [
            .postmaster: resolver.adminMail(for: original, recipient: first.recipient, headers: headers, blocks: first.blocks, score: first.score),
            .filterMail: from, .hostname: config.general.hostname, .queueID: original.id,
            .subject: EncodedWord.decode(field("subject")), .msgID: field("message-id"), .from: EncodedWord.decode(field("from")),
            .date: field("date"), .sender: original.mailFrom.isEmpty ? "<>" : original.mailFrom,
            .rcpts: group.map { original.recipients[$0.recipient].address }.joined(separator: ", "), .to: to,
            .clientIP: original.clientIP, .action: StageScan.unique(group.map(\.main.rawValue)).joined(separator: "/"),
            .viruses: names(["clamav"]), .banned: names(["attachments", "headersfilter"]),
            .score: SpamVerdict.format(group.map(\.score).max() ?? 0, decimals: 1),
            .report: report.joined(separator: "\r\n"),
        ]
    }

    /// A notice from a template: Postern's own fields around the template's.
    private func message(_ template: NotificationTemplate, _ group: [RecipientDecision],
                         _ party: NotifyParty, id: String, to: String, from: String) -> ByteBuffer {
        var values = values(group, to: to, from: from)
        if party == .recipients, let release = releaseAddress { values[.release] = release(to) }
        // To the sender it is an answer to its message (RFC 3834 §3.1.3, §5).
        let messageID = ASCII.oneLine(field("message-id"), with: " ")
        return ByteBuffer(string: template.write(values, date: now, messageID: "<\(id)@\(config.general.hostname)>",
                                                 autoReplied: party == .sender, inReplyTo: party == .sender && !messageID.isEmpty ? messageID : nil))
    }

    /// The administrator's notice when there are no templates: what was found, what was done,
    /// for whom.
    private func builtIn(_ decisions: [RecipientDecision], findings: [Finding], id: String, to: String, from: String) -> ByteBuffer {
        let host = config.general.hostname
        let e = original
        func clean(_ s: String) -> String { ASCII.oneLine(String(decoding: s.utf8.prefix(500), as: UTF8.self), with: " ") }
        let what = Set(decisions.map(\.main.rawValue)).sorted().joined(separator: "/")
        var s = LocalMessage.head(date: now, from: "Postern <\(from)>", to: "<\(to)>",
                                  subject: "Postern: message \(e.id) \(what)", messageID: "<\(id)@\(host)>",
                                  autoSubmitted: "auto-generated")
        s += "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        s += "Postern on \(host) checked message \(e.id).\r\n\r\n"
        s += "Envelope sender: <\(clean(e.mailFrom))>\r\n"
        s += "Client:          \(clean(e.clientIP)) (\(clean(e.helo)))\r\n"
        s += "From:            \(clean(field("from")))\r\nSubject:         \(clean(field("subject")))\r\nMessage-ID:      \(clean(field("message-id")))\r\n\r\n"
        for d in decisions {
            let extras = d.extras.map(\.description).joined(separator: ", ")
            s += "<\(clean(e.recipients[d.recipient].address))>: \(d.main.rawValue)\(extras.isEmpty ? "" : ", " + extras)\r\n"
        }
        s += "\r\nFindings:\r\n"
        for f in findings where f.isBlocking { s += "  \(f.plugin): \(clean(f.detail))\r\n" }
        if decisions.contains(where: { $0.extras.contains(.quarantine) }) {
            s += "\r\nA copy is in the quarantine: posternctl quarantine show \(e.id)\r\n"
        }
        return ByteBuffer(string: s)
    }
}
