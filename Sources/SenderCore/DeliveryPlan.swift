import NIOConcurrencyHelpers
import NIOCore
import PosternPolicy
import PosternSMTP
import PosternSpool

/// Next hops as parsed, by the text of their routes: a message's recipients mostly share one
/// route, and one senderd's messages go to a few next hops, which are not parsed again for
/// every message. A route that does not parse is remembered too (as nil).
package final class EndpointCache: Sendable {
    private let parsed = NIOLockedValueBox<[String: Endpoint?]>([:])
    /// Entries kept at most; more, and the cache starts again.
    package static let limit = 1024

    package init() {}

    /// Entries held (for tests).
    package var count: Int { parsed.withLockedValue { $0.count } }

    package func endpoint(_ text: String) -> Endpoint? {
        if let known = parsed.withLockedValue({ $0[text] }) { return known }
        let endpoint = try? Endpoint.parse(text)
        parsed.withLockedValue {
            if $0.count >= Self.limit { $0.removeAll(keepingCapacity: true) }
            $0[text] = .some(endpoint)
        }
        return endpoint
    }
}

/// A message's pending routes grouped into transactions: one per next hop, TLS policy and set
/// of recipient-only header fields.
package struct DeliveryPlan {
    /// Route indices by transaction.
    package var transactions: [Transaction: [Int]] = [:]
    /// Routes whose endpoint cannot be used: scannerd writes only valid routes, so a damaged
    /// one must fail rather than retry for ever.
    package var badRoutes: [Int] = []

    package init(verdict: Verdict, defaultTLS: TLSPolicy, endpoints: EndpointCache = EndpointCache()) {
        for (k, r) in verdict.routes.enumerated() where r.status == .pending {
            let endpoint = endpoints.endpoint(r.endpoint)
            guard let ep = endpoint, !ep.hasMacros else {
                badRoutes.append(k)
                continue
            }
            transactions[Transaction(endpoint: ep, tls: verdict.recipientTLS[r.recipient] ?? defaultTLS,
                                     headers: verdict.recipientHeaders[r.recipient] ?? []), default: []].append(k)
        }
    }

    /// What one transaction sends before the message: the fields every copy gets, then its own.
    package static func head(_ common: ByteBuffer, extra: [String]) -> ByteBuffer {
        var out = common
        for h in extra { out.writeString(h + "\r\n") }
        return out
    }
}
