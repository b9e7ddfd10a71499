import PosternSpool

/// A spool file as queue runners, `posternctl queue show` and recovery read it after a crash,
/// a full disk or an administrator's editor: header line, message, envelope, verdict, delivery
/// errors.
///
/// Invariants: no crash; the offsets senderd overwrites in place (each route's status, the
/// attempt counter, the end of the verdict where delivery errors go) point at what they stand
/// for, so an update can never hit another byte;
/// envelope and verdict written back read again, and are then a fixed point.
enum SpoolFuzz {
    static func run(_ data: UnsafeRawBufferPointer) throws(FuzzFailure) {
        let bytes = [UInt8](data)
        let header = SpoolFile.headerLength
        // SpoolFile.read's checks on the first line.
        guard bytes.count >= header,
              let text = String(validating: bytes[..<header], as: UTF8.self), text.hasPrefix(SpoolFile.magic), text.hasSuffix("\n"),
              let envelopeAt = Int(text.dropFirst(SpoolFile.magic.utf8.count).dropLast()),
              envelopeAt >= header, envelopeAt <= bytes.count
        else { return }
        let tail = Array(bytes[envelopeAt...])
        guard let file = try? SpoolFile.parseTail(tail, path: "fuzz", envelopeAt: envelopeAt) else { return }
        try expect(file.messageLength == file.envelope.size && file.messageOffset + file.messageLength == envelopeAt,
                   "message at \(file.messageOffset)+\(file.messageLength), envelope at \(envelopeAt)")
        try expect(file.envelopeEnd > envelopeAt && file.envelopeEnd <= bytes.count, "envelope end \(file.envelopeEnd) outside the file")
        if let verdict = file.verdict {
            try expect(file.routeStatusOffsets.count == verdict.routes.count, "\(file.routeStatusOffsets.count) offsets for \(verdict.routes.count) routes")
            for (offset, route) in zip(file.routeStatusOffsets, verdict.routes) {
                try expect(offset >= file.envelopeEnd && offset < bytes.count && bytes[offset] == route.status.rawValue,
                           "route status offset \(offset) does not point at its status \(show([route.status.rawValue]))")
            }
            // Where senderd truncates and writes its delivery errors: right after the verdict.
            if let end = file.verdictEnd {
                let marker = Array("end verdict\n".utf8)
                try expect(end >= marker.count && end <= bytes.count && bytes[(end - marker.count)..<end].elementsEqual(marker),
                           "verdict end \(end) is not after the verdict's end marker")
            }
            if let offset = file.attemptsOffset {
                // Verdict.write's fixed width, then the line end: what update(attempts:) overwrites.
                let width = 6
                try expect(offset >= file.envelopeEnd && offset + width < bytes.count
                           && bytes[offset..<(offset + width)].allSatisfy { $0 >= 0x30 && $0 <= 0x39 } && bytes[offset + width] == 0x0A,
                           "attempts offset \(offset) does not point at six digits and a line end: \(show(bytes[min(offset, bytes.count)...].prefix(12)))")
            }
        }
        try roundTrip(file)
    }

    /// What Postern writes from what it read reads back, and from then on reading and writing
    /// is a fixed point. (The first writing makes control characters `?` and so may change the
    /// order of XFORWARD attributes, which is by name.)
    static func roundTrip(_ file: SpoolFile) throws(FuzzFailure) {
        let once = try rewritten(file)
        let twice = try rewritten(once.file)
        let thrice = try rewritten(twice.file)
        try expect(thrice.envelope == twice.envelope, "envelope write/parse is not a fixed point: \(difference(Array(twice.envelope.utf8), Array(thrice.envelope.utf8)))")
        try expect(thrice.verdict == twice.verdict, "verdict write/parse is not a fixed point: \(difference(Array(twice.verdict.utf8), Array(thrice.verdict.utf8)))")
    }

    /// `file`'s envelope and verdict written, and read back.
    static func rewritten(_ file: SpoolFile) throws(FuzzFailure) -> (file: SpoolFile, envelope: String, verdict: String) {
        let envelope = file.envelope.write()
        var verdict = file.verdict?.write() ?? ""
        if file.verdict != nil, !file.deliveryErrors.isEmpty { verdict += DeliveryError.write(file.deliveryErrors) }
        let tail = Array((envelope + verdict).utf8)
        do {
            return (try SpoolFile.parseTail(tail, path: "fuzz", envelopeAt: SpoolFile.headerLength + file.envelope.size), envelope, verdict)
        } catch {
            throw FuzzFailure("the envelope and verdict written back do not read: \(error)\n\(show(tail, limit: 600))")
        }
    }
}
