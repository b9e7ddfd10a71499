import PosternSMTP
import PosternUtil
/// One recipient of a message, with its DSN parameters as the client sent them.
public struct Recipient: Sendable, Hashable {
    public var address: String
    public var parameters: MailParameters
    public init(address: String, parameters: MailParameters = MailParameters()) {
        self.address = address
        self.parameters = parameters
    }
}

/// Everything receiverd learnt about a message besides its bytes.
/// - SeeAlso: docs/spool-format.md
public struct Envelope: Sendable, Hashable {
    public var id: String
    /// Arrival (the MAIL command), seconds since the epoch.
    public var arrival: Double
    /// End of the message data, seconds since the epoch; 0 in files from before it was kept.
    public var completed: Double = 0
    /// End of the message data, or the arrival for files that do not say.
    public var endOfData: Double { completed > 0 ? completed : arrival }
    /// How the message came in; the spool says `protocol smtp` or `protocol lmtp`.
    public var mailProtocol: MailProtocol
    /// `ESMTP`, `SMTP` or `LMTP`, for the Received: header and XFORWARD PROTO.
    public var receivedWith: String
    public var clientIP: String
    public var clientPort: Int
    public var clientName: String
    public var helo: String
    public var serverIP: String
    public var serverPort: Int
    /// XFORWARD attributes from a protected client (NAME, ADDR, PORT, PROTO, HELO, IDENT, SOURCE).
    public var xforward: [String: String]
    public var mailFrom: String
    public var mailParameters: MailParameters
    public var recipients: [Recipient]
    /// Message size in octets as stored (with Postern's Received: header).
    public var size: Int
    /// SHA-256 of the message body (after the header section), hex.
    public var bodyHash: String
    /// The message carried a valid loop guard of ours: it was scanned before.
    public var guardValid: Bool { validGuards > 0 }
    /// How many valid loop guards of ours the message carried: how often it had passed
    /// this filter (or one sharing its key) before.
    public var validGuards: Int
    public var receivedHeaders: Int
    /// Why receiverd put the message on hold instead of queueing it for scanning (a loop).
    public var holdReason: String?
    /// Whether a line of the stored message starts with a dot (so that DATA must double it),
    /// as ``SpoolWriter`` saw the bytes go into the file; nil when unknown (a file written
    /// before the field existed), and senderd then looks for itself.
    public var dotLines: Bool?

    public init(id: String, arrival: Double, mailProtocol: MailProtocol = .smtp, receivedWith: String = "ESMTP",
                clientIP: String = "", clientPort: Int = 0, clientName: String = "unknown", helo: String = "",
                serverIP: String = "", serverPort: Int = 0, xforward: [String: String] = [:],
                mailFrom: String = "", mailParameters: MailParameters = MailParameters(),
                recipients: [Recipient] = [], size: Int = 0, bodyHash: String = "", validGuards: Int = 0,
                receivedHeaders: Int = 0, holdReason: String? = nil) {
        self.id = id
        self.arrival = arrival
        self.mailProtocol = mailProtocol
        self.receivedWith = receivedWith
        self.clientIP = clientIP
        self.clientPort = clientPort
        self.clientName = clientName
        self.helo = helo
        self.serverIP = serverIP
        self.serverPort = serverPort
        self.xforward = xforward
        self.mailFrom = mailFrom
        self.mailParameters = mailParameters
        self.recipients = recipients
        self.size = size
        self.bodyHash = bodyHash
        self.validGuards = validGuards
        self.receivedHeaders = receivedHeaders
        self.holdReason = holdReason
    }
}

extension Envelope {
    /// Text form: one `key value` line per field, ending with `end envelope`.
    public func write() -> String {
        var s = ""
        func add(_ k: String, _ v: String) { s += k + " " + SpoolText.clean(v) + "\n" }
        add("id", id)
        add("arrival", String(arrival))
        if completed > 0 { add("completed", String(completed)) }
        add("protocol", mailProtocol.rawValue)
        add("received-with", receivedWith)
        add("client-ip", clientIP)
        add("client-port", String(clientPort))
        add("client-name", clientName)
        add("helo", helo)
        add("server-ip", serverIP)
        add("server-port", String(serverPort))
        for k in xforward.keys.sorted() { add("xforward", "\(k)=\(xforward[k]!)") }
        add("mail-from", "<\(mailFrom)>" + (mailParameters.items.isEmpty ? "" : " \(mailParameters)"))
        for r in recipients { add("rcpt", "<\(r.address)>" + (r.parameters.items.isEmpty ? "" : " \(r.parameters)")) }
        add("size", String(size))
        add("body-sha256", bodyHash)
        add("guard-valid", guardValid ? "yes" : "no")
        add("valid-guards", String(validGuards))
        add("received-headers", String(receivedHeaders))
        if let holdReason { add("hold-reason", holdReason) }
        if let dotLines { add("dot-lines", dotLines ? "yes" : "no") }
        s += "end envelope\n"
        return s
    }

