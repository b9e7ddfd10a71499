import PosternSMTP
import PosternSpool

/// The envelope as this next hop gets it: the commands, with the parameters it offers.
extension ClientConnection {
    /// The commands of one transaction, as they go on the wire.
    struct EnvelopeCommands {
        var xforward: String?
        var mail: String
        var rcpts: [String]
    }

    /// BODY, SMTPUTF8, RET and ENVID as the client gave them, where the next hop offers the
    /// extension; SIZE recomputed for what we send (RFC 1870).
    func mailParameters(_ e: Envelope, size: Int) -> String {
        var out = ""
        for p in e.mailParameters.items {
            switch p.keyword {
            case "SIZE": continue
            case "BODY" where offers("8BITMIME"): out += " BODY=\(p.value ?? "")"
            case "SMTPUTF8" where offers("SMTPUTF8"): out += " SMTPUTF8"
            case "RET" where offers("DSN"), "ENVID" where offers("DSN"): out += " \(p.keyword)=\(p.value ?? "")"
            default: continue
            }
        }
        if offers("SIZE") { out += " SIZE=\(size)" }
        return out
    }

    func rcptParameters(_ r: Recipient) -> String {
        guard offers("DSN") else { return "" }
        var out = ""
        for p in r.parameters.items where p.keyword == "NOTIFY" || p.keyword == "ORCPT" {
            out += " \(p.keyword)=\(p.value ?? "")"
        }
        return out
    }

    /// The original client, as the MTA told us with XFORWARD, or else the MTA itself.
    /// - SeeAlso: Postfix XFORWARD_README
    func xforwardCommand(_ e: Envelope) -> String {
        let offered = xforwardOffered
        var attrs = e.xforward
        if attrs.isEmpty {
            attrs = ["NAME": e.clientName == "unknown" ? "[UNAVAILABLE]" : e.clientName, "ADDR": e.clientIP,
                     "PORT": String(e.clientPort), "HELO": e.helo, "PROTO": e.receivedWith]
        }
        let ours = e.xforward.isEmpty   // values from the MTA are xtext already
        let parts = attrs.keys.sorted().filter { offered.contains($0) && !(attrs[$0] ?? "").isEmpty }
            .map { "\($0)=\(ours ? XText.encode(attrs[$0]!) : attrs[$0]!)" }
        return "XFORWARD " + (parts.isEmpty ? "NAME=[UNAVAILABLE]" : parts.joined(separator: " ")) + "\r\n"
    }
}
