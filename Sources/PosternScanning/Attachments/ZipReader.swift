import PosternPolicy
/// Reads a zip archive held in memory through its end record and central directory, as unzip,
/// 7-Zip and Windows do.
///
/// Data prepended to the archive (a self-extractor's stub, junk in front of a zip) shifts every
/// offset it records; the shift is found and added back as Info-ZIP unzip does, see
/// ``directory(_:endRecord:)``.
///
/// XXX: members present only as local headers (no central directory entry) are not seen; a
/// streaming extractor would see them.
/// - SeeAlso: PKWARE APPNOTE.TXT 6.3.10 §4.3
public struct ZipReader: Sendable {
    public let bytes: [UInt8]
    /// Members the end record announces; ``entries(max:)`` reads at most that many.
    public let entryCount: Int
    /// The archive uses ZIP64 end records (§4.3.14–15).
    public let isZip64: Bool
    /// Bytes in front of the archive proper, added to every offset it records; 0 for a plain zip.
    public let prependedLength: Int
    /// Where the central directory starts in ``bytes``, the prepended length included.
    package let directoryOffset: Int

    package static let endSignature = 0x0605_4B50
    package static let zip64LocatorSignature = 0x0706_4B50
    package static let zip64EndSignature = 0x0606_4B50
    package static let centralSignature = 0x0201_4B50
    package static let localSignature = 0x0403_4B50
    /// ZIP64 end record without its extensible data sector (§4.3.14).
    package static let zip64EndSize = 56

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
                (entryCount, directoryOffset, prependedLength, isZip64) = found
                return
            }
            at -= 1
        }
        throw ZipError(.noEndRecord, "no end of central directory record")
    }

    /// The directory the end record at `end` points to, through the ZIP64 locator (§4.3.15) and
    /// ZIP64 end record (§4.3.14) when present; nil when out of bounds.
    ///
    /// The directory ends where the record after it starts, so that record's position minus the
    /// directory's size and recorded offset is the length of data prepended to the archive
    /// (unzip's `extra_bytes`). As in unzip, the corrected offset is used when a central header
    /// starts there, else the recorded one with no correction (the surplus then lies between the
    /// directory and the end record). A negative difference cannot be corrected: the recorded
    /// offset is tried as it is.
    ///
    /// XXX: an archive built with a directory at both places is read at the corrected one only,
    /// as unzip reads it; a tool that ignores the shift would list the other.
    package static func directory(_ b: [UInt8], endRecord end: Int) -> (count: Int, offset: Int, prepended: Int, zip64: Bool)? {
        var count = u16(b, end + 10), size = u32(b, end + 12), offset = u32(b, end + 16)
        var next = end
        var zip64 = false
        if end >= 20, u32(b, end - 20) == zip64LocatorSignature {
            guard let record = zip64EndRecord(b, locator: end - 20),
                  let c = Int(exactly: u64(b, record + 32)), let s = Int(exactly: u64(b, record + 40)),
                  let o = Int(exactly: u64(b, record + 48)) else { return nil }
            (count, size, offset, zip64, next) = (c, s, o, true, record)
        }
        // Compared without adding, as ZIP64 sizes and offsets may be near Int.max.
        if count > 0, size <= next, offset <= next - size {
            let prepended = next - size - offset
            if prepended > 0, isCentralHeader(b, at: offset + prepended) { return (count, offset + prepended, prepended, zip64) }
        }
        guard offset <= b.count, size <= b.count - offset else { return nil }
        return (count, offset, 0, zip64)
    }

    /// Where the ZIP64 end record is: at the offset the locator records, or, when data was
    /// prepended and that offset is off, right before the locator, as unzip guesses too.
    package static func zip64EndRecord(_ b: [UInt8], locator: Int) -> Int? {
        let latest = locator - zip64EndSize
        guard latest >= 0 else { return nil }
        if let recorded = Int(exactly: u64(b, locator + 8)), recorded <= latest, u32(b, recorded) == zip64EndSignature {
            return recorded
        }
        return u32(b, latest) == zip64EndSignature ? latest : nil
    }

    package static func isCentralHeader(_ b: [UInt8], at: Int) -> Bool {
        at >= 0 && at <= b.count - 4 && u32(b, at) == centralSignature
    }

    @inline(__always)
    package static func u16(_ b: [UInt8], _ at: Int) -> Int { Int(b[at]) | Int(b[at + 1]) << 8 }

    @inline(__always)
    package static func u32(_ b: [UInt8], _ at: Int) -> Int {
        Int(b[at]) | Int(b[at + 1]) << 8 | Int(b[at + 2]) << 16 | Int(b[at + 3]) << 24
    }

    @inline(__always)
    package static func u64(_ b: [UInt8], _ at: Int) -> UInt64 {
        UInt64(u32(b, at)) | UInt64(u32(b, at + 4)) << 32
    }
}
