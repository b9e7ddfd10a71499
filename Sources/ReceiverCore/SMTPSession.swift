import Glibc
import NIOCore
import PosternPolicy
import PosternSMTP
import PosternSpool
import PosternUtil

/// The command table and transaction state of one session, without any I/O, so that it can be
/// tested line by line. Postfix's `smtpd_cmd_table` is the model: each verb says whether it
/// needs a greeting, a transaction, and what it answers. Its replies are the protocol's own
/// (syntax, sequence, the greeting, 354); what a transaction or session ends in is an
/// ``Outcome``, answered from the ``ReplyTable``.
/// - SeeAlso: RFC 5321 §4.1.4 (order of commands), RFC 2033 (LMTP), RFC 1870, 6152, 6531, 3461
package struct SMTPSession {
    /// What a command line leads to.
    package enum Step: Equatable {
        case reply(Reply)
        case quit(Reply)
        case startData
        /// A BDAT chunk of `size` octets follows the command line (RFC 3030).
        case chunk(size: Int, last: Bool)
        /// Say 220 and start the TLS handshake (RFC 3207).
        case startTLS
    }

    /// Postfix `smtpd_hard_error_limit`: a client that keeps erring is cut off.
    package static let hardErrorLimit = 20
    package static let xforwardAttributes: Set<String> = ["NAME", "ADDR", "PORT", "PROTO", "HELO", "IDENT", "SOURCE"]

    package let lmtp: Bool
    package let hostname: String
    package let maxMessageSize: Int
    package let maxRecipients: Int

    package var clientIP = ""
    package var clientPort = 0
    package var serverIP = ""
    package var serverPort = 0
    package var helo: String?
    package var esmtp = false
    /// A certificate is configured: STARTTLS is offered until TLS is active.
    package var tlsAvailable = false
    package var tlsActive = false
    package var errors = 0
    package var lastVerb = "CONNECT"

    // Transaction
    package var mailFrom: String?
    package var mailParameters = MailParameters()
    package var recipients: [Recipient] = []
    package var xforward: [String: String] = [:]
    package var queueID = ""
    package var arrival = 0.0
    /// BDAT has begun in this transaction: DATA is now out of sequence (RFC 3030 §2).
    package var chunking = false

    package var inTransaction: Bool { mailFrom != nil }

    package init(lmtp: Bool, hostname: String, config: PosternConfig) {
        self.lmtp = lmtp
        self.hostname = hostname
        self.maxMessageSize = config.receiver.maxMessageSize
        self.maxRecipients = config.receiver.maxRecipients
    }

    /// After the TLS handshake starts, everything said before is forgotten (RFC 3207 §4.2).
    package mutating func startTLS() {
        resetTransaction()
        helo = nil
        esmtp = false
        xforward = [:]
        tlsActive = true
    }

    package mutating func resetTransaction() {
        mailFrom = nil
        mailParameters = MailParameters()
        recipients = []
        queueID = ""
        chunking = false
        xforward = [:]   // as Postfix: XFORWARD describes one transaction
    }

    /// A framed command line: bare LF, overlong lines and lines with CR or NUL are refused
    /// before the command table sees them.
    package mutating func handle(framed: FramedLine) -> Step {
        let line: ByteBuffer
        switch framed {
        case .line(let l): line = l
        case .bareLF: return .reply(Reply(500, EnhancedStatus(5, 5, 2), "Error: bare <LF> received; lines must end with <CR><LF>"))
        case .overlong: return .reply(Reply(500, EnhancedStatus(5, 5, 2), "Error: line too long"))
        }
        guard line.readableBytes <= SMTPDefaults.maxCommandLine,
              let text = line.getString(at: line.readerIndex, length: line.readableBytes),
              !text.utf8.contains(13), !text.utf8.contains(0)
        else { return .reply(Reply(500, EnhancedStatus(5, 5, 2), "Error: bad command line")) }
        return handle(line: Substring(text))
    }

    package mutating func handle(line: Substring) -> Step {
        let command: Command
        do {
            command = try Command.parse(line)
        } catch {
            lastVerb = String(line.prefix(while: { $0 != " " }).prefix(16)).uppercased()
            switch error.kind {
            case .unknownCommand: return .reply(Reply(500, EnhancedStatus(5, 5, 2), "Error: command not recognized"))
            case .syntax: return .reply(Reply(501, EnhancedStatus(5, 5, 4), "Syntax: \(error.hint)"))
            case .badAddress: return .reply(Reply(501, EnhancedStatus(5, 1, 3), "Bad address syntax: \(error.hint)"))
            case .utf8NotDeclared: return .reply(Reply(553, EnhancedStatus(5, 6, 7), "Must declare SMTPUTF8 to send UTF8 addresses"))
            }
        }
        lastVerb = command.verb
        switch command {
        case .helo(let name), .ehlo(let name), .lhlo(let name):
            let isLHLO = { if case .lhlo = command { return true }; return false }()
            guard isLHLO == lmtp else {
                return .reply(Reply(500, EnhancedStatus(5, 5, 1), lmtp ? "Error: LMTP requires LHLO" : "Error: command not recognized"))
            }
            resetTransaction()
            xforward = [:]
            helo = name
            if case .helo = command {
                esmtp = false
                return .reply(Reply(250, nil, hostname))
            }
            esmtp = true
            return .reply(Reply(250, nil, lines: [hostname] + extensions))
        case .mail(let from, let params):
            guard helo != nil else { return .reply(Reply(503, EnhancedStatus(5, 5, 1), "Error: send \(lmtp ? "LHLO" : "HELO/EHLO") first")) }
            guard mailFrom == nil else { return .reply(Reply(503, EnhancedStatus(5, 5, 1), "Error: nested MAIL command")) }
            if let r = checkMailParameters(params) { return .reply(r) }
            mailFrom = from
            mailParameters = params
            let now = WallClock.now
            queueID = QueueID.make(now: now)
            arrival = WallClock.seconds(of: now)
            return .reply(Reply(250, EnhancedStatus(2, 1, 0), "Ok"))
        case .rcpt(let to, let params):
            guard mailFrom != nil else { return .reply(Reply(503, EnhancedStatus(5, 5, 1), "Error: need MAIL command")) }
            guard recipients.count < maxRecipients else { return .reply(Reply(452, EnhancedStatus(4, 5, 3), "Error: too many recipients")) }
            if to.utf8.contains(where: { $0 > 127 }) && !mailParameters.has("SMTPUTF8") {
                return .reply(Reply(553, EnhancedStatus(5, 6, 7), "Must declare SMTPUTF8 to send UTF8 addresses"))
            }
            if let r = checkRcptParameters(params) { return .reply(r) }
            recipients.append(Recipient(address: to, parameters: params))
            return .reply(Reply(250, EnhancedStatus(2, 1, 5), "Ok"))
        case .data:
            guard mailFrom != nil else { return .reply(Reply(503, EnhancedStatus(5, 5, 1), "Error: need MAIL command")) }
            guard !recipients.isEmpty else { return .reply(Reply(554, EnhancedStatus(5, 5, 1), "Error: no valid recipients")) }
            guard !chunking else { return .reply(Reply(503, EnhancedStatus(5, 5, 1), "Error: DATA after BDAT")) }
            return .startData
        case .bdat(let size, let last):
            // The chunk is read (and thrown away) even when refused, to stay in step.
            guard mailFrom != nil, !recipients.isEmpty else {
                return .chunk(size: size, last: last)
            }
            chunking = true
            return .chunk(size: size, last: last)
        case .rset:
            resetTransaction()
            return .reply(Reply(250, EnhancedStatus(2, 0, 0), "Ok"))
        case .noop:
            return .reply(Reply(250, EnhancedStatus(2, 0, 0), "Ok"))
        case .quit:
            return .quit(Reply(221, EnhancedStatus(2, 0, 0), "Bye"))
        case .vrfy:
            return .reply(Reply(252, EnhancedStatus(2, 0, 0), "Cannot VRFY user, but will accept message and attempt delivery"))
        case .help:
            return .reply(Reply(214, EnhancedStatus(2, 0, 0), "See RFC 5321"))
        case .starttls:
            guard tlsAvailable else { return .reply(Reply(502, EnhancedStatus(5, 5, 1), "Error: STARTTLS not configured")) }
            guard !tlsActive else { return .reply(Reply(503, EnhancedStatus(5, 5, 1), "Error: TLS already active")) }
            guard mailFrom == nil else { return .reply(Reply(503, EnhancedStatus(5, 5, 1), "Error: MAIL transaction in progress")) }
            return .startTLS
        case .xforward(let attrs):
            guard helo != nil, esmtp else { return .reply(Reply(503, EnhancedStatus(5, 5, 1), "Error: send EHLO first")) }
            guard mailFrom == nil else { return .reply(Reply(503, EnhancedStatus(5, 5, 1), "Error: MAIL transaction in progress")) }
            for k in attrs.keys where !SMTPSession.xforwardAttributes.contains(k) {
                return .reply(Reply(501, EnhancedStatus(5, 5, 4), "Bad XFORWARD attribute name: \(k)"))
            }
            for (k, v) in attrs { xforward[k] = v }
            return .reply(Reply(250, EnhancedStatus(2, 0, 0), "Ok"))
        }
    }

    /// The greeting (RFC 5321 §4.2): 220 and the protocol spoken.
    package var greeting: Reply { Reply(220, nil, "\(hostname) \(lmtp ? "LMTP" : "ESMTP") Postern") }
    package static let startMailInput = Reply(354, nil, "End data with <CR><LF>.<CR><LF>")
    package static let readyToStartTLS = Reply(220, EnhancedStatus(2, 0, 0), "Ready to start TLS")
    package static let chunkWithoutTransaction = Reply(503, EnhancedStatus(5, 5, 1), "Error: need MAIL and RCPT before BDAT")
    package static func chunkReceived(_ octets: Int) -> Reply { Reply(250, EnhancedStatus(2, 0, 0), "Ok: \(octets) octets received") }

    package var extensions: [String] {
        (tlsAvailable && !tlsActive ? ["STARTTLS"] : []) + [
            "PIPELINING",
            "SIZE \(maxMessageSize)",
            "CHUNKING",
            "ENHANCEDSTATUSCODES",
            "8BITMIME",
            "DSN",
            "SMTPUTF8",
            "XFORWARD " + SMTPSession.xforwardAttributes.sorted().joined(separator: " "),
        ]
    }

    /// SIZE (RFC 1870), BODY (RFC 6152), SMTPUTF8 (RFC 6531), RET/ENVID (RFC 3461).
    private func checkMailParameters(_ p: MailParameters) -> Reply? {
        for item in p.items {
            switch item.keyword {
            case "SIZE":
                guard let v = item.value, let n = Int(v), n >= 0 else { return Reply(501, EnhancedStatus(5, 5, 4), "Bad SIZE value") }
                if n > maxMessageSize { return Reply(552, EnhancedStatus(5, 3, 4), "Message size exceeds fixed limit") }
            case "BODY":
                guard let v = item.value?.uppercased(), v == "7BIT" || v == "8BITMIME" else {
                    return Reply(501, EnhancedStatus(5, 5, 4), "Bad BODY value: 7BIT or 8BITMIME (BINARYMIME is not supported)")
                }
            case "SMTPUTF8":
                guard item.value == nil else { return Reply(501, EnhancedStatus(5, 5, 4), "SMTPUTF8 takes no value") }
            case "RET":
                guard let v = item.value?.uppercased(), v == "FULL" || v == "HDRS" else { return Reply(501, EnhancedStatus(5, 5, 4), "Bad RET value") }
            case "ENVID":
                guard let v = item.value, v.utf8.count <= 100 else { return Reply(501, EnhancedStatus(5, 5, 4), "Bad ENVID value") }
            case "AUTH":
                break   // RFC 4954: accepted and passed on as given
            default:
                return Reply(555, EnhancedStatus(5, 5, 4), "Unsupported option: \(item.keyword)")
            }
        }
        return nil
    }

    private func checkRcptParameters(_ p: MailParameters) -> Reply? {
        for item in p.items {
            switch item.keyword {
            case "NOTIFY":
                guard let v = item.value?.uppercased() else { return Reply(501, EnhancedStatus(5, 5, 4), "Bad NOTIFY value") }
                let words = v.split(separator: ",")
                let ok = words == ["NEVER"] || (!words.isEmpty && words.allSatisfy { ["SUCCESS", "FAILURE", "DELAY"].contains($0) })
                if !ok { return Reply(501, EnhancedStatus(5, 5, 4), "Bad NOTIFY value") }
            case "ORCPT":
                guard let v = item.value, v.contains(";"), v.utf8.count <= 500 else { return Reply(501, EnhancedStatus(5, 5, 4), "Bad ORCPT value") }
            default:
                return Reply(555, EnhancedStatus(5, 5, 4), "Unsupported option: \(item.keyword)")
            }
        }
        return nil
    }

    package func envelope(size: Int) -> Envelope {
        Envelope(
            id: queueID, arrival: arrival, mailProtocol: lmtp ? .lmtp : .smtp,
            receivedWith: (lmtp ? "LMTP" : (esmtp ? "ESMTP" : "SMTP")) + (tlsActive ? "S" : ""),
            clientIP: clientIP, clientPort: clientPort,
            clientName: clientIP.hasPrefix("127.") || clientIP == "::1" ? "localhost" : "unknown",
            helo: helo ?? "", serverIP: serverIP, serverPort: serverPort, xforward: xforward,
            mailFrom: mailFrom ?? "", mailParameters: mailParameters, recipients: recipients, size: size)
    }
}
