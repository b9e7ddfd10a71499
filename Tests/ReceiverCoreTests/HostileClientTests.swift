import NIOCore
import PosternPolicy
import PosternSMTP
@testable import ReceiverCore
import Testing

/// What receiverd does to clients that hold sessions without using them, come too often, or
/// pipeline where they must wait (issue 12): the state machine with a fake clock, and the
/// counters it is fed.
@Suite struct HostileClientTests {
    typealias M = ReceiveStateMachine
    typealias T = ReceiveStateMachineTests
    static let timeout = Reply(421, EnhancedStatus(4, 4, 2), "mx.test Error: timeout exceeded")
    static let synchronization = Reply(554, EnhancedStatus(5, 5, 0), "Error: SMTP protocol synchronization")
    static let ok = Reply(250, EnhancedStatus(2, 0, 0), "Ok")

    // MARK: - the per-line deadline

    /// The attack of issue 12: one byte of a command line every 5 s with CommandTimeout 10 s.
    /// Each byte used to start the clock again; now the line is due 10 s after the greeting.
    @Test func aTrickledCommandLineIsCutOffAtItsDeadline() throws {
        var m = try T.machine("[Receiver]\nCommandTimeout = 10s")
        var cut: Double?
        for tick in stride(from: 1.0, through: 60, by: 1) where cut == nil {
            if tick.truncatingRemainder(dividingBy: 5) == 0 {
                let read = m.read(now: T.at(tick))   // one byte, never a whole line
                #expect(read)
            }
            if m.tick(now: T.at(tick + 0.5)) == .close([Self.timeout], why: .timeout) { cut = tick + 0.5 }
        }
        #expect(cut == 10.5)
    }

    /// A line that completes in time resets the deadline; its bytes may come as they like.
    @Test func eachWholeLineHasItsOwnCommandTimeout() throws {
        var m = try T.machine("[Receiver]\nCommandTimeout = 10s")
        for second in [3.0, 6.0, 9.0] { _ = m.read(now: T.at(second)) }
        #expect(m.commandLine(T.line("NOOP")) == .reply([Self.ok]), "the line was complete at 9 s")
        #expect(m.tick(now: T.at(18.5)) == .none)
        _ = m.read(now: T.at(15))
        #expect(m.tick(now: T.at(19.5)) == .close([Self.timeout], why: .timeout), "due 10 s after the NOOP, whatever came since")
    }

    /// After a reply to end of data the next line is due from then, not from the DATA line.
    @Test func theDeadlineStartsAgainAfterAMessage() throws {
        var m = try T.machine("[Receiver]\nCommandTimeout = 10s\nDataTimeout = 60s")
        T.inData(&m)
        for second in stride(from: 5.0, through: 40, by: 5) {
            _ = m.read(now: T.at(second))
            m.dataRead(10_000)
            #expect(m.tick(now: T.at(second + 0.5)) == .none, "DataTimeout and the data rate apply inside DATA")
        }
        guard case .refuse = m.endOfData(.init(sawBareNewline: true)) else { Issue.record("not refused"); return }
        #expect(m.tick(now: T.at(49)) == .none)
        #expect(m.tick(now: T.at(50.5)) == .close([Self.timeout], why: .timeout))
    }

    // MARK: - stress mode

    @Test func stressShortensTheTimeouts() throws {
        var m = try T.machine("[Receiver]\nCommandTimeout = 5m\nDataTimeout = 5m")
        #expect(m.tick(now: T.at(11), stressed: false) == .none)
        #expect(m.tick(now: T.at(11), stressed: true) == .close([Self.timeout], why: .timeout), "StressCommandTimeout is 10 s")
        m = try T.machine("[Receiver]\nStressDataTimeout = 20s")
        T.inData(&m)
        m.dataRead(1_000_000)
        #expect(m.tick(now: T.at(15), stressed: true) == .none)
        #expect(m.tick(now: T.at(21), stressed: true) == .close([Self.timeout], why: .timeout))
    }

    @Test func aStressTimeoutLongerThanTheNormalOneIsNotUsed() throws {
        let m = try T.machine("[Receiver]\nCommandTimeout = 5s\nStressCommandTimeout = 1m")
        #expect(m.commandTimeout(stressed: true) == .seconds(5))
    }

    @Test func stressBeginsAtTheThresholdAndEndsBelowNineTenthsOfIt() {
        var g = StressGauge()
        #expect(StressGauge.level(maxSessions: 20, threshold: 80) == 16)
        let changes = [1, 15, 16, 17, 15, 14, 15, 16].map { g.update(sessions: $0, maxSessions: 20, threshold: 80) }
        #expect(changes == [nil, nil, .entered, nil, nil, .left, nil, .entered])
        #expect(g.update(sessions: 20, maxSessions: 20, threshold: 0) == .left, "0% turns it off")
        #expect(g.update(sessions: 20, maxSessions: 20, threshold: 0) == nil)
        var tiny = StressGauge()
        #expect(tiny.update(sessions: 1, maxSessions: 1, threshold: 1) == .entered)
        #expect(tiny.update(sessions: 0, maxSessions: 1, threshold: 1) == .left)
    }

