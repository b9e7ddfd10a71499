/// `[General] LogLevel`; the names and order are swift-log's `Logger.Level`, so the daemons can
/// map it with `Logger.Level(rawValue:)`.
public enum LogLevel: String, Sendable, CaseIterable, Comparable {
    case trace, debug, info, notice, warning, error, critical

    public static func < (lhs: LogLevel, rhs: LogLevel) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
    }
}
