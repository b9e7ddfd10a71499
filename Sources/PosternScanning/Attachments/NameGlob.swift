/// A shell wildcard (`*`, `?`, `[a-z]`, `[!…]`, `\` escapes) matched case-insensitively.
///
/// Own code rather than fnmatch(3): a decoded name may hold NUL, and FNM_CASEFOLD folds by locale.
/// - SeeAlso: POSIX.1-2017 XCU §2.13 Pattern Matching Notation
public struct NameGlob: Sendable, Hashable {
    package enum Token: Sendable, Hashable {
        case literal(Unicode.Scalar)
        case any
        case star
        case set([ClosedRange<Unicode.Scalar>], negated: Bool)
    }

    public let pattern: String
    package let tokens: [Token]

    public init(_ pattern: String) {
        self.pattern = pattern
        tokens = Self.compile(Array(pattern.lowercased().unicodeScalars))
    }

    public func matches(_ text: String) -> Bool {
        matches(lowered: Array(text.lowercased().unicodeScalars))
    }

    /// Greedy match remembering the last `*`: linear for the usual patterns, never exponential.
    package func matches(lowered text: [Unicode.Scalar]) -> Bool {
        var p = 0, t = 0, starP = -1, starT = 0
        while t < text.count {
            if p < tokens.count {
                switch tokens[p] {
                case .star:
                    starP = p; starT = t; p += 1; continue
                case .any:
                    p += 1; t += 1; continue
                case .literal(let c) where c == text[t]:
                    p += 1; t += 1; continue
                case .set(let ranges, let negated) where ranges.contains { $0.contains(text[t]) } != negated:
                    p += 1; t += 1; continue
                default:
                    break
                }
            }
            guard starP >= 0 else { return false }
            p = starP + 1; starT += 1; t = starT
        }
        while p < tokens.count, tokens[p] == .star { p += 1 }
        return p == tokens.count
    }

    package static func compile(_ s: [Unicode.Scalar]) -> [Token] {
        var out: [Token] = []
        var i = 0
        while i < s.count {
            switch s[i] {
            case "*":
                if out.last != .star { out.append(.star) }
                i += 1
            case "?":
                out.append(.any); i += 1
            case "\\" where i + 1 < s.count:
                out.append(.literal(s[i + 1])); i += 2
            case "[":
                if let (set, next) = compileSet(s, from: i) { out.append(set); i = next } else { out.append(.literal("[")); i += 1 }
            default:
                out.append(.literal(s[i])); i += 1
            }
        }
        return out
    }

    /// bracket := "[" ["!" | "^"] ["]"] *(char | char "-" char) "]"; nil when unterminated.
    package static func compileSet(_ s: [Unicode.Scalar], from start: Int) -> (Token, Int)? {
        var i = start + 1
        var negated = false
        if i < s.count, s[i] == "!" || s[i] == "^" { negated = true; i += 1 }
        var ranges: [ClosedRange<Unicode.Scalar>] = []
        var first = true
        while i < s.count {
            var low = s[i]
            if low == "]" && !first { return (.set(ranges, negated: negated), i + 1) }
            first = false
            if low == "\\", i + 1 < s.count { i += 1; low = s[i] }
            if i + 2 < s.count, s[i + 1] == "-", s[i + 2] != "]" {
                if low <= s[i + 2] { ranges.append(low...s[i + 2]) }
                i += 3
            } else {
                ranges.append(low...low); i += 1
            }
        }
        return nil
    }
}
