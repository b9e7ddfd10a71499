/// The three-valued result of a rule condition (Kleene logic).
///
/// `unknown` is what a term yields when its data is not known yet — `block:` before scanning,
/// `header:` when the headers were not supplied — and a rule whose condition is unknown does not
/// apply at all: it neither sets nor stops.
public enum Truth: String, Sendable, Hashable {
    case `true`, `false`, unknown

    /// `.true` or `.false`.
    @inline(__always)
    public init(_ value: Bool) {
        self = value ? .true : .false
    }

    /// `!unknown` is unknown.
    @inline(__always)
    public static prefix func ! (value: Truth) -> Truth {
        switch value {
        case .true: .false
        case .false: .true
        case .unknown: .unknown
        }
    }

    /// `true || unknown` is true; `false || unknown` is unknown.
    @inline(__always)
    public static func || (left: Truth, right: Truth) -> Truth {
        if left == .true || right == .true { return .true }
        return left == .unknown || right == .unknown ? .unknown : .false
    }

    /// `false && unknown` is false; `true && unknown` is unknown.
    @inline(__always)
    public static func && (left: Truth, right: Truth) -> Truth {
        if left == .false || right == .false { return .false }
        return left == .unknown || right == .unknown ? .unknown : .true
    }
}
