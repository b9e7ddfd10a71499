import PosternMIME
import PosternPolicy
import PosternSMTP
import PosternUtil
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
    /// One `Rule =` line, as the configuration read it.
    public typealias Rule = HeadersFilterRule
    public typealias Keyword = HeadersFilterRule.Keyword

    public let name = "headersfilter"
    public let maxSize: Int
    public let rules: [Rule]

    public init(rules: [Rule], maxSize: Int) {
        self.rules = rules
        self.maxSize = maxSize
    }

    public init(settings: HeadersFilterSettings) {
        self.init(rules: settings.rules, maxSize: settings.maxSize)
    }

    public func scan(_ request: ScanRequest, deadline: ContinuousClock.Instant) throws(PluginError) -> Finding {
        let head: [HeaderField]
        do { head = try request.message.headerFields() } catch { throw .unreadable(error) }
        let fields = head.map { field in
            var values = [field.value.contains("\0") ? String(field.value.map { $0 == "\0" ? " " : $0 }) : field.value]
            if values[0].contains("=?") { values.append(EncodedWord.decode(values[0])) }
            return (name: ASCII.lowercased(field.name), shown: field.name, values: values)
        }
        for rule in rules {
            for field in fields where field.name == rule.header && field.values.contains(where: rule.regex.matches) {
                return Finding(plugin: name, verdict: FindingVerdict(rawValue: rule.keyword.rawValue), names: ["header:\(field.shown)"],
                               detail: "\(rule.keyword.rawValue): header:\(field.shown) matches \(rule.regex.pattern)")
            }
        }
        return Finding(plugin: name, verdict: .clean, detail: "no rule matched")
    }
}
