/// Whether receiverd is under stress, as Postfix's `master` tells its servers when a service
/// runs out of processes (`${stress?…}` defaults, STRESS_README): stress begins when the open
/// sessions reach `StressThreshold` percent of `MaxSessions`, and ends only when they fall
/// below nine tenths of that level, so that a load hovering at the threshold does not flip
/// the mode (and the log) with every connection.
package struct StressGauge {
    package enum Change: Equatable {
        case entered
        case left
    }

    package private(set) var stressed = false

    package init() {}

    /// Sessions at which stress begins; nil when `threshold` is 0 (never).
    package static func level(maxSessions: Int, threshold: Int) -> Int? {
        guard threshold > 0 else { return nil }
        return max(1, (maxSessions * threshold + 99) / 100)
    }

    /// The open sessions changed: whether the mode changed with them.
    package mutating func update(sessions: Int, maxSessions: Int, threshold: Int) -> Change? {
        guard let level = Self.level(maxSessions: maxSessions, threshold: threshold) else {
            defer { stressed = false }
            return stressed ? .left : nil
        }
        if !stressed && sessions >= level {
            stressed = true
            return .entered
        }
        if stressed && sessions * 10 < level * 9 {
            stressed = false
            return .left
        }
        return nil
    }
}
