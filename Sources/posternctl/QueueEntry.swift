import Glibc
import PosternSpool
import PosternUtil

/// One spool file as the queue commands show it: envelope, verdict, each recipient's state and
/// last delivery error, and (in `deferred/`) the time of the next attempt, which is the
/// file's mtime (docs/spool-format.md).
struct QueueEntry {
    /// One recipient, or one route of it (a `redirect(…)` gives a recipient several).
    struct Line {
        var recipient: Recipient
        var status: RecipientStatus?
        var route: String?
        var redirect: String?
        var error: DeliveryError?
        /// When the sender was told of the delay (the delay DSN), if it was.
        var warned: Double?
    }

    let id: String
    let state: SpoolState
    /// Nil when the file cannot be read as a spool file (`problem` says why).
    let file: SpoolFile?
    let problem: String?
    let mtime: Double

    /// Reads `path`; nil when the file is gone (a daemon moved it on meanwhile).
    static func load(_ id: String, state: SpoolState, path: String) throws -> QueueEntry? {
        var st = stat()
        guard stat(path, &st) == 0 else {
            if errno == ENOENT { return nil }
            throw SpoolError("stat", path)
        }
        let mtime = Double(st.st_mtim.tv_sec)
        do {
            return QueueEntry(id: id, state: state, file: try SpoolFile.read(path: path), problem: nil, mtime: mtime)
        } catch let e as SpoolError where e.errno == ENOENT {
            return nil
        } catch let e as SpoolError where e.errno == EACCES || e.errno == EPERM {
            throw e
        } catch {
            return QueueEntry(id: id, state: state, file: nil, problem: "\(error)", mtime: mtime)
        }
    }

    var nextAttempt: Double? { state == .deferred ? mtime : nil }

    var lines: [Line] {
        guard let file else { return [] }
        let e = file.envelope
        guard let verdict = file.verdict else { return e.recipients.map { Line(recipient: $0) } }
        var lines: [Line] = []
        for (i, r) in e.recipients.enumerated() {
            let routes = verdict.routes.enumerated().filter { $0.element.recipient == i }
            // A recipient without a route was refused before the queue (or dropped by the scan).
            if routes.isEmpty { lines.append(Line(recipient: r, status: .dropped)) }
            for (k, route) in routes {
                lines.append(Line(recipient: r, status: route.status, route: route.endpoint, redirect: route.address,
                                  error: file.deliveryErrors[k], warned: file.delayWarnings[k]))
            }
        }
        return lines
    }

    /// The most recent delivery error recorded in the file.
    var lastError: (line: Line, error: DeliveryError)? {
        lines.compactMap { l in l.error.map { (l, $0) } }.max { $0.error.time < $1.error.time }
    }

    // MARK: JSON (docs/operations.md, "JSON output")

    var json: JSON {
        var members: [(String, JSON)] = [("queue_id", .string(id)), ("queue_name", .string(state.rawValue))]
        guard let file else {
            return .object(members + [("error", .string(problem ?? "unreadable"))])
        }
        let e = file.envelope
        members += [
            ("arrival_time", .int(Int(e.arrival))), ("message_size", .int(e.size)), ("sender", .string(e.mailFrom)),
            ("client_address", .string(e.clientIP)), ("attempts", .int(file.verdict?.attempts ?? 0)),
            ("next_attempt_time", nextAttempt.map { .int(Int($0)) } ?? .null),
            ("hold_reason", .optional(e.holdReason)), ("verdict", .optional(file.verdict?.action.description)),
            ("recipients", .array(lines.map { l in
                .object([
                    ("address", .string(l.recipient.address)),
                    ("status", .optional(l.status.map(QueueEntry.word))),
                    ("route", .optional(l.route)),
                    ("redirect_to", .optional(l.redirect)),
                    ("delay_reason", .optional(l.error?.text)),
                    ("error_time", l.error.map { .int(Int($0.time)) } ?? .null),
                    ("delay_dsn_time", l.warned.map { .int(Int($0)) } ?? .null),
                ])
            })),
        ]
        return .object(members)
    }

    // MARK: Text

    /// The `queue list` lines (mailq-like): a header line, then what waits and why.
    func listText(now: Double) -> String {
        guard let file else { return "\(id)  \(state.rawValue)  (unreadable: \(printable(problem ?? "")))\n" }
        let e = file.envelope
        var s = "\(id)  \(state.rawValue)  \(e.size)  \(isoTime(e.arrival))  <\(printable(e.mailFrom))>\n"
        if let next = nextAttempt {
            s += "        next attempt \(isoTime(next)) (\(relative(next - now))), attempts \(file.verdict?.attempts ?? 0)\n"
        }
        if state == .hold, let reason = e.holdReason { s += "        (\(printable(reason)))\n" }
        for l in lines {
            let status = l.status.map { " [\(Character(Unicode.Scalar($0.rawValue)))] \(printable(l.route ?? ""))" } ?? ""
            let redirect = l.redirect.map { " to=<\(printable($0))>" } ?? ""
            s += "        <\(printable(l.recipient.address))>\(status)\(redirect)\n"
            if let error = l.error, l.status == .pending || l.status == .failed {
                s += "            (\(printable(error.text, limit: 300)))\n"
            }
        }
        return s
    }

