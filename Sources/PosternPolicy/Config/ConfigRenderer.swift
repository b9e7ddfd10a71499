import PosternUtil
/// `posternctl config show`: the configuration as INI text that reads back to the same
/// configuration, like `postconf -n` (what the file sets, as written) and `postconf` (with
/// `all`: every key of every section, the file's values and the defaults alike, as Postern
/// understood them).
/// - SeeAlso: docs/configuration.md ("Showing the configuration")
public enum ConfigRenderer {
    /// Keys whose values are secrets: shown as a comment unless `showSecrets`.
    package static let secrets: Set<String> = ["sender/securehash", "quarantine/releasesecret"]

    public static func render(_ config: PosternConfig, all: Bool, showSecrets: Bool = false) -> String {
        var out = "# \(all ? "Every setting" : "What the file sets") of \(config.path) (posternctl config show\(all ? " --all" : ""))\n"
        if all {
            for section in typedSections(config) {
                out += "\n[\(section.name)]\n"
                for (key, value) in section.keys { out += line(section.name, key, value, showSecrets: showSecrets) }
            }
        }
        let written = config.sections.values.sorted { $0.line < $1.line }
        for raw in written where !all || ASCII.lowercased(raw.name).hasPrefix("rule:") {
            let key = ASCII.lowercased(raw.name)
            guard key != INIParser.rulesSection else { continue }
            out += "\n[\(SectionCatalog.core.first { $0.0 == key }?.1 ?? PluginCatalog.displayName(key) ?? raw.name)]\n"
            for name in raw.order {
                for value in raw.keys[name]!.values {
                    out += line(raw.name, value.key, .some(value.source), showSecrets: showSecrets)
                }
            }
        }
        if let rules = config.sections[INIParser.rulesSection] {
            out += "\n[Rules]\n"
            for rule in rules.ruleLines { out += rule.text + "\n" }
        }
        return out
    }

    private static func line(_ section: String, _ key: String, _ value: String?, showSecrets: Bool) -> String {
        guard let value else { return "; \(key) =   (not set)\n" }
        if !showSecrets && !value.isEmpty && secrets.contains(ASCII.lowercased("\(section)/\(key)")) {
            return "; \(key) = (set, hidden: --show-secrets shows it)\n"
        }
        return value.isEmpty ? "\(key) =\n" : "\(key) = \(value)\n"
    }

    package struct Section {
        package var name: String
        /// Value text as it is written in the file; nil for an optional key that is not set.
        package var keys: [(String, String?)]
    }

    /// Every section Postern reads, every key, from the parsed configuration.
    package static func typedSections(_ c: PosternConfig) -> [Section] {
        let g = c.general, r = c.receiver, s = c.scanner, d = c.sender, n = c.notifier, q = c.quarantine
        var sections = [
            Section(name: "General", keys: [
                ("Hostname", quote(g.hostname)), ("SpoolDir", quote(g.spoolDir)), ("RunDir", quote(g.runDir)),
                ("User", quote(g.user ?? "")), ("LogLevel", g.logLevel.rawValue),
            ]),
            Section(name: "Receiver", keys: [
                ("Address", r.address.map(\.description).joined(separator: ", ")),
                ("ProtectedNetworks", r.protectedNetworks.map(\.description).joined(separator: ", ")),
                ("MaxMessageSize", size(r.maxMessageSize)), ("MaxRecipients", "\(r.maxRecipients)"),
                ("MaxSessions", "\(r.maxSessions)"), ("CommandTimeout", ValueSyntax.format(r.commandTimeout)),
                ("DataTimeout", ValueSyntax.format(r.dataTimeout)), ("StressThreshold", "\(r.stressThreshold)%"),
                ("StressCommandTimeout", ValueSyntax.format(r.stressCommandTimeout)),
                ("StressDataTimeout", ValueSyntax.format(r.stressDataTimeout)),
                ("ClientConnectionLimit", "\(r.clientConnectionLimit)"), ("ClientConnectionRateLimit", "\(r.clientConnectionRateLimit)"),
                ("ClientRateTimeUnit", ValueSyntax.format(r.clientRateTimeUnit)),
                ("LimitExempt", r.limitExempt.map(\.description).joined(separator: ", ")),
                ("ProcessingErrors", quote(r.processingErrors)),
                ("ReturnReject", yes(r.returnReject)), ("SoftBounce", yes(r.softBounce)),
                ("AddReceivedHeader", yes(r.addReceivedHeader)),
                ("MaxReceivedHeaders", "\(r.maxReceivedHeaders)"), ("MaxFilterPasses", "\(r.maxFilterPasses)"),
                ("TLSCertificate", quote(r.tlsCertificate ?? "")), ("TLSKey", quote(r.tlsKey ?? "")),
            ]),
            Section(name: "Scanner", keys: [
                ("Address", s.address.description), ("BeforeQueueFilters", names(s.beforeQueueFilters)),
                ("AfterQueueFilters", names(s.afterQueueFilters)), ("ScanTimeout", ValueSyntax.format(s.scanTimeout)),
            ]),
            Section(name: "Sender", keys: [
                ("Address", d.address.description), ("Protocol", d.address.mailProtocol.rawValue),
                ("ControlAddress", d.controlAddress.description), ("ConnectTimeout", ValueSyntax.format(d.connectTimeout)),
                ("CommandTimeout", ValueSyntax.format(d.commandTimeout)), ("DataTimeout", ValueSyntax.format(d.dataTimeout)),
                ("MaxConnections", "\(d.maxConnections)"),
                ("RetryIntervals", d.retryIntervals.map(ValueSyntax.format).joined(separator: ", ")),
                ("MaxQueueLifetime", ValueSyntax.format(d.maxQueueLifetime)),
                ("DelayWarningTime", ValueSyntax.format(d.delayWarningTime)), ("SecureHash", quote(d.secureHash)),
                ("SkipDSNOnBlock", yes(d.skipDSNOnBlock)),
            ]),
            Section(name: "Notifier", keys: [
                ("FilterMail", quote(n.filterMail)), ("AdminMail", quote(n.adminMail)), ("TemplatesDir", quote(n.templatesDir ?? "")),
                ("Notify", n.notify.map(\.rawValue).joined(separator: ", ")),
            ]),
            Section(name: "Quarantine", keys: [
                ("Path", quote(q.path)), ("StoredTime", ValueSyntax.format(q.storedTime)), ("MaxSize", size(q.maxSize)),
                ("ReleaseAddress", quote(q.releaseAddress ?? "")), ("ReleaseLifetime", ValueSyntax.format(q.releaseLifetime)),
                ("ReleaseSecret", quote(q.releaseSecret)),
            ]),
            Section(name: "Metrics", keys: [
                ("Receiver", c.metrics.receiver?.description), ("Scanner", c.metrics.scanner?.description),
                ("Sender", c.metrics.sender?.description),
            ]),
        ]
        for (name, display) in PluginCatalog.displayNames {
            let plugin = c.plugins[name] ?? PluginCatalog.defaults(name)
            sections.append(Section(name: display, keys: pluginKeys(plugin)))
        }
        return sections
    }

