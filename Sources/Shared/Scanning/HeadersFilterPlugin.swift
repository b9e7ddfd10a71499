/// `[HeadersFilter]`: ordered regular-expression rules on header fields; the first rule that
/// matches gives the verdict, named after its keyword (`reject` → `headersfilter/RejectActions`).
///
/// ```
/// Rule = reject Subject ^\[SPAM\]
/// Rule = accept X-Trusted-Relay ^yes$
/// ```
/// A rule is `KEYWORD HEADER-NAME REGEX`; the regex (POSIX extended, case-insensitive) is the
/// rest of the line and is matched against each unfolded field of that name, as written and with
/// its RFC 2047 encoded words decoded (NUL bytes read as spaces: a C regex would stop there).
public struct HeadersFilterPlugin: ScanPlugin {
    /// One `Rule =` line.
    public struct Rule: Sendable {
        public var keyword: Keyword
        public var header: String
        public var regex: POSIXRegex
        public init(keyword: Keyword, header: String, regex: POSIXRegex) {
            self.keyword = keyword
            self.header = header
            self.regex = regex
        }
    }

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

    public let name = "headersfilter"
    public let maxSize: Int
    public let rules: [Rule]

    public init(rules: [Rule], maxSize: Int) {
        self.rules = rules
        self.maxSize = maxSize
    }

    public func scan(_ request: ScanRequest, deadline: ContinuousClock.Instant) throws(PluginError) -> Finding {
        let fields = HeaderField.parseSection(request.message).map { field in
            var values = [field.value.contains("\0") ? String(field.value.map { $0 == "\0" ? " " : $0 }) : field.value]
            if values[0].contains("=?") { values.append(EncodedWord.decode(values[0])) }
            return (name: ASCII.lowercased(field.name), shown: field.name, values: values)
        }
        for rule in rules {
            for field in fields where field.name == rule.header && field.values.contains(where: rule.regex.matches) {
                return Finding(plugin: name, verdict: rule.keyword.rawValue, names: ["header:\(field.shown)"],
                               detail: "\(rule.keyword.rawValue): header:\(field.shown) matches \(rule.regex.pattern)")
            }
        }
        return Finding(plugin: name, verdict: Finding.clean, detail: "no rule matched")
    }

    /// Parses `KEYWORD HEADER REGEX`; on failure the byte offset and a message.
    public static func parseRule(_ text: String) -> Result<Rule, ParameterCatalog.CatalogError> {
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
            return .success(Rule(keyword: keyword, header: ASCII.lowercased(String(header)), regex: regex))
        } catch {
            return .failure(.init(offset: regexOffset, message: error.description))
        }
    }
}
