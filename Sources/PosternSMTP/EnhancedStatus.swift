/// An RFC 3463 enhanced status code, `class.subject.detail`.
/// - SeeAlso: RFC 3463, RFC 2034
public struct EnhancedStatus: Sendable, Hashable, CustomStringConvertible {
    public var klass: Int
    public var subject: Int
    public var detail: Int

    public init(_ klass: Int, _ subject: Int, _ detail: Int) {
        self.klass = klass
        self.subject = subject
        self.detail = detail
    }

    public var description: String { "\(klass).\(subject).\(detail)" }

    /// `status-code = class "." subject "." detail` at the start of a reply text.
    public static func parse(_ text: Substring) -> EnhancedStatus? {
        let parts = text.split(separator: ".", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, let k = Int(parts[0]), [2, 4, 5].contains(k),
              let s = Int(parts[1]), let d = Int(parts[2]), s >= 0, d >= 0, s < 1000, d < 1000
        else { return nil }
        return EnhancedStatus(k, s, d)
    }
}

extension EnhancedStatus {
    /// The status of a reply quoted in a text (`… said: 451 4.3.0 Try later`): the first word
    /// after a three-digit code that parses as one, as text; nil when there is none.
    public static func first(in text: String) -> String? {
        let words = text.split(separator: " ")
        for (i, w) in words.enumerated().dropLast() where w.count == 3 && w.allSatisfy(\.isASCIIDigit) {
            if let s = parse(words[i + 1]) { return s.description }
        }
        return nil
    }
}

extension Character {
    package var isASCIIDigit: Bool { asciiValue.map { $0 >= 48 && $0 <= 57 } ?? false }
}
