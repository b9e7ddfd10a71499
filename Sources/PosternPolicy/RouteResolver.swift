import PosternSMTP
import PosternSpool
/// Resolves `SenderAddress` for each recipient of a message: the rules first, `[Sender]
/// Address` when no rule sets it, with the CLIENT-IP / SERVER-IP macros substituted.
public struct RouteResolver: Sendable {
    public let config: PosternConfig

    public init(config: PosternConfig) { self.config = config }

    public func context(for e: Envelope, recipient: Int?, headers: [HeaderField]?) -> RuleContext {
        RuleContext(
            from: e.mailFrom, rcpt: recipient.map { e.recipients[$0].address },
            clientIP: e.clientIP, clientPort: e.clientPort, serverIP: e.serverIP, helo: e.helo,
            xforwardAddr: e.xforward["ADDR"], mailProtocol: e.mailProtocol.rawValue, size: e.size, headers: headers)
    }

    /// The route of one recipient; after a scan, `blocks` and `score` let `block:` and `score:`
    /// terms choose it.
    public func route(for e: Envelope, recipient: Int, headers: [HeaderField]?,
                      blocks: [String]? = nil, score: Double? = nil) -> Endpoint {
        var endpoint = config.sender.address
        if let setting = config.rules.setting(for: "SenderAddress", in: scannedContext(e, recipient, headers, blocks, score)),
           case .endpoint(let chosen) = setting.typed {
            endpoint = chosen
        }
        let resolved = endpoint.substituting(clientIP: e.clientIP.isEmpty ? nil : e.clientIP,
                                             serverIP: e.serverIP.isEmpty ? nil : e.serverIP)
        // A macro with nothing to put in its place (a message from a unix socket client) must
        // not become a route that cannot work: such mail takes the default route.
        return resolved.hasMacros ? config.sender.address : resolved
    }

    /// The `SenderTLS` a rule sets for one recipient, nil when none does: senderd then applies
    /// `[Sender] TLS` as configured at delivery time (a SIGHUP changes it for queued mail too).
    public func tlsPolicy(for e: Envelope, recipient: Int, headers: [HeaderField]?,
                          blocks: [String]? = nil, score: Double? = nil) -> TLSPolicy? {
        let context = scannedContext(e, recipient, headers, blocks, score)
        guard case .text(let word) = config.rules.setting(for: "SenderTLS", in: context)?.typed else { return nil }
        return TLSPolicy(text: word)
    }
}

extension Quarantine {
    /// Releases entry `id` (see ``Quarantine/release(_:only:layout:route:)``) with routes as the
    /// rules of `resolver` give them now.
    public func release(_ id: String, only: [String]?, layout: SpoolLayout, resolver: RouteResolver) throws -> String {
        try release(id, only: only, layout: layout) { envelope, i, headers in
            (resolver.route(for: envelope, recipient: i, headers: headers).description,
             resolver.tlsPolicy(for: envelope, recipient: i, headers: headers))
        }
    }
}
