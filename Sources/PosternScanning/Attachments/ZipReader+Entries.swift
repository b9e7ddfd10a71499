import PosternMIME
extension ZipReader {
    /// central file header (§4.3.12): signature, versions (2+2), flags, method, time, date (2 each),
    /// CRC, sizes (4+4+4), name, extra and comment lengths (2+2+2), disk, attributes (2+2+4),
    /// local header offset (4), then name, extra field, comment.
    /// Reads at most `max` entries, so that a caller over its member budget does no more work.
    public func entries(max limit: Int = .max) throws(ZipError) -> [ZipEntry] {
        let b = bytes
        var out: [ZipEntry] = []
        out.reserveCapacity(Swift.min(entryCount, limit, 4096))
        var at = directoryOffset
        for _ in 0..<Swift.min(entryCount, limit) {
            guard at <= b.count - 46, Self.u32(b, at) == Self.centralSignature else {
                throw ZipError(.badCentralDirectory, "central directory header \(out.count + 1) missing")
            }
            let nameLength = Self.u16(b, at + 28), extraLength = Self.u16(b, at + 30), commentLength = Self.u16(b, at + 32)
            let nameStart = at + 46, extraStart = nameStart + nameLength
            guard extraStart + extraLength + commentLength <= b.count else {
                throw ZipError(.badCentralDirectory, "central directory header \(out.count + 1) truncated")
            }
            let flags = Self.u16(b, at + 8)
            let nameBytes = b[nameStart..<extraStart]
            var entry = ZipEntry(name: Self.name(nameBytes, utf8: flags & 0x0800 != 0),
                                 compressedSize: Self.u32(b, at + 20), uncompressedSize: Self.u32(b, at + 24),
                                 method: Self.u16(b, at + 10), isEncrypted: flags & 1 != 0,
                                 localHeaderOffset: Self.u32(b, at + 42))
            readExtra(b[extraStart..<(extraStart + extraLength)], into: &entry)
            // After the ZIP64 field, which may replace the offset; saturating, as that one is 64 bits.
            let (shifted, overflow) = entry.localHeaderOffset.addingReportingOverflow(prependedLength)
            entry.localHeaderOffset = overflow ? .max : shifted
            if let local = localName(entry), local != nameBytes {
                addAlternate(Self.name(local, utf8: flags & 0x0800 != 0), to: &entry)
            }
            out.append(entry)
            at = extraStart + extraLength + commentLength
        }
        return out
    }

    /// extra field := *(id (2) size (2) data). ZIP64 (0x0001, §4.5.3) holds, in order, the
    /// sizes and offset whose 32-bit fields are 0xFFFFFFFF; Info-ZIP Unicode Path (0x7075,
    /// §4.6.9) holds version (1), name CRC (4), UTF-8 name.
    private func readExtra(_ extra: ArraySlice<UInt8>, into entry: inout ZipEntry) {
        let b = bytes
        var at = extra.startIndex
        while at + 4 <= extra.endIndex {
            let id = Self.u16(b, at), size = Self.u16(b, at + 2)
            let data = (at + 4)..<Swift.min(at + 4 + size, extra.endIndex)
            if id == 0x0001 {
                var field = data.lowerBound
                for path in [\ZipEntry.uncompressedSize, \.compressedSize, \.localHeaderOffset]
                where entry[keyPath: path] == 0xFFFF_FFFF && field + 8 <= data.upperBound {
                    entry[keyPath: path] = Int(clamping: Self.u64(b, field))
                    field += 8
                }
            } else if id == 0x7075, data.count > 5 {
                addAlternate(Self.name(b[(data.lowerBound + 5)..<data.upperBound], utf8: true), to: &entry)
            }
            at += 4 + size
        }
    }

    /// The name in the member's local header (§4.3.7), which streaming extractors use.
    private func localName(_ entry: ZipEntry) -> ArraySlice<UInt8>? {
        let at = entry.localHeaderOffset
        guard at >= 0, at <= bytes.count - 30, Self.u32(bytes, at) == Self.localSignature else { return nil }
        let end = at + 30 + Self.u16(bytes, at + 26)
        return end <= bytes.count ? bytes[(at + 30)..<end] : nil
    }

    private func addAlternate(_ name: String, to entry: inout ZipEntry) {
        if name != entry.name, !entry.alternateNames.contains(name) { entry.alternateNames.append(name) }
    }

    /// UTF-8 when flagged (bit 11) or valid, else byte for byte as Latin-1.
    package static func name(_ bytes: ArraySlice<UInt8>, utf8: Bool) -> String {
        if utf8 { return String(decoding: bytes, as: UTF8.self) }
        if let name = String(validating: bytes, as: UTF8.self) { return name }
        return Charset.decode(bytes, charset: "iso-8859-1")
    }
}
