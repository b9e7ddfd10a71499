import Glibc
import NIOCore
import PosternSMTP
import PosternUtil

/// A spool file as read back: envelope, optional verdict, and where the message bytes are.
///
/// Layout (docs/spool-format.md): a fixed-width first line `POSTERN-SPOOL 1 envelope-at=N`,
/// the message bytes, the envelope ending in `end envelope`, then the verdict appended by
/// scannerd ending in `end verdict`, then (senderd, after a failed attempt) each route's last
/// delivery error ending in `end errors`. A file whose envelope lacks its end marker is
/// incomplete; an errors section without its end marker is ignored.
public struct SpoolFile: Sendable {
    public static let magic = "POSTERN-SPOOL 1 envelope-at="
    public static let headerLength = magic.utf8.count + 16 + 1

    package static func header(envelopeAt: Int) -> String {
        let n = String(envelopeAt)
        return magic + String(repeating: "0", count: 16 - n.count) + n + "\n"
    }

    public var path: String
    public var envelope: Envelope
    public var verdict: Verdict?
    /// The verdict section began but has no end marker (scannerd died while appending).
    public var verdictIncomplete: Bool
    public var messageOffset: Int { SpoolFile.headerLength }
    public var messageLength: Int
    /// Offset just past `end envelope`, where a verdict is appended.
    public var envelopeEnd: Int
    /// Offsets of each route's status character, by route index.
    public var routeStatusOffsets: [Int]
    public var attemptsOffset: Int?
    /// Offset just past `end verdict`, where the delivery errors are written; nil without a
    /// complete verdict.
    public var verdictEnd: Int?
    /// The last delivery error of each route that has one, by route index (senderd writes them
    /// when an attempt leaves a route undelivered).
    public var deliveryErrors: [Int: DeliveryError] = [:]
    /// When each route's delay DSN was written, by route index: a route is warned once.
    public var delayWarnings: [Int: Double] = [:]
    /// The file's length when it was read.
    var length = 0

    /// Reads the envelope and verdict (not the message) of the file at `path`.
    public static func read(path: String) throws -> SpoolFile {
        try reading(path) { try read(fd: $0, path: path) }
    }

    /// Envelope, verdict and message, through one open of the file.
    public static func readWithMessage(path: String) throws -> (SpoolFile, ByteBuffer) {
        try reading(path) { fd in
            let file = try read(fd: fd, path: path)
            return (file, try file.readMessage(fd: fd))
        }
    }

