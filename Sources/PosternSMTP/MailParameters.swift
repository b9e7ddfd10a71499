/// ESMTP parameters of MAIL or RCPT, in the order the client gave them.
/// `Mail-parameters = esmtp-param *(SP esmtp-param)`, `esmtp-param = esmtp-keyword ["=" esmtp-value]`
/// - SeeAlso: RFC 5321 §4.1.2
public struct MailParameters: Sendable, Hashable, CustomStringConvertible {
    public struct Parameter: Sendable, Hashable {
        /// Upper-cased keyword.
        public var keyword: String
        public var value: String?
        public init(keyword: String, value: String?) {
            self.keyword = keyword.uppercased()
            self.value = value
        }
    }

    public var items: [Parameter]

    public init(_ items: [Parameter] = []) { self.items = items }

    public subscript(keyword: String) -> String? {
        items.first { $0.keyword == keyword }?.value
    }

    public func has(_ keyword: String) -> Bool { items.contains { $0.keyword == keyword } }

    public mutating func set(_ keyword: String, _ value: String?) {
        let k = keyword.uppercased()
        if let i = items.firstIndex(where: { $0.keyword == k }) { items[i].value = value } else {
            items.append(Parameter(keyword: k, value: value))
        }
    }

    public mutating func remove(_ keyword: String) { items.removeAll { $0.keyword == keyword } }

    /// `KEY=value KEY2` as on the wire (empty when there are none).
    public var description: String {
        items.map { p in p.value.map { "\(p.keyword)=\($0)" } ?? p.keyword }.joined(separator: " ")
    }

    /// `esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-")`,
    /// `esmtp-value = 1*(%d33-60 / %d62-126 / UTF8-non-ascii)`
    public static func parse(_ text: Substring) throws(CommandError) -> MailParameters {
        var items: [Parameter] = []
        for word in text.split(separator: " ", omittingEmptySubsequences: true) {
            let eq = word.firstIndex(of: "=")
            let key = eq.map { word[..<$0] } ?? word
            guard let f = key.unicodeScalars.first, f.isASCIIAlnum,
                  key.unicodeScalars.allSatisfy({ $0.isASCIIAlnum || $0 == "-" })
            else { throw CommandError(.syntax, "bad parameter keyword \(key.prefix(40))") }
            var value: String?
            if let eq {
                let v = word[word.index(after: eq)...]
                guard !v.isEmpty, v.unicodeScalars.allSatisfy({ $0.value > 32 && $0 != "=" && $0.value != 127 })
                else { throw CommandError(.syntax, "bad value for parameter \(key)") }
                value = String(v)
            }
            let p = Parameter(keyword: String(key), value: value)
            guard !items.contains(where: { $0.keyword == p.keyword }) else {
                throw CommandError(.syntax, "duplicate parameter \(p.keyword)")
            }
            items.append(p)
        }
        return MailParameters(items)
    }
}

extension Unicode.Scalar {
    package var isASCIIAlnum: Bool {
        (value >= 0x30 && value <= 0x39) || (value >= 0x41 && value <= 0x5A) || (value >= 0x61 && value <= 0x7A)
    }
}
