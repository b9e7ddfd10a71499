// TEMPORARY: replaced by the real loader. Do not commit.
import Glibc

public struct Endpoint: Sendable, Hashable, CustomStringConvertible {
    public enum MailProtocol: String, Sendable { case smtp, lmtp }
    public enum Location: Sendable, Hashable { case inet(host: String, port: Int), unix(path: String) }
    public var mailProtocol: MailProtocol
    public var location: Location
    public var description: String {
        let p = mailProtocol == .lmtp ? "lmtp:" : ""
        switch location {
        case .inet(let h, let port): return p + "inet:\(port)@" + (h.contains(":") ? "[\(h)]" : h)
        case .unix(let path): return p + "local:" + path
        }
    }
    public static func parse(_ text: String) throws -> Endpoint {
        var t = Substring(text)
        var proto = MailProtocol.smtp
        if t.hasPrefix("lmtp:") { proto = .lmtp; t = t.dropFirst(5) } else if t.hasPrefix("smtp:") { t = t.dropFirst(5) }
        if t.hasPrefix("local:") { return Endpoint(mailProtocol: proto, location: .unix(path: String(t.dropFirst(6)))) }
        guard t.hasPrefix("inet:"), let at = t.firstIndex(of: "@"), let port = Int(t[t.index(t.startIndex, offsetBy: 5)..<at]) else { throw StubError() }
        var host = String(t[t.index(after: at)...])
        if host.hasPrefix("[") { host = String(host.dropFirst().dropLast()) }
        return Endpoint(mailProtocol: proto, location: .inet(host: host, port: port))
    }
    public func substituting(clientIP: String?, serverIP: String?) -> Endpoint {
        guard case .inet(let h, let p) = location else { return self }
        var e = self
        if h == "CLIENT-IP", let clientIP { e.location = .inet(host: clientIP, port: p) }
        if h == "SERVER-IP", let serverIP { e.location = .inet(host: serverIP, port: p) }
        return e
    }
}
struct StubError: Error {}
public struct CIDR: Sendable, Hashable { public func contains(_ ip: String) -> Bool { ip.hasPrefix("127.") || ip == "::1" } }
public struct RuleContext: Sendable {
    public var from: String?; public var rcpt: String?; public var clientIP: String?; public var clientPort: Int?; public var serverIP: String?; public var helo: String?
    public var xforwardAddr: String?; public var mailProtocol: String?; public var size: Int?
    public init(from: String? = nil, rcpt: String? = nil, clientIP: String? = nil, clientPort: Int? = nil, serverIP: String? = nil, helo: String? = nil, xforwardAddr: String? = nil, mailProtocol: String? = nil, size: Int? = nil) {
        self.from = from; self.rcpt = rcpt; self.clientIP = clientIP; self.clientPort = clientPort; self.serverIP = serverIP; self.helo = helo; self.xforwardAddr = xforwardAddr; self.mailProtocol = mailProtocol; self.size = size
    }
}
public struct Resolution: Sendable { public var value: String? }
public struct RuleSet: Sendable {
    var callback: String?
    public func resolve(_ p: String, in c: RuleContext) -> Resolution {
        guard let callback, c.from != "", c.from != "root@localhost" else { return Resolution(value: nil) }
        return Resolution(value: callback)
    }
    public var usesHeaders: Bool { false }
}
public struct GeneralSection: Sendable { public var hostname = "localhost"; public var spoolDir = "./var/spool"; public var runDir = "./var/run"; public var logLevel = "info" }
public struct ReceiverSection: Sendable {
    public var address: [Endpoint] = [try! .parse("inet:10024@127.0.0.1")]; public var protectedNetworks: [CIDR] = [CIDR()]
    public var maxMessageSize = 10 << 20; public var maxRecipients = 1000; public var maxSessions = 200
    public var commandTimeout: Duration = .seconds(300); public var dataTimeout: Duration = .seconds(300)
    public var addReceivedHeader = true; public var maxReceivedHeaders = 50
}
public struct ScannerSection: Sendable { public var address: Endpoint = try! .parse("local:./var/run/scannerd.sock") }
public struct SenderSection: Sendable {
    public var address: Endpoint = try! .parse("inet:25@127.0.0.1"); public var controlAddress: Endpoint = try! .parse("local:./var/run/senderd.sock")
    public var connectTimeout: Duration = .seconds(30); public var commandTimeout: Duration = .seconds(300); public var dataTimeout: Duration = .seconds(600)
    public var maxConnections = 20; public var retryIntervals: [Duration] = [.seconds(60), .seconds(300)]; public var maxQueueLifetime: Duration = .seconds(5 * 86400)
    public var secureHash = ""
}
public struct NotifierSection: Sendable { public var filterMail = "postern@localhost" }
public struct PosternConfig: Sendable {
    public static let defaultPath = "/etc/postern/postern.conf"
    public var path = ""
    public var general = GeneralSection(); public var receiver = ReceiverSection(); public var scanner = ScannerSection()
    public var sender = SenderSection(); public var notifier = NotifierSection(); public var rules = RuleSet()
    public static func load(path: String) throws -> PosternConfig {
        var c = PosternConfig(); c.path = path
        let text = String(decoding: try SysCall.readFile(path), as: UTF8.self)
        var section = ""
        for raw in text.split(separator: "\n") {
            let line = raw.trimmingCharacters()
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("[") { section = line.lowercased(); continue }
            if section == "[rules]", line.contains("SenderAddress = ") { c.rules.callback = String(line.split(separator: "=").last!.trimmingSpaces); continue }
            let kv = line.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters() }
            guard kv.count == 2 else { continue }
            switch (section, kv[0].lowercased()) {
            case ("[general]", "spooldir"): c.general.spoolDir = kv[1]
            case ("[general]", "rundir"): c.general.runDir = kv[1]; c.scanner.address = try .parse("local:\(kv[1])/scannerd.sock"); c.sender.controlAddress = try .parse("local:\(kv[1])/senderd.sock")
            case ("[general]", "hostname"): c.general.hostname = kv[1]
            case ("[receiver]", "address"): c.receiver.address = [try .parse(kv[1])]
            case ("[sender]", "address"): c.sender.address = try .parse(kv[1])
            default: break
            }
        }
        return c
    }
}
extension Substring { func trimmingCharacters() -> String { String(self.trimmingSpaces) } }