    /// `body` with the file at `path` open for reading; closed after.
    private static func reading<T>(_ path: String, _ body: (Int32) throws -> T) throws -> T {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw SpoolError("open", path) }
        defer { close(fd) }
        return try body(fd)
    }

    static func read(fd: Int32, path: String) throws -> SpoolFile {
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw SpoolError("fstat", path) }
        let fileSize = Int(st.st_size)
        var head = [UInt8](repeating: 0, count: headerLength)
        guard fileSize >= headerLength,
              head.withUnsafeMutableBytes({ pread(fd, $0.baseAddress, headerLength, 0) }) == headerLength,
              let text = String(validating: head, as: UTF8.self), text.hasPrefix(magic), text.hasSuffix("\n"),
              let envelopeAt = Int(text.dropFirst(magic.utf8.count).dropLast()),
              envelopeAt >= headerLength, envelopeAt <= fileSize
        else { throw SpoolFormatError(hint: "bad or missing header line") }
        var tail = [UInt8](repeating: 0, count: fileSize - envelopeAt)
        try tail.withUnsafeMutableBytes { p in Result { () throws(SpoolError) in try SysCall.preadExactly(fd, into: p, at: envelopeAt, path: path) } }.get()
        return try parseTail(tail, path: path, envelopeAt: envelopeAt)
    }

    /// The envelope, verdict and delivery errors from the bytes at `envelopeAt` on.
    package static func parseTail(_ tail: [UInt8], path: String, envelopeAt: Int) throws -> SpoolFile {
        var envLines: [Substring] = []
        var verdictLines: [(Substring, Int)] = []
        var offset = envelopeAt
        var section = 0   // 0 envelope, 1 verdict, 2 delivery errors, 3 done
        var envelopeEnd = -1
        var verdictEnd = -1
        var verdictDone = false
        var errorLines: [Substring] = []
        var errorsDone = false
        // Lines and offsets in octets: the offsets are where senderd overwrites statuses in
        // place, so they must not move when a damaged file holds bytes that are not UTF-8 (or
        // a CR, which would make "\r\n" one Character). Only complete lines count.
        var lineStart = tail.startIndex
        while let lf = tail[lineStart...].firstIndex(of: 0x0A) {
            let line = Substring(String(decoding: tail[lineStart..<lf], as: UTF8.self))
            let start = offset
            offset += lf - lineStart + 1
            lineStart = lf + 1
            if section == 0 {
                if line == "end envelope" { section = 1; envelopeEnd = offset } else { envLines.append(line) }
            } else if section == 1 {
                if line == "end verdict" { verdictDone = true; section = 2; verdictEnd = offset } else if !line.isEmpty { verdictLines.append((line, start)) }
            } else if section == 2 {
                if line == "end errors" { errorsDone = true; section = 3 } else if !line.isEmpty { errorLines.append(line) }
            }
        }
        // A verdict line cut short without its LF: scannerd died while appending.
        let tornVerdict = section == 1 && lineStart < tail.endIndex
        guard envelopeEnd > 0 else { throw SpoolFormatError(hint: "envelope has no end marker (incomplete file)") }
        let envelope = try Envelope.parse(envLines)
        guard envelope.size == envelopeAt - headerLength else { throw SpoolFormatError(hint: "size does not match the message") }
        var file = SpoolFile(path: path, envelope: envelope, verdict: nil, verdictIncomplete: (!verdictLines.isEmpty || tornVerdict) && !verdictDone,
                             messageLength: envelopeAt - headerLength, envelopeEnd: envelopeEnd, routeStatusOffsets: [], attemptsOffset: nil)
        file.length = envelopeAt + tail.count
        if verdictDone {
            try file.parseVerdict(verdictLines)
            file.verdictEnd = verdictEnd
            // A torn errors section (senderd died writing it) only loses the error texts and
            // the record of delay DSNs sent (one may then be sent again).
            if errorsDone {
                let routes = file.verdict?.routes.count ?? 0
                file.deliveryErrors = DeliveryError.parse(errorLines, routes: routes)
                file.delayWarnings = DeliveryError.parseWarnings(errorLines, routes: routes)
            }
        }
        return file
    }

    /// A verdict section on its own, as scannerd sends it to receiverd (docs/ipc.md): the same
    /// lines a file holds after `end envelope`, ending in `end verdict`, checked as in a file
    /// of `recipients` recipients.
    package static func parseVerdictSection(_ text: String, recipients: Int) throws -> Verdict {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        guard lines.last == "", lines.dropLast().last == "end verdict" else { throw SpoolFormatError(hint: "verdict has no end marker") }
        lines.removeLast(2)
        let envelope = Envelope(id: "", arrival: 0, recipients: Array(repeating: Recipient(address: ""), count: recipients))
        var file = SpoolFile(path: "", envelope: envelope, verdict: nil, verdictIncomplete: false, messageLength: 0, envelopeEnd: 0,
                             routeStatusOffsets: [], attemptsOffset: nil)
        try file.parseVerdict(lines.filter { !$0.isEmpty }.map { ($0, 0) })
        return file.verdict!
    }

    private mutating func parseVerdict(_ lines: [(Substring, Int)]) throws {
        var v = Verdict(scanned: 0)
        for (line, start) in lines {
            let (k, value) = SpoolText.split(line)
            let rest = String(value)
            switch k {
            case "scanned": v.scanned = Double(rest) ?? 0
            case "verdict": v.action = VerdictAction(rest)
            case "add-header": v.addHeaders.append(rest)
            case "pending": v.afterQueuePending = rest == "after-queue"
            case "score": v.score = Double(rest) ?? 0
            case "finding": v.findings.append(rest)
            case "reason":
                let f = rest.split(separator: " ", maxSplits: 1)
                if f.count == 2, let idx = Int(f[0]) { v.reasons[idx] = String(f[1]) }
            case "rcpt-header":
                let f = rest.split(separator: " ", maxSplits: 1)
                if f.count == 2, let idx = Int(f[0]) { v.recipientHeaders[idx, default: []].append(String(f[1])) }
            case "rcpt-tls":
                // Since the TLS policy came in; older readers skip the line (default: break).
                let f = rest.split(separator: " ")
                if f.count == 2, let idx = Int(f[0]), let policy = TLSPolicy(text: String(f[1])) { v.recipientTLS[idx] = policy }
            case "release-offered":
                // Quarantine copies only; older readers skip the line.
                if let idx = Int(rest), idx >= 0, idx < envelope.recipients.count { v.releaseOffered.insert(idx) }
            case "route":
                // One space between fields, as written: update(statuses:) overwrites the
                // status octet at "route ".count into the line, which more spaces would move.
                let f = rest.split(separator: " ", maxSplits: 3, omittingEmptySubsequences: false)
                guard f.count >= 3, f[0].utf8.count == 1, let st = RecipientStatus(rawValue: f[0].utf8.first!),
                      let idx = Int(f[1]), idx >= 0, idx < envelope.recipients.count,
                      f.count == 3 || f[3].hasPrefix("to=")
                else { throw SpoolFormatError(hint: "bad route line") }
                v.routes.append(.init(recipient: idx, status: st, endpoint: String(f[2]), address: f.count == 4 ? String(f[3].dropFirst(3)) : nil))
                routeStatusOffsets.append(start + "route ".utf8.count)
            case "attempts":
                // update(attempts:) overwrites exactly this many digits in place: any other
                // width would spill into the next line (the end marker).
                guard rest.utf8.count == Verdict.attemptsWidth, rest.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
                      let attempts = Int(rest)
                else { throw SpoolFormatError(hint: "bad attempts line") }
                v.attempts = attempts
                attemptsOffset = start + "attempts ".utf8.count
            default: break
            }
        }
        verdict = v
    }

    /// Reads the message's first `limit` octets (all of them when it is shorter).
    public func readMessage(upTo limit: Int = .max) throws -> ByteBuffer {
        try Self.reading(path) { try readMessage(fd: $0, upTo: limit) }
    }

    private func readMessage(fd: Int32, upTo limit: Int = .max) throws(SpoolError) -> ByteBuffer {
        let length = min(limit, messageLength)
        var buffer = ByteBuffer()
        var failure: SpoolError?
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: length) { p in
            do throws(SpoolError) {
                try SysCall.preadExactly(fd, into: UnsafeMutableRawBufferPointer(rebasing: p[0..<length]), at: messageOffset, path: path)
            } catch {
                failure = error
                return 0
            }
            return length
        }
        if let failure { throw failure }
        return buffer
    }

    /// Appends (or replaces an incomplete) verdict: scannerd, on a file in `scan/` that
    /// receiverd has given up. `sync` fsyncs the file; see docs on why scannerd may skip it.
    /// Returns the file as ``read(path:)`` would now read it, without reading it back or
    /// parsing the envelope again: one open, fstat, two preads and a close fewer per message.
    @discardableResult
    public func writeVerdict(_ verdict: Verdict, sync: Bool) throws -> SpoolFile {
        let text = verdict.write()
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        if fd < 0 { throw SpoolError("open", path) }
        defer { close(fd) }
        // Usually the file ends with its envelope: nothing to cut.
        if length != envelopeEnd && ftruncate(fd, off_t(envelopeEnd)) != 0 { throw SpoolError("ftruncate", path) }
        try SysCall.pwriteAll(fd, Array(text.utf8), at: envelopeEnd, path: path)
        if sync && fsync(fd) != 0 { throw SpoolError("fsync", path) }
        // The envelope is as read; only the new verdict's lines are parsed, at their offsets.
        var written = self
        written.verdictIncomplete = false
        written.deliveryErrors = [:]
        written.delayWarnings = [:]
        written.routeStatusOffsets = []
        written.attemptsOffset = nil
        var lines: [(Substring, Int)] = []
        var offset = envelopeEnd
        for line in text.utf8.split(separator: 0x0A, omittingEmptySubsequences: false).dropLast() {
            let start = offset
            offset += line.count + 1
            if line.elementsEqual("end verdict".utf8) { break }
            if !line.isEmpty { lines.append((Substring(line), start)) }
        }
        try written.parseVerdict(lines)
        written.verdictEnd = offset
        written.length = envelopeEnd + text.utf8.count
        return written
    }

    /// Replaces the delivery errors section (after `end verdict`) with `errors` and the routes
    /// `warned` of their delay, by route index; no fsync: senderd's
    /// ``update(statuses:attempts:sync:)`` that follows makes both durable. The statuses and
    /// the attempt counter before it keep their offsets. Blocking.
    public func writeDeliveryErrors(_ errors: [Int: DeliveryError], warned: [Int: Double] = [:]) throws(SpoolError) {
        guard let verdictEnd else { return }
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        if fd < 0 { throw SpoolError("open", path) }
        defer { close(fd) }
        if ftruncate(fd, off_t(verdictEnd)) != 0 { throw SpoolError("ftruncate", path) }
        guard !errors.isEmpty || !warned.isEmpty else { return }
        try SysCall.pwriteAll(fd, Array(DeliveryError.write(errors, warned: warned).utf8), at: verdictEnd, path: path)
    }

    /// Overwrites recipient statuses and the attempt counter in place.
    public func update(statuses: [(route: Int, status: RecipientStatus)], attempts: Int?, sync: Bool) throws(SpoolError) {
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        if fd < 0 { throw SpoolError("open", path) }
        defer { close(fd) }
        for (route, status) in statuses where route < routeStatusOffsets.count {
            try SysCall.pwriteAll(fd, [status.rawValue], at: routeStatusOffsets[route], path: path)
        }
        if let attempts, let off = attemptsOffset {
            let a = String(min(max(attempts, 0), 999_999))
            try SysCall.pwriteAll(fd, Array((String(repeating: "0", count: Verdict.attemptsWidth - a.count) + a).utf8), at: off, path: path)
        }
        if sync && fsync(fd) != 0 { throw SpoolError("fsync", path) }
    }
}
