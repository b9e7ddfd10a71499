/// A parsed rule condition.
///
/// `!` binds tighter than `&&`, which binds tighter than `||`; chains are kept flat so
/// evaluation is a loop, not a deep recursion, and allocates nothing.
package indirect enum Condition: Sendable {
    case constant(Bool)
    case term(Term)
    case not(Condition)
    case all([Condition])
    case any([Condition])

    package func evaluate(_ context: RuleContext) -> Truth {
        switch self {
        case .constant(let value):
            return Truth(value)
        case .term(let term):
            return term.evaluate(context)
        case .not(let inner):
            return !inner.evaluate(context)
        case .all(let parts):
            var result = Truth.true
            for part in parts {
                result = result && part.evaluate(context)
                if result == .false { return .false }
            }
            return result
        case .any(let parts):
            var result = Truth.false
            for part in parts {
                result = result || part.evaluate(context)
                if result == .true { return .true }
            }
            return result
        }
    }

    /// Whether a `header:` term occurs, so callers parse headers only when a rule needs them.
    package var usesHeaders: Bool {
        switch self {
        case .constant: false
        case .term(let term): if case .header = term.kind { true } else { false }
        case .not(let inner): inner.usesHeaders
        case .all(let parts), .any(let parts): parts.contains { $0.usesHeaders }
        }
    }
}
