/// The sections a configuration file may have, and the Dr.Web MailD sections it may not,
/// each with what Postern uses instead: an administrator moving from MailD keeps a
/// `[Stat]` or `[Filters]` section at their peril if it is silently ignored.
package enum SectionCatalog {
    /// The core sections, by lower-cased name, with their spelling in messages.
    package static let core: [(String, String)] = [
        ("general", "General"), ("receiver", "Receiver"), ("scanner", "Scanner"), ("sender", "Sender"),
        ("notifier", "Notifier"), ("quarantine", "Quarantine"), ("metrics", "Metrics"), ("rules", "Rules"),
    ]

    /// Dr.Web MailD sections Postern does not have, and what takes their place.
    package static let unsupported: [String: String] = [
        "maild": "Postern has no core process: scanning and the rules are [Scanner] and [Rules], delivery is [Sender]",
        "milter": "Postern is not a milter: the MTA hands mail to [Receiver] Address over SMTP or LMTP (docs/postfix.md, docs/exim.md)",
        "mailbase": "Postern keeps no mail database: messages are files in [General] SpoolDir, blocked ones in [Quarantine] Path",
        "stat": "statistics are Prometheus metrics: set addresses in [Metrics] (docs/operations.md)",
        "filters": "plug-ins are listed in [Scanner] BeforeQueueFilters and AfterQueueFilters and each is set up in its own section ([ClamAV], [SpamAssassin], [Rspamd], [HeadersFilter], [Attachments])",
        "logging": "the log level is [General] LogLevel; the daemons log to stderr (the journal under systemd)",
    ]

    /// The problem with a section name, nil for a section Postern reads.
    package static func problem(with key: String, name: String) -> String? {
        if core.contains(where: { $0.0 == key }) || PluginCatalog.displayName(key) != nil || key.hasPrefix("rule:") {
            return nil
        }
        if let instead = unsupported[key] { return "Dr.Web MailD's [\(name)] is not supported: \(instead)" }
        if key.hasPrefix("milter:") {
            return "milter plug-ins ([\(name)]) are not supported yet (docs/plugins.md)"
        }
        let known = (core.map(\.1) + PluginCatalog.displayNames.map(\.1)).map { "[\($0)]" }.joined(separator: ", ")
        return "unknown section [\(name)]: expected one of \(known) or [Rule:NAME]"
    }
}
