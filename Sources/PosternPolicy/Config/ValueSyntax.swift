import PosternUtil
/// Parsers for the scalar value forms shared by every section and by rule settings.
public enum ValueSyntax {
    /// `size = 1*DIGIT ["k" / "m" / "g" / "t"]` — binary multiples (as Dr.Web MailD and most MTAs
    /// count), case-insensitive; a bare number is bytes. Nil on syntax error or overflow.
    public static func parseSize(_ text: String) -> Int? {
        var digits = Substring(text)
        var multiplier = 1
        if let last = digits.utf8.last, !ASCII.isDigit(last) {
            switch ASCII.lower(last) {
            case UInt8(ascii: "b"): multiplier = 1
            case UInt8(ascii: "k"): multiplier = 1 << 10
            case UInt8(ascii: "m"): multiplier = 1 << 20
            case UInt8(ascii: "g"): multiplier = 1 << 30
            case UInt8(ascii: "t"): multiplier = 1 << 40
            default: return nil
            }
            digits = digits.dropLast()
        }
        guard !digits.isEmpty, digits.utf8.allSatisfy(ASCII.isDigit), let value = Int(digits) else { return nil }
        let (product, overflow) = value.multipliedReportingOverflow(by: multiplier)
        return overflow ? nil : product
    }

    /// The longest time a value may name: 999 999 999 seconds, almost 32 years, more than any
    /// timeout, retry interval or lifetime needs. A longer one is a typing mistake, and it would
    /// overflow where a daemon turns it into 64-bit nanoseconds (292 years) for a timer, or
    /// into milliseconds that ``format(_:)`` cannot write in the 12 digits a number may have.
    public static let maxDuration = Duration.seconds(999_999_999)

    /// `duration = 1*(1*DIGIT unit)` with units `ms`, `s`, `m`, `h`, `d`, `w` (`1h30m` adds up);
    /// a bare number is seconds. Nil on syntax error or beyond ``maxDuration``.
    public static func parseDuration(_ text: String) -> Duration? {
        let bytes = Array(text.utf8)
        guard !bytes.isEmpty else { return nil }
        if bytes.allSatisfy(ASCII.isDigit) {
            guard bytes.count <= 12, let seconds = Int64(text), Duration.seconds(seconds) <= maxDuration else { return nil }
            return .seconds(seconds)
        }
        var total = Duration.zero
        var index = 0
        while index < bytes.count {
            let start = index
            while index < bytes.count && ASCII.isDigit(bytes[index]) { index += 1 }
            guard index > start, index - start <= 12,
                  let number = Int64(String(decoding: bytes[start..<index], as: UTF8.self)) else { return nil }
            let unitStart = index
            while index < bytes.count && !ASCII.isDigit(bytes[index]) { index += 1 }
            switch String(decoding: bytes[unitStart..<index].map(ASCII.lower), as: UTF8.self) {
            case "ms": total += .milliseconds(number)
            case "s": total += .seconds(number)
            case "m": total += .seconds(number * 60)
            case "h": total += .seconds(number * 3600)
            case "d": total += .seconds(number * 86400)
            case "w": total += .seconds(number * 604_800)
            default: return nil
            }
            guard total <= maxDuration else { return nil }
        }
        return total
    }

    /// `yes`/`no`, `true`/`false`, `on`/`off`, case-insensitive.
    public static func parseBool(_ text: String) -> Bool? {
        switch ASCII.lowercased(text) {
        case "yes", "true", "on": true
        case "no", "false", "off": false
        default: nil
        }
    }

    /// Formats a duration the way it would be written in the file (`5m`, `1500ms`).
    public static func format(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        if attoseconds != 0 { return "\(seconds * 1000 + attoseconds / 1_000_000_000_000_000)ms" }
        for (unit, length) in [("w", Int64(604_800)), ("d", 86400), ("h", 3600), ("m", 60)]
        where seconds != 0 && seconds % length == 0 {
            return "\(seconds / length)\(unit)"
        }
        return "\(seconds)s"
    }
}