    private static func pluginKeys(_ p: PluginSection) -> [(String, String?)] {
        var keys: [(String, String?)] = []
        func addresses(_ list: [ScannerAddress]) -> String {
            list.map { $0.description + ($0.weight == 1 ? "" : " weight=\($0.weight)") }.joined(separator: ", ")
        }
        switch p.settings {
        case .clamav(let clamav):
            keys = [("Address", addresses(clamav.addresses)), ("MaxSize", size(clamav.maxSize))]
        case .spamassassin(let spamd):
            keys = [("Address", addresses(spamd.addresses)), ("MaxSize", size(spamd.maxSize)),
                    ("SpamThreshold", spamd.spamThreshold.map { "\($0)" }),
                    ("UnconditionalSpamThreshold", spamd.unconditionalThreshold.map { "\($0)" }),
                    ("User", quote(spamd.user ?? ""))]
        case .rspamd(let rspamd):
            keys = [("Address", addresses(rspamd.addresses)), ("MaxSize", size(rspamd.maxSize)),
                    ("SpamThreshold", rspamd.spamThreshold.map { "\($0)" }),
                    ("UnconditionalSpamThreshold", rspamd.unconditionalThreshold.map { "\($0)" })]
        case .headersFilter(let headers):
            keys = [("MaxSize", headers.maxSize == Int.max ? nil : size(headers.maxSize))]
            keys += headers.rules.map { ("Rule", quote("\($0.keyword.rawValue) \($0.header) \($0.regex.pattern)")) }
        case .attachments(let a):
            keys = [("MaxSize", size(a.maxSize)),
                    ("BannedNames", a.bannedNames.map { quote($0, listItem: true) }.joined(separator: ", ")),
                    ("BannedContentTypes", a.bannedContentTypes.map { quote($0, listItem: true) }.joined(separator: ", ")),
                    ("ScanArchives", yes(a.scanArchives)), ("MaxArchiveDepth", "\(a.maxArchiveDepth)"),
                    ("MaxArchiveFiles", "\(a.maxArchiveFiles)"), ("MaxExpansionRatio", "\(a.maxExpansionRatio)"),
                    ("MaxExpandedSize", size(a.maxExpandedSize))]
        }
        keys.append(("Timeout", ValueSyntax.format(p.timeout)))
        for verdict in PluginCatalog.verdicts(of: p.name) {
            keys.append((PluginSection.key(for: verdict), p.actions[verdict].map { quote($0.description) }))
        }
        return keys
    }

    /// `10m` for 10485760: the largest binary unit that divides the size.
    package static func size(_ bytes: Int) -> String {
        for (unit, shift) in [("t", 40), ("g", 30), ("m", 20), ("k", 10)] where bytes != 0 && bytes % (1 << shift) == 0 {
            return "\(bytes >> shift)\(unit)"
        }
        return "\(bytes)"
    }

    private static func yes(_ flag: Bool) -> String { flag ? "yes" : "no" }

    private static func names(_ plugins: [String]) -> String {
        plugins.map { PluginCatalog.displayName($0) ?? $0 }.joined(separator: ", ")
    }

    /// `text` as a value the INI reader gives back unchanged: quoted (with `\"` and `\\`) when
    /// it has outer spaces, quotes, a comment character after a space, or (in a list) a comma.
    package static func quote(_ text: String, listItem: Bool = false) -> String {
        let bytes = Array(text.utf8)
        guard let first = bytes.first, let last = bytes.last else { return "" }
        var needs = ASCII.isSpace(first) || ASCII.isSpace(last) || first == 0x3B || first == 0x23 || bytes.contains(0x22)
        if listItem && bytes.contains(0x2C) { needs = true }
        for i in bytes.indices.dropFirst() where (bytes[i] == 0x3B || bytes[i] == 0x23) && ASCII.isSpace(bytes[i - 1]) { needs = true }
        guard needs else { return text }
        var out = "\""
        for ch in text {
            if ch == "\"" || ch == "\\" { out.append("\\") }
            out.append(ch)
        }
        return out + "\""
    }
}
