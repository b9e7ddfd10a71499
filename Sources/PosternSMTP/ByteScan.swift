/// Finds line ends in message data a word at a time. The DATA codecs look at every octet of
/// every message; a byte-at-a-time state machine cost receiverd and senderd more CPU than
/// everything else together on 1 MB messages (perf, 2026-12-06), while almost every octet is
/// ordinary text that only has to be skipped.
///
/// SWAR ("SIMD within a register"): eight octets are loaded as one `UInt64` and tested for a
/// given octet with the has-zero-byte trick. The lowest flagged octet is always a true match
/// (a borrow only runs upward), so the first match is exact; flags above it may be false and
/// are never used.
enum ByteScan {
    private static let ones: UInt64 = 0x0101_0101_0101_0101
    private static let highs: UInt64 = 0x8080_8080_8080_8080
    private static let crs: UInt64 = 0x0D0D_0D0D_0D0D_0D0D
    private static let lfs: UInt64 = 0x0A0A_0A0A_0A0A_0A0A

    @inline(__always)
    private static func zeroOctets(_ v: UInt64) -> UInt64 { (v &- ones) & ~v & highs }

    @inline(__always)
    private static func word(_ base: UnsafeRawPointer, _ i: Int) -> UInt64 {
        UInt64(littleEndian: base.loadUnaligned(fromByteOffset: i, as: UInt64.self))
    }

    /// Index of the first CR or LF in `p[start...]`, or `p.count` when there is none.
    @inline(__always)
    static func firstNewline(_ p: UnsafeRawBufferPointer, from start: Int) -> Int {
        guard let base = p.baseAddress else { return p.count }
        let n = p.count
        var i = start
        while i + 8 <= n {
            let w = word(base, i)
            let m = zeroOctets(w ^ crs) | zeroOctets(w ^ lfs)
            if m != 0 { return i + m.trailingZeroBitCount / 8 }
            i += 8
        }
        while i < n {
            let b = base.load(fromByteOffset: i, as: UInt8.self)
            if b == 0x0D || b == 0x0A { return i }
            i += 1
        }
        return n
    }

    /// Index of the first LF in `p[start...]`, or `p.count` when there is none.
    @inline(__always)
    static func firstLF(_ p: UnsafeRawBufferPointer, from start: Int) -> Int {
        guard let base = p.baseAddress else { return p.count }
        let n = p.count
        var i = start
        while i + 8 <= n {
            let m = zeroOctets(word(base, i) ^ lfs)
            if m != 0 { return i + m.trailingZeroBitCount / 8 }
            i += 8
        }
        while i < n {
            if base.load(fromByteOffset: i, as: UInt8.self) == 0x0A { return i }
            i += 1
        }
        return n
    }
}
