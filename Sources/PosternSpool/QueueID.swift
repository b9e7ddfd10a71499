import Glibc
import PosternUtil

/// Queue ids: 20 characters of Crockford base-32, the first 11 the arrival time in
/// microseconds (55 bits: sorts by arrival until the year 3111), the last 9 random (45 bits),
/// so that ids are unique across restarts, processes and hosts without coordination.
public enum QueueID {
    /// Characters in an id.
    public static let length = 20
    private static let alphabet = Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ".utf8)

    public static func make(now: timespec = WallClock.now) -> String {
        let micros = UInt64(now.tv_sec) &* 1_000_000 &+ UInt64(now.tv_nsec / 1000)
        let random = UInt64.random(in: 0..<(1 << 45))
        var out = [UInt8](repeating: 0, count: 20)
        for i in 0..<11 { out[10 - i] = alphabet[Int((micros >> (UInt64(i) * 5)) & 31)] }
        for i in 0..<9 { out[19 - i] = alphabet[Int((random >> (UInt64(i) * 5)) & 31)] }
        return String(decoding: out, as: UTF8.self)
    }

    /// A queue id is exactly what `make` produces; anything else in a spool directory is not ours.
    public static func isValid(_ s: String) -> Bool {
        s.utf8.count == length && s.utf8.allSatisfy { alphabet.contains($0) }
    }
}

