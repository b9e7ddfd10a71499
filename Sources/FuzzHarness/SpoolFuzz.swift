import Shared

/// A spool file as queue runners, `posternctl queue show` and recovery read it after a crash,
/// a full disk or an administrator's editor: header line, message, envelope, verdict.
///
/// Invariants: no crash; the offsets senderd overwrites in place (each route's status, the
/// attempt counter) point at what they stand for, so an update can never hit another byte;
/// envelope and verdict written back and read again are a fixed point.
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

    /// What Postern writes from what it read reads back the same, written again the same.
    static func roundTrip(_ file: SpoolFile) throws(FuzzFailure) {
        let envelope = file.envelope.write()
        let verdict = file.verdict?.write() ?? ""
        let tail = Array((envelope + verdict).utf8)
        let envelopeAt = SpoolFile.headerLength + file.envelope.size
        let again: SpoolFile
        do {
            again = try SpoolFile.parseTail(tail, path: "fuzz", envelopeAt: envelopeAt)
        } catch {
            throw FuzzFailure("the envelope and verdict written back do not read: \(error)\n\(show(tail, limit: 600))")
        }
        try expect(again.envelope.write() == envelope, "envelope write/parse is not a fixed point:\n\(show(envelope, limit: 600))\n\(show(again.envelope.write(), limit: 600))")
        try expect((again.verdict?.write() ?? "") == verdict, "verdict write/parse is not a fixed point:\n\(show(verdict, limit: 600))\n\(show(again.verdict?.write() ?? "", limit: 600))")
    }
}
