extension ZipReader {
    /// The member's data with stored (0) or deflate (8) undone. Output past `cap` bytes throws
    /// ``ZipError/Code/outputLimit`` whatever the sizes declare; only the first `keep` bytes are
    /// returned (a magic-number check needs four), with the full size alongside.
    public func extract(_ entry: ZipEntry, cap: Int, keep: Int = .max,
                        deadline: ContinuousClock.Instant? = nil) throws(ZipError) -> (bytes: [UInt8], size: Int) {
        guard !entry.isEncrypted else { throw ZipError(.encrypted, "encrypted") }
        let data = try dataRange(entry)
        switch entry.method {
        case 0:
            guard data.count <= cap else { throw ZipError(.outputLimit, "over \(cap) bytes") }
            return (Array(bytes[data].prefix(keep)), data.count)
        case 8:
            return try Inflater.inflate(bytes[data], cap: cap, keep: keep, deadline: deadline)
        default:
            throw ZipError(.unsupportedMethod, "compression method \(entry.method) not supported")
        }
    }

    /// local file header (§4.3.7): signature, version, flags, method, time, date (2 each), CRC,
    /// sizes (4+4+4), name and extra lengths (2+2), name, extra; the data follows. The lengths
    /// are the local header's own, which may differ from the central directory's.
    package func dataRange(_ entry: ZipEntry) throws(ZipError) -> Range<Int> {
        let at = entry.localHeaderOffset
        guard at >= 0, at <= bytes.count - 30, Self.u32(bytes, at) == Self.localSignature else {
            throw ZipError(.badLocalHeader, "local header missing")
        }
        let start = at + 30 + Self.u16(bytes, at + 26) + Self.u16(bytes, at + 28)
        guard start <= bytes.count, entry.compressedSize <= bytes.count - start else {
            throw ZipError(.badLocalHeader, "data runs past the end of the archive")
        }
        return start..<(start + entry.compressedSize)
    }
}
