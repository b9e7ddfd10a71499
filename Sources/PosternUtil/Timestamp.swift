import Glibc

/// strftime(3) in the C locale, for header dates and listings.
public enum Timestamp {
    /// `Thu, 26 Nov 2026 10:00:00 +0000` (RFC 5322 §3.3).
    public static let rfc5322 = "%a, %d %b %Y %H:%M:%S %z"

    public static func format(_ t: time_t, _ pattern: String, utc: Bool = false) -> String {
        var t = t
        var tmv = tm()
        if utc { gmtime_r(&t, &tmv) } else { localtime_r(&t, &tmv) }
        var buf = [CChar](repeating: 0, count: 128)
        let n = strftime(&buf, buf.count, pattern, &tmv)
        return String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// Durations as whole nanoseconds, for the C and NIO calls that count in them.
public enum Monotonic {
    public static func nanoseconds(_ d: Duration) -> UInt64 {
        let c = d.components
        return UInt64(max(0, c.seconds)) * 1_000_000_000 + UInt64(max(0, c.attoseconds) / 1_000_000_000)
    }
}

/// The wall clock, for arrival times and queue ids. A type of its own rather than members
/// added to Glibc's `timespec`: incremental builds now and then failed to find such members
/// (`timespec has no member 'now'`) in files that imported this module.
public enum WallClock {
    public static var now: timespec {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return ts
    }

    /// Seconds since the epoch.
    public static var seconds: Double { seconds(of: now) }

    public static func seconds(of ts: timespec) -> Double { Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9 }
}
