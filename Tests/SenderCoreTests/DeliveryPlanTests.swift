import NIOCore
import PosternPolicy
import PosternSMTP
import PosternSpool
@testable import SenderCore
import Testing

/// How senderd splits a message into transactions and when it tries again.
@Suite struct DeliveryPlanTests {
    @Test func routesGroupByNextHopTLSAndHeaders() {
        var v = Verdict(scanned: 1, routes: [
            .init(recipient: 0, endpoint: "inet:10025@192.0.2.1"),
            .init(recipient: 1, endpoint: "inet:10025@192.0.2.1"),
            .init(recipient: 2, endpoint: "lmtp:local:/run/lmtp"),
            .init(recipient: 3, endpoint: "inet:10025@192.0.2.1"),
            .init(recipient: 4, status: .delivered, endpoint: "inet:10025@192.0.2.1"),
            .init(recipient: 5, endpoint: "inet:10025@CLIENT-IP"),
            .init(recipient: 6, endpoint: "nonsense"),
            .init(recipient: 7, endpoint: "nonsense"),   // parsed once: the failure is remembered
        ])
        v.recipientHeaders[1] = ["X-Virus: found"]
        v.recipientTLS[3] = .encrypt
        let plan = DeliveryPlan(verdict: v, defaultTLS: .may)
        let groups = Set(plan.transactions.values.map { $0 })
        #expect(groups == [[0], [1], [2], [3]])
        #expect(plan.badRoutes == [5, 6, 7])
    }

    /// senderd's one cache of parsed next hops gives every message's plan what parsing gives,
    /// a route that does not parse included, and holds no more than its limit.
    @Test func plansFromOneEndpointCache() throws {
        let cache = EndpointCache()
        let v = Verdict(scanned: 1, routes: [
            .init(recipient: 0, endpoint: "inet:10025@192.0.2.1"),
            .init(recipient: 1, endpoint: "lmtp:local:/run/lmtp"),
            .init(recipient: 2, endpoint: "nonsense"),
        ])
        for _ in 0..<2 {
            let plan = DeliveryPlan(verdict: v, defaultTLS: .may, endpoints: cache)
            #expect(Set(plan.transactions.keys.map(\.endpoint)) == [try Endpoint.parse("inet:10025@192.0.2.1"), try Endpoint.parse("lmtp:local:/run/lmtp")])
            #expect(plan.badRoutes == [2])
        }
        #expect(cache.count == 3)
        for k in 0..<(EndpointCache.limit + 10) { _ = cache.endpoint("inet:\(k + 1)@192.0.2.1") }
        #expect(cache.count <= EndpointCache.limit)
        #expect(cache.endpoint("inet:7@192.0.2.9") == (try Endpoint.parse("inet:7@192.0.2.9")))
    }

    @Test func aTransactionsHeadIsTheCommonFieldsThenItsOwn() {
        let out = DeliveryPlan.head(ByteBuffer(string: "X-Guard: 1\r\n"), extra: ["X-Virus: found"])
        #expect(String(buffer: out) == "X-Guard: 1\r\nX-Virus: found\r\n")
    }

    @Test(arguments: [(1, 60), (2, 600), (3, 3600), (9, 3600)])
    func retryIntervalsRepeatTheLast(attempts: Int, seconds: Int64) {
        #expect(DeliveryService.retryWait(after: attempts, intervals: [.seconds(60), .seconds(600), .seconds(3600)]) == .seconds(seconds))
    }

    @Test func withoutRetryIntervalsFiveMinutes() {
        #expect(DeliveryService.retryWait(after: 4, intervals: []) == .seconds(300))
    }

    @Test func delaysArePostfixs() {
        let e = Envelope(id: "D", arrival: 100)
        var v = Verdict(scanned: 101.5)
        v.attempts = 0
        #expect(DeliveryService.delays(e, verdict: v, started: 103, now: 104.25) == "delay=4.25, delays=0.0/1.5/1.5/1.25")
    }
}