    // MARK: - limits per client address

    static func connect(_ config: String, _ ip: String, _ count: ClientCounter.Count) throws -> M.Action {
        let cfg = try PosternConfig.parse("[General]\nHostname = mx.test\n[Receiver]\nProtectedNetworks = 0.0.0.0/0\n" + config, path: "t")
        var m = M(config: cfg, lmtp: false, tlsAvailable: false, now: T.t0)
        return m.connected(clientIP: ip, clientPort: 1, serverIP: "", serverPort: 0, sessions: 1, fromClient: count,
                           shuttingDown: false, now: T.t0)
    }

    @Test func overItsAddressLimitsAClientIsTurnedAway() throws {
        let limits = "ClientConnectionLimit = 2\nClientConnectionRateLimit = 5\n"
        #expect(try Self.connect(limits, "192.0.2.9", .init(sessions: 2, connections: 5)) == .reply([Reply(220, nil, "mx.test ESMTP Postern")]))
        #expect(try Self.connect(limits, "192.0.2.9", .init(sessions: 3, connections: 3))
            == .close([Reply(421, EnhancedStatus(4, 7, 0), "mx.test Error: too many connections from 192.0.2.9")], why: .clientConnectionLimit(client: "192.0.2.9")))
        #expect(try Self.connect(limits, "192.0.2.9", .init(sessions: 1, connections: 6))
            == .close([Reply(421, EnhancedStatus(4, 7, 0), "mx.test Error: too many connections from 192.0.2.9")], why: .clientConnectionRate(client: "192.0.2.9")))
    }

    @Test func theLimitsAreOffByDefaultAndSpareLimitExempt() throws {
        let many = ClientCounter.Count(sessions: 500, connections: 10_000)
        guard case .reply = try Self.connect("", "192.0.2.9", many) else { Issue.record("limited by default"); return }
        let limits = "ClientConnectionLimit = 1\nClientConnectionRateLimit = 1\n"
        guard case .reply = try Self.connect(limits, "127.0.0.1", many) else { Issue.record("loopback limited"); return }
        guard case .reply = try Self.connect(limits + "LimitExempt = 192.0.2.0/24\n", "192.0.2.9", many) else { Issue.record("exempt limited"); return }
        guard case .close = try Self.connect(limits + "LimitExempt = 192.0.2.0/24\n", "127.0.0.1", many) else { Issue.record("not limited"); return }
    }

    @Test func theCounterCountsSessionsAndConnectionsPerUnit() {
        var c = ClientCounter()
        let unit = TimeAmount.seconds(60)
        #expect(c.connect("192.0.2.1", now: T.at(0), unit: unit) == .init(sessions: 1, connections: 1))
        #expect(c.connect("192.0.2.1", now: T.at(1), unit: unit) == .init(sessions: 2, connections: 2))
        #expect(c.connect("192.0.2.2", now: T.at(2), unit: unit) == .init(sessions: 1, connections: 1))
        c.disconnect("192.0.2.1")
        c.disconnect("192.0.2.1")
        #expect(c.connect("192.0.2.1", now: T.at(30), unit: unit) == .init(sessions: 1, connections: 3), "the rate counts closed ones")
        #expect(c.connect("192.0.2.1", now: T.at(61), unit: unit) == .init(sessions: 2, connections: 1), "a new unit")
        c.disconnect("192.0.2.2")
        #expect(c.addresses == 2)
        _ = c.connect("192.0.2.3", now: T.at(200), unit: unit)
        #expect(c.addresses == 2, "192.0.2.2 has no session and its unit is over: forgotten")
    }

    // MARK: - pipelining

    /// The attack of issue 12: MAIL, DATA without RCPT and the message in one write. The text
    /// used to be read as commands (its RCPT joined the transaction, its DATA got 354).
    @Test func textBehindARefusedDATAEndsTheSession() throws {
        var m = try T.machine()
        _ = m.commandLine(T.line("EHLO c"))
        #expect(m.commandLine(T.line("MAIL FROM:<a@example.com>"), pipelined: true) == .reply([Reply(250, EnhancedStatus(2, 1, 0), "Ok")]))
        #expect(m.commandLine(T.line("DATA"), pipelined: true)
            == .close([Reply(554, EnhancedStatus(5, 5, 1), "Error: no valid recipients"), Self.synchronization], why: .improperPipelining))
        #expect(m.state == .closing)
        #expect(m.next() == .stop, "nothing behind it is read")
    }

    @Test(arguments: ["DATA", "DATA extra", "BDAT x"])
    func anyDATAOrBDATThatIsNotTakenEndsTheSessionWhenMoreWasSent(_ line: String) throws {
        var m = try T.machine()
        guard case .close(_, .improperPipelining?) = m.commandLine(T.line(line), pipelined: true) else { Issue.record("not closed"); return }
        var alone = try T.machine()
        guard case .reply = alone.commandLine(T.line(line), pipelined: false) else { Issue.record("a refusal on its own closes"); return }
    }

    /// A DATA that would be taken, with the message sent before the 354: no 354 and no queue
    /// file; the client hears why and is cut off.
    @Test func textBehindADATAThatWouldBeTakenEndsTheSession() throws {
        var m = try T.machine()
        T.transaction(&m)
        #expect(m.commandLine(T.line("DATA"), pipelined: true) == .close([Self.synchronization], why: .improperPipelining))
        #expect(m.next() == .stop)
        var waited = try T.machine()
        T.transaction(&waited)
        #expect(waited.commandLine(T.line("DATA")) == .openMessage)
        #expect(waited.openFailed(.diskFull) == .reply([Reply(452, EnhancedStatus(4, 3, 1), "Error: insufficient system storage")]))
    }

    /// EHLO, HELO and LHLO end a group: the client cannot know it may pipeline before their
    /// reply. It gets that reply, then 554 and the close; so do VRFY, EXPN and NOOP.
    @Test(arguments: [("EHLO c", false), ("HELO c", false), ("LHLO c", true), ("EHLO", false)])
    func commandsBehindTheGreetingCommandEndTheSession(_ hello: String, _ lmtp: Bool) throws {
        var m = try T.machine(lmtp: lmtp)
        guard case .close(let replies, .improperPipelining?) = m.commandLine(T.line(hello), pipelined: true) else {
            Issue.record("\(hello) with more behind it goes on"); return
        }
        #expect(replies.count == 2 && replies.last == Self.synchronization)
        #expect(m.next() == .stop, "nothing behind it is read")
        var alone = try T.machine(lmtp: lmtp)
        guard case .reply = alone.commandLine(T.line(hello)) else { Issue.record("\(hello) on its own closes"); return }
    }

    @Test(arguments: ["NOOP", "VRFY root", "EXPN staff"])
    func commandsBehindAStateCommandEndTheSession(_ line: String) throws {
        var m = try T.machine()
        _ = m.commandLine(T.line("EHLO c"))
        guard case .close(let replies, .improperPipelining?) = m.commandLine(T.line(line), pipelined: true) else {
            Issue.record("\(line) with more behind it goes on"); return
        }
        #expect(replies.last == Self.synchronization)
    }

    @Test func moreBehindABDATWithoutRecipientsEndsTheSession() throws {
        var m = try T.machine()
        _ = m.commandLine(T.line("EHLO c"))
        _ = m.commandLine(T.line("MAIL FROM:<a@example.com>"))
        #expect(m.commandLine(T.line("BDAT 4 LAST"), pipelined: true) == .none)
        #expect(m.chunkRead(4, pipelined: true) == .close([SMTPSession.chunkWithoutTransaction, Self.synchronization], why: .improperPipelining))
    }

    /// What PIPELINING allows (RFC 2920): MAIL, RCPT, RSET and DATA in one write after EHLO's
    /// reply, the message after 354, commands behind the end of data, chunks behind BDAT.
    @Test func legitimatePipeliningGoesOn() throws {
        var m = try T.machine()
        #expect(m.commandLine(T.line("EHLO c")) != .none)
        #expect(m.commandLine(T.line("MAIL FROM:<x@example.com>"), pipelined: true) == .reply([Reply(250, EnhancedStatus(2, 1, 0), "Ok")]))
        #expect(m.commandLine(T.line("RSET"), pipelined: true) == .reply([Reply(250, EnhancedStatus(2, 0, 0), "Ok")]))
        #expect(m.commandLine(T.line("MAIL FROM:<a@example.com>"), pipelined: true) == .reply([Reply(250, EnhancedStatus(2, 1, 0), "Ok")]))
        #expect(m.commandLine(T.line("RCPT TO:<no-domain>"), pipelined: true) == .reply([Reply(501, EnhancedStatus(5, 1, 3), "Bad address syntax: address must be fully qualified")]))
        #expect(m.commandLine(T.line("RCPT TO:<b@example.org>"), pipelined: true) == .reply([Reply(250, EnhancedStatus(2, 1, 5), "Ok")]))
        #expect(m.commandLine(T.line("DATA")) == .openMessage)
        #expect(m.messageOpened() == .reply([SMTPSession.startMailInput]))
        var chunks = try T.machine()
        T.transaction(&chunks)
        #expect(chunks.commandLine(T.line("BDAT 3"), pipelined: true) == .openMessage)
        _ = chunks.messageOpened()
        #expect(chunks.chunkRead(3, pipelined: true) == .reply([SMTPSession.chunkReceived(3)]), "chunks may be pipelined")
        var quit = try T.machine()
        _ = quit.commandLine(T.line("EHLO c"))
        guard case .close(_, nil) = quit.commandLine(T.line("QUIT"), pipelined: true) else { Issue.record("QUIT with more behind it"); return }
    }
}
