import PosternUtil
/// A plug-in as configured: the scanner, how long it may take, and the default action list of
/// each of its verdicts (its section's `…Actions` keys; rules may override them per recipient
/// as `plugin/…Actions`).
/// - SeeAlso: `docs/plugins.md`
public struct PluginSection: Sendable {
    /// Lower-cased plug-in name, e.g. `clamav`.
    public var name: String
    /// What the section configures; the scanning layer makes the plug-in of it.
    public var settings: PluginSettings
    /// The section name as documented, e.g. `ClamAV`.
    public var displayName: String
    /// Longest time one scan may take; never longer than `[Scanner] ScanTimeout` in effect.
    public var timeout: Duration
    /// Default action list by lower-cased verdict.
    public var actions: [String: ActionList]

    /// The parameter that holds the actions of `verdict`: `unconditional-spam` of
    /// `spamassassin` is `spamassassin/UnconditionalSpamActions`.
    public func parameter(for verdict: String) -> String {
        PluginSection.parameter(plugin: name, verdict: verdict)
    }

    public static func parameter(plugin: String, verdict: String) -> String {
        plugin + "/" + key(for: verdict)
    }

    /// The section key of a verdict's actions: `unconditional-spam` → `UnconditionalSpamActions`.
    public static func key(for verdict: String) -> String {
        verdict.split(separator: "-").map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined() + "Actions"
    }
}

/// The plug-ins Postern knows, and how each reads its section.
public enum PluginCatalog {
    /// Section names by lower-cased plug-in name, in documentation order.
    public static let displayNames: [(String, String)] = [
        ("clamav", "ClamAV"), ("spamassassin", "SpamAssassin"), ("rspamd", "Rspamd"),
        ("headersfilter", "HeadersFilter"), ("attachments", "Attachments"),
    ]

    public static func displayName(_ name: String) -> String? {
        displayNames.first { $0.0 == name }?.1
    }

    /// The verdicts that ask for actions (the plug-ins' findings use the same names).
    public static let infected = "infected"
    public static let spam = "spam"
    public static let unconditionalSpam = "unconditional-spam"
    public static let banned = "banned"
    public static let archiveBomb = "archive-bomb"

    /// The verdicts plug-in `name` can give that ask for actions, each with its
    /// `VERDICTActions` key in the section and its `plugin/VERDICTActions` rule parameter.
    public static func verdicts(of name: String) -> [String] {
        switch name {
        case "clamav": [infected]
        case "spamassassin", "rspamd": [spam, unconditionalSpam]
        case "headersfilter": HeadersFilterRule.Keyword.allCases.map(\.rawValue)
        case "attachments": [banned, archiveBomb]
        default: []
        }
    }

    /// Reads the section of plug-in `name` (known); errors go into `reader`.
    package static func read(_ name: String, _ reader: inout SectionReader) -> PluginSection {
        let display = displayName(name) ?? name
        var actions: [String: ActionList] = [:]
        func verdict(_ verdict: String, default value: ActionList) {
            actions[verdict] = reader.actions(PluginSection.key(for: verdict)) ?? value
        }
        let timeout = reader.duration("Timeout") ?? PluginDefaults.timeout
        let settings: PluginSettings
        switch name {
        case "clamav":
            settings = .clamav(ScannerSettings(addresses: reader.scannerAddresses("Address") ?? [PluginDefaults.clamd],
                                               maxSize: reader.size("MaxSize") ?? PluginDefaults.clamavMaxSize))
            verdict(infected, default: ActionList(main: .reject))
        case "spamassassin", "rspamd":
            let spamd = name == "spamassassin"
            let addresses = reader.scannerAddresses("Address") ?? [spamd ? PluginDefaults.spamd : PluginDefaults.rspamd]
            let maxSize = reader.size("MaxSize") ?? (spamd ? PluginDefaults.spamdMaxSize : PluginDefaults.rspamdMaxSize)
            let threshold = reader.number("SpamThreshold")
            let unconditional = reader.number("UnconditionalSpamThreshold")
            if spamd {
                settings = .spamassassin(SpamSettings(addresses: addresses, maxSize: maxSize, spamThreshold: threshold,
                                                      unconditionalThreshold: unconditional, user: reader.optionalString("User")))
            } else {
                settings = .rspamd(SpamSettings(addresses: addresses, maxSize: maxSize, spamThreshold: threshold,
                                                unconditionalThreshold: unconditional))
            }
            verdict(spam, default: ActionList(main: .continue))
            verdict(unconditionalSpam, default: ActionList(main: .reject))
        case "headersfilter":
            settings = .headersFilter(HeadersFilterSettings(rules: reader.headerRules("Rule"), maxSize: reader.size("MaxSize") ?? Int.max))
            for keyword in HeadersFilterRule.Keyword.allCases {
                verdict(keyword.rawValue, default: keyword.defaultActions)
            }
        default:   // attachments
            var attachments = AttachmentsSettings()
            attachments.maxSize = reader.size("MaxSize") ?? attachments.maxSize
            attachments.bannedNames = reader.list("BannedNames") ?? attachments.bannedNames
            attachments.bannedContentTypes = (reader.list("BannedContentTypes") ?? attachments.bannedContentTypes).map(ASCII.lowercased)
            attachments.scanArchives = reader.bool("ScanArchives") ?? attachments.scanArchives
            attachments.maxArchiveDepth = reader.integer("MaxArchiveDepth", in: 0...64) ?? attachments.maxArchiveDepth
            attachments.maxArchiveFiles = reader.integer("MaxArchiveFiles", in: 1...1_000_000) ?? attachments.maxArchiveFiles
            attachments.maxExpansionRatio = reader.integer("MaxExpansionRatio", in: 1...1_000_000) ?? attachments.maxExpansionRatio
            attachments.maxExpandedSize = reader.size("MaxExpandedSize") ?? attachments.maxExpandedSize
            settings = .attachments(attachments)
            verdict(banned, default: ActionList(main: .reject))
            verdict(archiveBomb, default: ActionList(main: .reject))
        }
        return PluginSection(name: name, settings: settings, displayName: display, timeout: timeout, actions: actions)
    }
}

