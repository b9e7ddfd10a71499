/// Reads a zip archive held in memory through its end record and central directory, as unzip,
/// 7-Zip and Windows do.
///
/// XXX: members present only as local headers (no central directory entry) are not seen; a
/// streaming extractor would see them. Data prepended to the archive (self-extractors) shifts
/// the offsets, which are not corrected for: such an archive reads as broken.
/// - SeeAlso: PKWARE APPNOTE.TXT 6.3.10 §4.3
public struct ZipReader: Sendable {
    public let bytes: [UInt8]
    /// Members the end record announces; ``entries(max:)`` reads at most that many.
    public let entryCount: Int
    /// The archive uses ZIP64 end records (§4.3.14–15).
    public let isZip64: Bool
    let directoryOffset: Int

    static let endSignature = 0x0605_4B50
    static let zip64LocatorSignature = 0x0706_4B50
    static let zip64EndSignature = 0x0606_4B50
    static let centralSignature = 0x0201_4B50
    static let localSignature = 0x0403_4B50

    /// end of central dir record (§4.3.16): signature, disk numbers (2+2), entries on this disk
    /// and in total (2+2), directory size and offset (4+4), comment length (2), comment. Searched
    /// backwards from the end over the largest comment; a candidate whose comment would run past
    /// the end, or whose directory is out of bounds, is a signature inside a comment and skipped.
    public init(_ bytes: [UInt8]) throws(ZipError) {
        self.bytes = bytes
        let n = bytes.count
        guard n >= 22 else { throw ZipError(.noEndRecord, "too short for a zip") }
        let lowest = max(0, n - AttachmentsDefaults.endRecordSearchWindow)
        var at = n - 22
        while at >= lowest {
            if bytes[at] == 0x50, bytes[at + 1] == 0x4B, Self.u32(bytes, at) == Self.endSignature,
               at + 22 + Self.u16(bytes, at + 20) <= n,
               let found = Self.directory(bytes, endRecord: at) {
                (entryCount, directoryOffset, isZip64) = found
                return
            }
            at -= 1
        }
        throw ZipError(.noEndRecord, "no end of central directory record")
    }

    /// The directory the end record at `end` points to, through the ZIP64 locator (§4.3.15) and
    /// ZIP64 end record (§4.3.14) when present; nil when out of bounds.
    static func directory(_ b: [UInt8], endRecord end: Int) -> (count: Int, offset: Int, zip64: Bool)? {
        var count = u16(b, end + 10), size = u32(b, end + 12), offset = u32(b, end + 16)
        var zip64 = false
        if end >= 20, u32(b, end - 20) == zip64LocatorSignature {
            guard let record = Int(exactly: u64(b, end - 12)), record >= 0, record <= end - 20 - 56,
                  u32(b, record) == zip64EndSignature,
                  let c = Int(exactly: u64(b, record + 32)), let s = Int(exactly: u64(b, record + 40)),
                  let o = Int(exactly: u64(b, record + 48)) else { return nil }
            (count, size, offset, zip64) = (c, s, o, true)
        }
        guard offset >= 0, size >= 0, offset <= b.count, size <= b.count - offset, count >= 0 else { return nil }
        return (count, offset, zip64)
    }

    @inline(__always)
    static func u16(_ b: [UInt8], _ at: Int) -> Int { Int(b[at]) | Int(b[at + 1]) << 8 }

    @inline(__always)
    static func u32(_ b: [UInt8], _ at: Int) -> Int {
        Int(b[at]) | Int(b[at + 1]) << 8 | Int(b[at + 2]) << 16 | Int(b[at + 3]) << 24
    }

    @inline(__always)
    static func u64(_ b: [UInt8], _ at: Int) -> UInt64 {
        UInt64(u32(b, at)) | UInt64(u32(b, at + 4)) << 32
    }
}
