import NIOCore
import PosternPolicy
import PosternSMTP
import PosternSpool

/// A message's pending routes grouped into transactions: one per next hop, TLS policy and set
/// of recipient-only header fields.
package struct DeliveryPlan {
    /// Route indices by transaction.
    package var transactions: [Transaction: [Int]] = [:]
    /// Routes whose endpoint cannot be used: scannerd writes only valid routes, so a damaged
    /// one must fail rather than retry for ever.
    package var badRoutes: [Int] = []

    package init(verdict: Verdict, defaultTLS: TLSPolicy) {
        var parsed: [String: Endpoint?] = [:]   // recipients mostly share their route
        for (k, r) in verdict.routes.enumerated() where r.status == .pending {
            let endpoint: Endpoint?
            if let known = parsed[r.endpoint] {
                endpoint = known
            } else {
                endpoint = try? Endpoint.parse(r.endpoint)
                parsed[r.endpoint] = .some(endpoint)   // a route that does not parse is remembered too
            }
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
