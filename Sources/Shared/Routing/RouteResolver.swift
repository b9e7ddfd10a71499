/// Resolves `SenderAddress` for each recipient of a message: the rules first, `[Sender]
/// Address` when no rule sets it, with the CLIENT-IP / SERVER-IP macros substituted.
public struct RouteResolver: Sendable {
    public let config: PosternConfig

    public init(config: PosternConfig) { self.config = config }

    public func context(for e: Envelope, recipient: Int?, headers: [HeaderField]?) -> RuleContext {
        var c = RuleContext()
        c.from = e.mailFrom
        c.rcpt = recipient.map { e.recipients[$0].address }
        c.clientIP = e.clientIP
        c.clientPort = e.clientPort
        c.serverIP = e.serverIP
        c.helo = e.helo
        c.xforwardAddr = e.xforward["ADDR"]
        c.mailProtocol = e.mailProtocol
        c.size = e.size
        return c
    }

    public func route(for e: Envelope, recipient: Int, headers: [HeaderField]?) -> Endpoint {
        let value = config.rules.resolve("SenderAddress", in: context(for: e, recipient: recipient, headers: headers)).value
        let endpoint = value.flatMap { try? Endpoint.parse($0) } ?? config.sender.address
        return endpoint.substituting(clientIP: e.clientIP, serverIP: e.serverIP)
    }
}
