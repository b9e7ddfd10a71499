import NIOCore

/// Finds octets above 127. It runs on every message for a next hop without 8BITMIME, so it
/// reads eight octets at a time and stops at the first hit; most mail is 7-bit and costs one
/// pass over memory that is already in cache.
/// - SeeAlso: RFC 6152 §3, RFC 5321 §2.4 (SMTP is 7-bit unless 8BITMIME is negotiated)
public enum EightBitScan {
    private static let highBits: UInt64 = 0x8080_8080_8080_8080

    /// Whether `bytes` holds an octet with the high bit set.
    public static func contains(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard let base = bytes.baseAddress else { return false }
        let n = bytes.count
        var i = 0
        while i + 32 <= n {
            let a = base.loadUnaligned(fromByteOffset: i, as: UInt64.self)
            let b = base.loadUnaligned(fromByteOffset: i + 8, as: UInt64.self)
            let c = base.loadUnaligned(fromByteOffset: i + 16, as: UInt64.self)
            let d = base.loadUnaligned(fromByteOffset: i + 24, as: UInt64.self)
            if (a | b | c | d) & highBits != 0 { return true }
            i += 32
        }
        while i + 8 <= n {
            if base.loadUnaligned(fromByteOffset: i, as: UInt64.self) & highBits != 0 { return true }
            i += 8
        }
        while i < n {
            if base.load(fromByteOffset: i, as: UInt8.self) & 0x80 != 0 { return true }
            i += 1
        }
        return false
    }

    public static func contains(_ buffer: ByteBuffer) -> Bool {
        buffer.withUnsafeReadableBytes { contains($0) }
    }

    public static func contains(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { contains($0) }
    }

    /// The same for a range of a buffer the MIME walker holds.
    package static func contains(_ buffer: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> Bool {
        contains(UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: buffer[range])))
    }
}