    /// `queue show`: the envelope and the state of every recipient, like `postcat -q`.
    func showText(now: Double) -> String {
        var s = "*** ENVELOPE \(state.rawValue)/\(id) ***\n"
        func add(_ key: String, _ value: String) {
            s += (key + ":").padding(16) + printable(value, limit: 1000) + "\n"
        }
        guard let file else {
            add("error", problem ?? "unreadable")
            return s
        }
        let e = file.envelope
        var stateText = state.rawValue
        if let next = nextAttempt { stateText += ", next attempt \(isoTime(next)) (\(relative(next - now)))" }
        add("state", stateText)
        add("arrival", "\(isoTime(e.arrival)) (\(relative(e.arrival - now)))")
        add("size", "\(e.size)")
        add("client", "\(e.clientName)[\(e.clientIP)]:\(e.clientPort) helo=\(e.helo) with \(e.receivedWith)")
        add("received on", "[\(e.serverIP)]:\(e.serverPort) (\(e.mailProtocol))")
        if !e.xforward.isEmpty { add("xforward", e.xforward.keys.sorted().map { "\($0)=\(e.xforward[$0]!)" }.joined(separator: " ")) }
        add("sender", "<\(e.mailFrom)>" + (e.mailParameters.items.isEmpty ? "" : " \(e.mailParameters)"))
        if let reason = e.holdReason { add("hold reason", reason) }
        for l in lines {
            add("recipient", "<\(l.recipient.address)>" + (l.recipient.parameters.items.isEmpty ? "" : " \(l.recipient.parameters)"))
            if let status = l.status {
                add("    status", QueueEntry.word(status) + (l.route.map { " via \($0)" } ?? "") + (l.redirect.map { " to <\($0)>" } ?? ""))
            }
            if let error = l.error { add("    last error", "\(isoTime(error.time)): \(error.text)") }
            if let warned = l.warned { add("    delay DSN", "\(isoTime(warned)) (the sender was told of the delay)") }
        }
        s += "*** VERDICT ***\n"
        guard let v = file.verdict else {
            add("verdict", file.verdictIncomplete ? "(incomplete: will be scanned again)" : "(not scanned yet)")
            return s
        }
        add("scanned", isoTime(v.scanned))
        add("verdict", v.action.description + (v.afterQueuePending ? " (after-queue scan pending)" : ""))
        if v.score != 0 { add("score", "\(v.score)") }
        for f in v.findings { add("finding", f) }
        for (i, reason) in v.reasons.sorted(by: { $0.key < $1.key }) where i < e.recipients.count {
            add("blocked", "<\(e.recipients[i].address)>: \(reason)")
        }
        for h in v.addHeaders { add("add header", h) }
        for (i, headers) in v.recipientHeaders.sorted(by: { $0.key < $1.key }) where i < e.recipients.count {
            for h in headers { add("add header", "\(h) (for <\(e.recipients[i].address)> only)") }
        }
        add("attempts", "\(v.attempts)")
        return s
    }

    static func word(_ status: RecipientStatus) -> String {
        switch status {
        case .pending: "pending"
        case .delivered: "delivered"
        case .failed: "failed"
        case .blocked: "blocked"
        case .dropped: "dropped"
        }
    }
}

extension String {
    func padding(_ width: Int) -> String {
        count >= width ? self + " " : self + String(repeating: " ", count: width - count)
    }
}

func isoTime(_ t: Double) -> String {
    Timestamp.format(time_t(t), "%Y-%m-%dT%H:%M:%SZ", utc: true)
}

/// `in 59m 12s` or `2h 3m ago`.
func relative(_ seconds: Double) -> String {
    seconds >= 0 ? "in \(span(seconds))" : "\(span(-seconds)) ago"
}

/// `1d 2h`, `59m 12s`, `7s`: the two largest units.
func span(_ seconds: Double) -> String {
    var left = Int(seconds.rounded())
    var parts: [String] = []
    for (unit, length) in [("d", 86400), ("h", 3600), ("m", 60), ("s", 1)] where left >= length || (unit == "s" && parts.isEmpty) {
        parts.append("\(left / length)\(unit)")
        left %= length
        if parts.count == 2 { break }
    }
    return parts.joined(separator: " ")
}