    /// Parses the text form; `nil` when a field is missing or malformed.
    public static func parse(_ lines: [Substring]) throws(SpoolFormatError) -> Envelope {
        var e = Envelope(id: "", arrival: 0)
        // Every queue file is parsed by scannerd and again by senderd: keys stay slices of the
        // line, and the required ones are counted in bits, not in a set of strings.
        var seen: UInt8 = 0
        for line in lines {
            let (k, v) = SpoolText.split(line)
            switch k {
            case "id": e.id = String(v); seen |= 1
            case "arrival": e.arrival = Double(v) ?? 0; seen |= 2
            case "completed": e.completed = Double(v) ?? 0
            // Only receiverd writes it, `smtp` or `lmtp`; anything else was never LMTP.
            case "protocol": e.mailProtocol = MailProtocol(rawValue: String(v)) ?? .smtp
            case "received-with": e.receivedWith = String(v)
            case "client-ip": e.clientIP = String(v)
            case "client-port": e.clientPort = Int(v) ?? 0
            case "client-name": e.clientName = String(v)
            case "helo": e.helo = String(v)
            case "server-ip": e.serverIP = String(v)
            case "server-port": e.serverPort = Int(v) ?? 0
            case "xforward":
                if let eq = v.firstIndex(of: "=") { e.xforward[String(v[..<eq])] = String(v[v.index(after: eq)...]) }
            case "mail-from":
                let (a, p) = try SpoolText.pathAndParameters(v, line: line)
                e.mailFrom = a
                e.mailParameters = p
                seen |= 4
            case "rcpt":
                let (a, p) = try SpoolText.pathAndParameters(v, line: line)
                e.recipients.append(Recipient(address: a, parameters: p))
                seen |= 8
            case "size": e.size = Int(v) ?? -1; seen |= 16
            case "body-sha256": e.bodyHash = String(v)
            // Files written before `valid-guards` existed say only whether there was one.
            case "guard-valid": if v == "yes" { e.validGuards = max(e.validGuards, 1) }
            case "valid-guards": e.validGuards = Int(v) ?? e.validGuards
            case "received-headers": e.receivedHeaders = Int(v) ?? 0
            case "hold-reason": e.holdReason = String(v)
            case "dot-lines": e.dotLines = v == "yes" ? true : v == "no" ? false : nil
            default: break   // newer minor fields are ignored by older readers
            }
        }
        for (bit, required) in ["id", "arrival", "mail-from", "rcpt", "size"].enumerated() where seen & (1 << bit) == 0 {
            throw SpoolFormatError(hint: "envelope lacks \(required)")
        }
        guard e.size >= 0 else { throw SpoolFormatError(hint: "bad size") }
        return e
    }
}

/// A spool file that cannot be read as one: it goes to `corrupt/`.
public struct SpoolFormatError: Error, Sendable, CustomStringConvertible {
    public var hint: String
    public init(hint: String) { self.hint = hint }
    public var description: String { "malformed spool file: \(hint)" }
}

package enum SpoolText {
    /// Values come from SMTP command lines and cannot hold CR or LF; this is a second guard.
    package static func clean(_ v: String) -> String {
        ASCII.replacing(v, where: ASCII.isControl, with: UInt8(ascii: "?"))
    }

    /// A `key value` line's key and value, as slices of it.
    package static func split(_ line: Substring) -> (Substring, Substring) {
        guard let sp = line.utf8.firstIndex(of: UInt8(ascii: " ")) else { return (line, line[line.endIndex...]) }
        return (line[..<sp], line[line.utf8.index(after: sp)...])
    }

    package static func pathAndParameters(_ v: Substring, line: Substring) throws(SpoolFormatError) -> (String, MailParameters) {
        do {
            let (path, rest) = try Command.parsePath(v)
            return (String(path), try MailParameters.parse(rest))
        } catch {
            throw SpoolFormatError(hint: "bad address or parameters in \(line.prefix(60))")
        }
    }
}