/// Defaults of the plug-in sections, each with why.
public enum PluginDefaults {
    /// Long enough for clamd on a large archive, short enough to stay well inside ScanTimeout.
    public static let timeout = Duration.seconds(60)
    /// Debian's clamav-daemon socket.
    public static let clamd = ScannerAddress(location: .unix(path: "/var/run/clamav/clamd.ctl"), weight: 1)
    /// spamd's and rspamd's standard ports.
    public static let spamd = ScannerAddress(location: .inet(host: "127.0.0.1", port: 783), weight: 1)
    public static let rspamd = ScannerAddress(location: .inet(host: "127.0.0.1", port: 11333), weight: 1)
    /// clamd's default StreamMaxLength.
    public static let clamavMaxSize = 25 << 20
    /// spamc's default: spam is small, and SpamAssassin's cost grows with the size.
    public static let spamdMaxSize = 500 << 10
    /// rspamd copes with larger mail than spamd.
    public static let rspamdMaxSize = 2 << 20
}

extension SectionReader {
    /// A decimal number such as `5` or `12.5`.
    package mutating func number(_ key: String) -> Double? {
        guard let raw = value(key) else { return nil }
        if let n = Double(raw.text), n.isFinite { return n }
        report(line: raw.line, column: raw.column, "invalid value '\(raw.text)' for \(raw.key): expected a number such as 5 or 12.5")
        return nil
    }

    /// A list of scanner addresses, each `ADDRESS` or `ADDRESS weight=N`.
    package mutating func scannerAddresses(_ key: String) -> [ScannerAddress]? {
        guard let items = items(key) else { return nil }
        var result: [ScannerAddress] = []
        for item in items {
            let words = item.text.split(separator: " ", omittingEmptySubsequences: true)
            var weight = 1
            if words.count == 2, words[1].hasPrefix("weight="), let w = Int(words[1].dropFirst(7)), (1...1000).contains(w) {
                weight = w
            } else if words.count != 1 {
                report(line: item.line, column: item.column, "invalid scanner address '\(item.text)': expected ADDRESS or ADDRESS weight=N (1-1000)")
                continue
            }
            do throws(EndpointError) {
                let endpoint = try Endpoint.parse(String(words[0]))
                guard endpoint.mailProtocol == .smtp, !endpoint.hasMacros else {
                    report(line: item.line, column: item.column, "a scanner address takes no protocol prefix and no CLIENT-IP/SERVER-IP")
                    continue
                }
                switch endpoint.location {
                case .unix(let path): result.append(ScannerAddress(location: .unix(path: path), weight: weight))
                case .inet(let host, let port): result.append(ScannerAddress(location: .inet(host: host, port: port), weight: weight))
                }
            } catch {
                report(line: item.line, column: item.column + error.offset, error.description)
            }
        }
        return result
    }

    /// Every `Key = KEYWORD HEADER REGEX` line of `[HeadersFilter]`.
    package mutating func headerRules(_ key: String) -> [HeadersFilterRule] {
        guard let raw = use(key) else { return [] }
        var rules: [HeadersFilterRule] = []
        for value in raw.values {
            switch HeadersFilterRule.parse(value.text) {
            case .success(let rule): rules.append(rule)
            case .failure(let error): report(line: value.line, column: value.column + error.offset, error.message)
            }
        }
        return rules
    }
}

extension PluginCatalog {
    /// Plug-in `name` (known) with every default, as an empty section gives it.
    public static func defaults(_ name: String) -> PluginSection {
        var reader = SectionReader(nil, name: displayName(name) ?? name, file: "")
        return read(name, &reader)
    }
}
