import PosternPolicy
import PosternSMTP
import PosternSpool
@testable import SenderCore
import Testing

/// What one attempt owes: statuses, pending routes, and which DSN each route goes into
/// (RFC 3461 §5.2.2 relayed, `DelayWarningTime` once per route, failures and expiry).
@Suite struct AttemptTallyTests {
    static let arrival = 1_700_000_000.0

    static func envelope() throws -> Envelope {
        Envelope(id: "T", arrival: arrival, mailFrom: "s@example.org", recipients: [
            Recipient(address: "a@example.com", parameters: try MailParameters.parse("NOTIFY=SUCCESS")),
            Recipient(address: "b@example.com"),
            Recipient(address: "c@example.com", parameters: try MailParameters.parse("NOTIFY=FAILURE")),
        ])
    }

    static func sender(warn: Duration, lifetime: Duration = .seconds(86400)) -> SenderSection {
        var s = SenderSection()
        s.delayWarningTime = warn
        s.maxQueueLifetime = lifetime
        return s
    }

    static func tally(age: Double, warn: Duration = .seconds(3600), warned: [Int: Double] = [:],
                      lifetime: Duration = .seconds(86400)) throws -> AttemptTally {
        AttemptTally(original: try envelope(), errors: [:], warned: warned, sender: sender(warn: warn, lifetime: lifetime),
                     now: arrival + age)
    }

    static let ok = Reply(250, EnhancedStatus(2, 0, 0), "Ok: queued as X")
    static let later = "451 4.2.0 try later"
    static func route(_ rcpt: Int, _ endpoint: String = "inet:25@mx.example.net") -> Verdict.Route {
        .init(recipient: rcpt, endpoint: endpoint)
    }

    @Test func aNextHopWithoutDSNOwesARelayedReportForNotifySuccess() throws {
        var t = try Self.tally(age: 10)
        t.add(route: 0, Self.route(0), outcome: .delivered(Self.ok, nextHopReports: false))
        t.add(route: 1, Self.route(1), outcome: .delivered(Self.ok, nextHopReports: false))   // no NOTIFY: no success report
        let relayed = try #require(t.reports[.relayed])
        #expect(relayed.routes == [0])
        #expect(relayed.reported.first?.status == "2.0.0" && relayed.reported.first?.remote == "mx.example.net")
        #expect(relayed.reported.first?.diagnostic == "250 2.0.0 Ok: queued as X")
        #expect(t.statuses.map(\.status) == [.delivered, .delivered] && t.stillPending == 0)
        #expect(t.reports[.failed] == nil && t.reports[.delayed] == nil)
    }

    @Test func aNextHopWithDSNReportsItself() throws {
        var t = try Self.tally(age: 10)
        t.add(route: 0, Self.route(0), outcome: .delivered(Self.ok, nextHopReports: true))
        #expect(t.reports.isEmpty)
    }

    @Test func lmtpWithoutDSNIsDeliveredNotRelayed() throws {
        var t = try Self.tally(age: 10)
        t.add(route: 0, Self.route(0, "lmtp:local:/run/dovecot/lmtp"), outcome: .delivered(Self.ok, nextHopReports: false))
        let delivered = try #require(t.reports[.delivered])
        #expect(delivered.routes == [0] && delivered.reported.first?.remote == nil && t.reports[.relayed] == nil)
    }

    @Test func aDelayIsReportedOnceAfterTheWarningTime() throws {
        var early = try Self.tally(age: 3599)
        early.add(route: 1, Self.route(1), outcome: .deferred(Self.later))
        #expect(early.reports.isEmpty && early.stillPending == 1 && early.errors[1]?.text == Self.later)

        var due = try Self.tally(age: 3600)
        due.add(route: 0, Self.route(0), outcome: .deferred(Self.later))   // NOTIFY=SUCCESS only: no delay report
        due.add(route: 1, Self.route(1), outcome: .deferred(Self.later))
        due.add(route: 2, Self.route(2), outcome: .deferred("connection refused"))   // NOTIFY=FAILURE only
        let delayed = try #require(due.reports[.delayed])
        #expect(delayed.routes == [1] && delayed.reported.first?.status == "4.2.0")
        #expect(delayed.retryUntil == Self.arrival + 86400)
        #expect(due.stillPending == 3 && due.statuses.isEmpty)

        var warnedBefore = try Self.tally(age: 7200, warned: [1: Self.arrival + 3600])
        warnedBefore.add(route: 1, Self.route(1), outcome: .deferred(Self.later))
        #expect(warnedBefore.reports.isEmpty && warnedBefore.warned == [1: Self.arrival + 3600])
    }

    @Test func noDelayReportWhenTheWarningIsOff() throws {
        var t = try Self.tally(age: 4 * 86400, warn: .zero, lifetime: .seconds(5 * 86400))
        t.add(route: 1, Self.route(1), outcome: .deferred(Self.later))
        #expect(t.reports.isEmpty && t.stillPending == 1)
    }

    @Test func refusedAndExpiredRecipientsFail() throws {
        var t = try Self.tally(age: 86401)
        t.add(route: 1, Self.route(1), outcome: .deferred("connection refused"))
        t.add(route: 2, Self.route(2, "local:/run/x.sock"), outcome: .failed(Reply(550, EnhancedStatus(5, 1, 1), "unknown")))
        let failed = try #require(t.reports[.failed])
        #expect(failed.routes == [1, 2])
        #expect(failed.reported.map(\.status) == ["4.4.7", "5.1.1"])
        #expect(failed.reported.map(\.diagnostic) == ["delivery time expired: connection refused", "550 5.1.1 unknown"])
        #expect(failed.reported.map(\.remote) == ["mx.example.net", nil])
        #expect(t.statuses.map(\.status) == [.failed, .failed] && t.reports[.delayed] == nil)
    }

    @Test(arguments: [("inet:10025@127.0.0.1", "127.0.0.1", false), ("lmtp:inet:24@[::1]", "::1", true),
                      ("lmtp:local:/run/lmtp", nil, true), ("garbage", nil, false)] as [(String, String?, Bool)])
    func nextHopNames(route: String, host: String?, lmtp: Bool) {
        let hop = AttemptTally.nextHop(route)
        #expect(hop.host == host && hop.lmtp == lmtp)
    }
}
