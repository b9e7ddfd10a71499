import Glibc

/// A compiled POSIX extended regular expression (case-insensitive by default, unanchored).
///
/// Compiled once at configuration load. `@unchecked Sendable` because the `regex_t` is never
/// mutated after `regcomp`, and glibc's `regexec` takes the pattern's own lock while it runs.
public final class POSIXRegex: @unchecked Sendable {
    /// The source pattern, for messages and traces.
    public let pattern: String
    private let compiled: UnsafeMutablePointer<regex_t>

    /// The most copies of its parts a pattern may expand to (see ``expandedSize(_:)``).
    public static let maxExpandedSize = 20_000

    /// Compiles `pattern`; the error carries `regerror`'s explanation, or says the pattern is
    /// too large once expanded.
    public init(_ pattern: String, caseInsensitive: Bool = true) throws(RegexError) {
        guard Self.expandedSize(pattern) <= Self.maxExpandedSize else {
            throw RegexError(pattern: pattern, reason: "too large once its repetitions are expanded (more than \(Self.maxExpandedSize) copies of its parts)")
        }
        // Compile into a local first: once every property is set, a throw would run deinit
        // and regfree a pattern that never compiled.
        let storage = UnsafeMutablePointer<regex_t>.allocate(capacity: 1)
        let flags = REG_EXTENDED | REG_NOSUB | (caseInsensitive ? REG_ICASE : 0)
        let status = regcomp(storage, pattern, flags)
        guard status == 0 else {
            var buffer = [CChar](repeating: 0, count: 256)
            regerror(status, storage, &buffer, buffer.count)
            storage.deallocate()
            let reason = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            throw RegexError(pattern: pattern, reason: reason)
        }
        self.pattern = pattern
        compiled = storage
    }

    deinit {
        regfree(compiled)
        compiled.deallocate()
    }

    /// Whether the pattern matches anywhere in `text`. A NUL would end the C string regexec
    /// reads and hide the rest of the text (a header value or a file name from the sender):
    /// it is read as a space, as the headers filter reads it.
    public func matches(_ text: String) -> Bool {
        // Native Swift strings are NUL-terminated UTF-8, so withCString does not copy.
        ASCII.replacing(text, where: { $0 == 0 }, with: 0x20).withCString { regexec(compiled, $0, 0, nil, 0) == 0 }
    }
}

extension POSIXRegex {
    /// About how many copies of its atoms glibc's `regcomp` makes of `pattern`, which it
    /// compiles by copying: `E+` is `E E*` and `E{m,n}` is m copies of E and n−m optional ones,
    /// and the optional ones cost about the square of their number. Stacked or nested
    /// repetitions multiply, so `a++++…` or `((a{99}){99}){99}` would take gigabytes (a rules
    /// file is the administrator's, but `config check` and every daemon compile it). A `*`,
    /// `+` or `?` right after another repetition counts four times, not twice: glibc's
    /// epsilon closures make each such one cost about four times the time of the pattern
    /// before it (`^y(es)?` and twelve `+` took 24 s to compile). The result saturates just
    /// above ``maxExpandedSize``.
    public static func expandedSize(_ pattern: String) -> Int {
        let limit = maxExpandedSize + 1
        let p = Array(pattern.utf8)
        // Per open group: the cost so far and the cost of its last item (what a quantifier
        // multiplies).
        var groups: [(total: Int, last: Int)] = [(0, 0)]
        func add(_ cost: Int) {
            groups[groups.count - 1].total = min(limit, groups[groups.count - 1].total + cost)
            groups[groups.count - 1].last = cost
        }
        func repeatLast(_ factor: Int) {
            let g = groups[groups.count - 1]
            let grown = g.last.multipliedReportingOverflow(by: max(factor, 1))
            let last = grown.overflow ? limit : min(limit, grown.partialValue)
            groups[groups.count - 1] = (min(limit, g.total - g.last + last), last)
        }
        var i = 0
        // Whether the last item was a repetition: another one right after it is stacked.
        var repeated = false
        while i < p.count {
            let wasRepeated = repeated
            repeated = false
            switch p[i] {
            case UInt8(ascii: "\\"):
                i += 2
                add(1)
                continue
            case UInt8(ascii: "["):
                // A bracket expression is one atom: `]` first (or after `^`) is a member, and
                // `[:alpha:]`, `[=a=]`, `[.a.]` are closed by their own `:]`, `=]`, `.]`.
                var j = i + 1
                if j < p.count && p[j] == UInt8(ascii: "^") { j += 1 }
                if j < p.count && p[j] == UInt8(ascii: "]") { j += 1 }
                while j < p.count && p[j] != UInt8(ascii: "]") {
                    if p[j] == UInt8(ascii: "["), j + 1 < p.count, [UInt8(ascii: ":"), UInt8(ascii: "="), UInt8(ascii: ".")].contains(p[j + 1]) {
                        let close = p[j + 1]
                        j += 2
                        while j + 1 < p.count && !(p[j] == close && p[j + 1] == UInt8(ascii: "]")) { j += 1 }
                        j += 2
                    } else {
                        j += 1
                    }
                }
                i = j + 1
                add(1)
                continue
            case UInt8(ascii: "("):
                groups.append((0, 0))
            case UInt8(ascii: ")"):
                if groups.count > 1 {
                    let inner = groups.removeLast().total
                    add(inner)
                }
            case UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "?"):
                repeatLast(wasRepeated ? 4 : 2)
                repeated = true
            case UInt8(ascii: "{"):
                // A bound only as `{m}`, `{m,}` or `{m,n}`; anything else is left to regcomp.
                var j = i + 1
                var numbers: [Int?] = [nil]
                while j < p.count, p[j] != UInt8(ascii: "}") {
                    let c = p[j]
                    if c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") {
                        numbers[numbers.count - 1] = min(100_000, (numbers[numbers.count - 1] ?? 0) * 10 + Int(c - UInt8(ascii: "0")))
                    } else if c == UInt8(ascii: ","), numbers.count == 1 {
                        numbers.append(nil)
                    } else {
                        break
                    }
                    j += 1
                }
                guard j < p.count, p[j] == UInt8(ascii: "}") else {
                    add(1)
                    break
                }
                let m = numbers[0] ?? 0
                let factor: Int
                if numbers.count == 1 {
                    factor = m
                } else if let n = numbers[1] {
                    let optional = max(0, n - m)
                    factor = min(limit, max(m, n) + optional * optional / 100)
                } else {
                    factor = m + 1
                }
                repeatLast(factor)
                repeated = true
                i = j
            default:
                add(1)
            }
            i += 1
        }
        while groups.count > 1 {
            let inner = groups.removeLast().total
            add(inner)
        }
        return groups[0].total
    }
}

/// A pattern `regcomp` refused.
public struct RegexError: Error, Sendable, CustomStringConvertible {
    /// The pattern as written.
    public var pattern: String
    /// `regerror`'s text.
    public var reason: String

    public var description: String { "invalid regular expression '\(pattern)': \(reason)" }
}
