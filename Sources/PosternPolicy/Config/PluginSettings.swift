import PosternUtil

/// What a plug-in section configures, before anything is connected: the scanning layer turns
/// it into the plug-in (`PluginSection.plugin`).
/// - SeeAlso: `docs/plugins.md`
public enum PluginSettings: Sendable {
    case clamav(ScannerSettings)
    case spamassassin(SpamSettings)
    case rspamd(SpamSettings)
    case headersFilter(HeadersFilterSettings)
    case attachments(AttachmentsSettings)
}

/// `[ClamAV]`: where clamd listens and the largest message sent to it.
public struct ScannerSettings: Sendable, Hashable {
    public var addresses: [ScannerAddress]
    public var maxSize: Int
    public init(addresses: [ScannerAddress], maxSize: Int) {
        self.addresses = addresses
        self.maxSize = maxSize
    }
}

/// `[SpamAssassin]` and `[Rspamd]`.
public struct SpamSettings: Sendable, Hashable {
    public var addresses: [ScannerAddress]
    public var maxSize: Int
    /// Score from which a message is `spam`; nil: the scanner's own `required_score`.
    public var spamThreshold: Double?
    /// Score from which a message is `unconditional-spam`; nil: never.
    public var unconditionalThreshold: Double?
    /// spamd only: whose preferences it uses (`User:`); nil: spamd's default user.
    public var user: String?
    public init(addresses: [ScannerAddress], maxSize: Int, spamThreshold: Double?, unconditionalThreshold: Double?, user: String? = nil) {
        self.addresses = addresses
        self.maxSize = maxSize
        self.spamThreshold = spamThreshold
        self.unconditionalThreshold = unconditionalThreshold
        self.user = user
    }
}

/// `[HeadersFilter]`: its rules, first match wins.
public struct HeadersFilterSettings: Sendable {
    public var rules: [HeadersFilterRule]
    public var maxSize: Int
    public init(rules: [HeadersFilterRule], maxSize: Int) {
        self.rules = rules
        self.maxSize = maxSize
    }
}

/// One `Rule = KEYWORD HEADER REGEX` line of `[HeadersFilter]`. The regex (POSIX extended,
/// case-insensitive) is the rest of the line.
public struct HeadersFilterRule: Sendable {
    /// What a matching rule means; each is a verdict with its own action parameter.
    public enum Keyword: String, Sendable, CaseIterable {
        case reject, accept, discard, tempfail

        /// The default action list of the verdict.
        public var defaultActions: ActionList {
            switch self {
            case .reject: ActionList(main: .reject)
            case .accept: ActionList(main: .pass)
            case .discard: ActionList(main: .discard)
            case .tempfail: ActionList(main: .tempfail)
            }
        }
    }

    public var keyword: Keyword
    /// Lower-cased field name.
    public var header: String
    public var regex: POSIXRegex

    public init(keyword: Keyword, header: String, regex: POSIXRegex) {
        self.keyword = keyword
        self.header = header
        self.regex = regex
    }

    /// `rule = keyword 1*SP header-name [":"] 1*SP regex`; on failure the byte offset and a message.
    public static func parse(_ text: String) -> Result<HeadersFilterRule, ParameterCatalog.CatalogError> {
        let words = text.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: true)
        guard words.count == 3 else {
            return .failure(.init(offset: 0, message: "expected KEYWORD HEADER REGEX, e.g. reject Subject ^\\[SPAM\\]"))
        }
        guard let keyword = Keyword(rawValue: ASCII.lowercased(String(words[0]))) else {
            let known = Keyword.allCases.map(\.rawValue).joined(separator: ", ")
            return .failure(.init(offset: 0, message: "unknown keyword '\(words[0])': expected one of \(known)"))
        }
        var header = Substring(words[1])
        if header.last == ":" { header = header.dropLast() }
        let regexOffset = text.utf8.distance(from: text.utf8.startIndex, to: words[2].utf8.startIndex)
        do throws(RegexError) {
            let regex = try POSIXRegex(String(words[2]))
            return .success(HeadersFilterRule(keyword: keyword, header: ASCII.lowercased(String(header)), regex: regex))
        } catch {
            return .failure(.init(offset: regexOffset, message: error.description))
        }
    }
}
