import NIOCore
import PosternPolicy
import PosternSMTP
import PosternSpool
@testable import ReceiverCore
import Testing

/// The receive state machine on its own: events in, actions out, with a fake clock.
@Suite struct ReceiveStateMachineTests {
    typealias M = ReceiveStateMachine
    static let t0 = NIODeadline.uptimeNanoseconds(1_000_000_000_000)

    static func at(_ seconds: Double) -> NIODeadline { t0 + .nanoseconds(Int64(seconds * 1e9)) }

    static func machine(_ config: String = "", lmtp: Bool = false) throws -> M {
        let cfg = try PosternConfig.parse("[General]\nHostname = mx.test\n" + config, path: "t")
        var m = M(config: cfg, lmtp: lmtp, tlsAvailable: false, now: t0)
        #expect(m.connected(clientIP: "127.0.0.1", clientPort: 4000, serverIP: "127.0.0.1", serverPort: 10024,
                            sessions: 1, shuttingDown: false, now: t0) == .reply([m.session.greeting]))
        return m
    }

    static func line(_ text: String) -> FramedLine {
        var b = ByteBuffer(string: text + "\r\n")
        var f = LineFramer(limit: SMTPDefaults.maxBufferedLine)
        return f.next(from: &b)!
    }

    /// The greeting, MAIL and one RCPT per address.
    static func transaction(_ m: inout M, hello: String = "EHLO c", rcpts: [String] = ["b@example.org"]) {
        _ = m.commandLine(line(hello))
        _ = m.commandLine(line("MAIL FROM:<a@example.com>"))
        for r in rcpts { _ = m.commandLine(line("RCPT TO:<\(r)>")) }
    }

    /// EHLO, MAIL and one RCPT per address, then DATA up to the open file.
    static func inData(_ m: inout M, rcpts: [String] = ["b@example.org"]) {
        transaction(&m, rcpts: rcpts)
        #expect(m.commandLine(line("DATA")) == .openMessage)
        #expect(m.messageOpened() == .reply([SMTPSession.startMailInput]))
        #expect(m.state == .data)
    }

    static func envelope(_ m: M) -> Envelope { m.session.envelope(size: 10) }

    static func q(_ m: M) -> String { m.session.queueID }

    // MARK: - connecting

    @Test func clientsOutsideProtectedNetworksAndOverTheLimitAreTurnedAway() throws {
        let cfg = try PosternConfig.parse("[General]\nHostname = mx.test\n[Receiver]\nMaxSessions = 2", path: "t")
        var m = M(config: cfg, lmtp: false, tlsAvailable: false, now: Self.t0)
        #expect(m.connected(clientIP: "192.0.2.9", clientPort: 1, serverIP: "", serverPort: 0, sessions: 1, shuttingDown: false, now: Self.t0)
            == .close([Reply(554, EnhancedStatus(5, 7, 1), "Access denied: 192.0.2.9 is not in ProtectedNetworks")], why: .notProtected(client: "192.0.2.9")))
        m = M(config: cfg, lmtp: false, tlsAvailable: false, now: Self.t0)
        #expect(m.connected(clientIP: "127.0.0.1", clientPort: 1, serverIP: "", serverPort: 0, sessions: 3, shuttingDown: false, now: Self.t0)
            == .close([Reply(421, EnhancedStatus(4, 7, 0), "mx.test Error: too many connections")], why: .tooManyConnections))
        m = M(config: cfg, lmtp: false, tlsAvailable: false, now: Self.t0)
        #expect(m.connected(clientIP: "127.0.0.1", clientPort: 1, serverIP: "", serverPort: 0, sessions: 1, shuttingDown: true, now: Self.t0)
            == .close([Reply(421, EnhancedStatus(4, 3, 2), "mx.test Service shutting down, closing channel")], why: .shuttingDown))
        let read = m.read(now: Self.t0)
        #expect(m.state == .closing && !read, "nothing is read after a close")
    }

    @Test func softBounceMakesARefusedClient454() throws {
        let cfg = try PosternConfig.parse("[Receiver]\nSoftBounce = yes\nProtectedNetworks = 10.0.0.0/8", path: "t")
        var m = M(config: cfg, lmtp: false, tlsAvailable: false, now: Self.t0)
        guard case .close(let replies, _) = m.connected(clientIP: "127.0.0.1", clientPort: 1, serverIP: "", serverPort: 0, sessions: 1,
                                                        shuttingDown: false, now: Self.t0) else { Issue.record("not closed"); return }
        #expect(replies.map(\.description) == ["454 4.7.1 Access denied: 127.0.0.1 is not in ProtectedNetworks"])
    }

    // MARK: - the clock

    /// Silence between commands: CommandTimeout from the last whole line.
    @Test func commandTimeoutCountsFromTheLastCommandLine() throws {
        var m = try Self.machine("[Receiver]\nCommandTimeout = 30s")
        #expect(m.tick(now: Self.at(29)) == .none)
        let read = m.read(now: Self.at(29))
        #expect(read)
        #expect(m.commandLine(Self.line("NOOP")) == .reply([Reply(250, EnhancedStatus(2, 0, 0), "Ok")]))
        #expect(m.tick(now: Self.at(58)) == .none)
        #expect(m.tick(now: Self.at(59.5)) == .close([Reply(421, EnhancedStatus(4, 4, 2), "mx.test Error: timeout exceeded")], why: .timeout))
        #expect(m.state == .closing)
    }

    @Test func insideDataTheDataTimeoutApplies() throws {
        var m = try Self.machine("[Receiver]\nCommandTimeout = 10s\nDataTimeout = 60s")
        Self.inData(&m)
        m.dataRead(1_000_000)   // plenty for the data rate
        #expect(m.tick(now: Self.at(30)) == .none, "CommandTimeout does not apply inside DATA")
        #expect(m.tick(now: Self.at(61)) == .close([Reply(421, EnhancedStatus(4, 4, 2), "mx.test Error: timeout exceeded")], why: .timeout))
    }

    /// Postfix's smtpd_min_data_rate: DataTimeout plus a second per 500 octets sent.
    @Test(arguments: [(100, 2), (400, 6)])
    func aTrickleBelowTheMinimumRateIsCutOff(_ perSecond: Int, _ cutAfter: Int) throws {
        var m = try Self.machine("[Receiver]\nDataTimeout = 2s")
        Self.inData(&m)
        var cut: Int?
        for second in 1...60 where cut == nil {
            let read = m.read(now: Self.at(Double(second)))
            #expect(read)
            m.dataRead(perSecond)
            if case .close(_, .timeout?) = m.tick(now: Self.at(Double(second) + 0.5)) { cut = second }
        }
        #expect(cut == cutAfter)
    }

    @Test func aClientAtTheMinimumRateIsNotCutOff() throws {
        var m = try Self.machine("[Receiver]\nDataTimeout = 2s")
        Self.inData(&m)
        for second in 1...120 {
            let read = m.read(now: Self.at(Double(second)))
            #expect(read)
            m.dataRead(SMTPDefaults.minDataRate)
            #expect(m.tick(now: Self.at(Double(second) + 0.5)) == .none)
        }
    }

    /// While the session waits on the disk or scannerd the client's silence does not count,
    /// and once the reply is out it has its whole CommandTimeout again.
    @Test func waitingIsNotTheClientsSilence() throws {
        var m = try Self.machine("[Receiver]\nCommandTimeout = 30s")
        Self.inData(&m)
        #expect(m.endOfData(.init(size: 10)) == .writeEnvelope)
        _ = m.envelopeWritten(Self.envelope(m))
        #expect(m.tick(now: Self.at(600)) == .none)
        guard case .finish = m.committed() else { Issue.record("no finish"); return }
        #expect(m.state == .command)
        #expect(m.tick(now: Self.at(620)) == .none)
        #expect(m.tick(now: Self.at(631)) != .none)
    }

    // MARK: - end of data

    @Test(arguments: [
        (M.DataSummary(sawBareNewline: true), "550 5.5.2 Error: message contains bare <CR> or <LF> (RFC 5321 section 2.3.8)"),
        (M.DataSummary(longestLine: 1001), "550 5.5.2 Error: message has a line longer than 1000 octets"),
        (M.DataSummary(size: 10_485_761), "552 5.3.4 Error: message file too big"),
        (M.DataSummary(receivedHeaders: 50), "554 5.4.6 Error: too many hops (mail forwarding loop)"),
        (M.DataSummary(writeError: .diskFull), "452 4.3.1 Error: insufficient system storage"),
        (M.DataSummary(writeError: .queueWriteError), "451 4.3.0 Error: queue file write error"),
    ])
    func whatTheDataShowsRefusesTheMessage(_ summary: M.DataSummary, _ expected: String) throws {
        var m = try Self.machine()
        Self.inData(&m, rcpts: ["b@example.org", "c@example.org"])
        guard case .refuse(let ending) = m.endOfData(summary) else { Issue.record("not refused"); return }
        #expect(ending.replies.map(\.description) == [expected], "one reply over SMTP")
        #expect(ending.recipients.map(\.address) == ["b@example.org", "c@example.org"] && ending.mailFrom == "a@example.com")
        #expect(m.state == .command && !m.session.inTransaction)
    }

    @Test func overLMTPEachRecipientGetsTheRefusal() throws {
        var m = try Self.machine(lmtp: true)
        Self.transaction(&m, hello: "LHLO c", rcpts: ["b@example.org", "c@example.org"])
        _ = m.commandLine(Self.line("DATA"))
        _ = m.messageOpened()
        guard case .refuse(let ending) = m.endOfData(.init(sawBareNewline: true)) else { Issue.record("not refused"); return }
        #expect(ending.replies.map(\.text) == [
            "<b@example.org> Error: message contains bare <CR> or <LF> (RFC 5321 section 2.3.8)",
            "<c@example.org> Error: message contains bare <CR> or <LF> (RFC 5321 section 2.3.8)",
        ])
    }

    @Test func softBounceAtEndOfData() throws {
        var m = try Self.machine("[Receiver]\nSoftBounce = yes")
        Self.inData(&m)
        guard case .refuse(let ending) = m.endOfData(.init(receivedHeaders: 99)) else { Issue.record("not refused"); return }
        #expect(ending.replies.map(\.description) == ["454 4.4.6 Error: too many hops (mail forwarding loop)"])
    }

    @Test func asynchronousModeCommitsToScan() throws {
        var m = try Self.machine()
        Self.inData(&m)
        let id = Self.q(m)
        #expect(m.endOfData(.init(size: 10)) == .writeEnvelope)
        #expect(m.envelopeWritten(Self.envelope(m)) == .commit(.scan, verdict: nil))
        #expect(m.committed() == .finish(.init(id: id, outcomes: [.queued(id: id)], replies: [Reply(250, EnhancedStatus(2, 0, 0), "Ok: queued as \(id)")],
                                               recipients: [Recipient(address: "b@example.org")], mailFrom: "a@example.com")))
    }

    @Test func aLoopIsHeld() throws {
        var m = try Self.machine("[Scanner]\nBeforeQueueFilters = HeadersFilter")
        Self.inData(&m)
        _ = m.endOfData(.init(size: 10))
        var e = Self.envelope(m)
        e.holdReason = "mail loop"
        #expect(m.envelopeWritten(e) == .commit(.hold, verdict: nil), "no scan for a held message")
    }

    @Test func aFailedCommitLeavesTheMessageWithTheClient() throws {
        var m = try Self.machine()
        Self.inData(&m)
        _ = m.endOfData(.init(size: 10))
        _ = m.envelopeWritten(Self.envelope(m))
        guard case .refuse(let ending) = m.commitFailed(.diskFull) else { Issue.record("not refused"); return }
        #expect(ending.replies.map(\.description) == ["452 4.3.1 Error: insufficient system storage"])
        #expect(ending.recipients.map(\.address) == ["b@example.org"])
        #expect(m.state == .command)
    }

    @Test func aWriteErrorOnTheEnvelope() throws {
        var m = try Self.machine()
        Self.inData(&m)
        _ = m.endOfData(.init(size: 10))
        guard case .refuse(let ending) = m.writeFailed(.queueWriteError) else { Issue.record("not refused"); return }
        #expect(ending.replies.map(\.code) == [451])
    }

    // MARK: - synchronous mode

    static let sync = "[Scanner]\nBeforeQueueFilters = HeadersFilter"

    static func scanned(rcpts: [String] = ["b@example.org"], config: String = sync, lmtp: Bool = false) throws -> M {
        var m = try machine(config, lmtp: lmtp)
        if lmtp {
            transaction(&m, hello: "LHLO c", rcpts: rcpts)
            _ = m.commandLine(line("DATA"))
            _ = m.messageOpened()
        } else {
            inData(&m, rcpts: rcpts)
        }
        _ = m.endOfData(.init(size: 10))
        #expect(m.envelopeWritten(envelope(m)) == .askScanner)
        return m
    }

    static func verdict(_ statuses: [RecipientStatus], afterQueue: Bool = false) -> Verdict {
        var v = Verdict(scanned: 1, routes: statuses.enumerated().map { .init(recipient: $0.offset, status: $0.element, endpoint: "inet:25@h") })
        v.afterQueuePending = afterQueue
        return v
    }

    @Test func aVerdictThatLeavesScannerdNothingGoesStraightToOutgoing() throws {
        var m = try Self.scanned()
        let id = Self.q(m)
        let v = Self.verdict([.pending])
        #expect(m.verdict(.verdict(outcomes: [.queued(id: id)], verdict: v)) == .commit(.outgoing, verdict: v))
        guard case .finish(let ending) = m.committed() else { Issue.record("no finish"); return }
        #expect(ending.replies.map(\.description) == ["250 2.0.0 Ok: queued as \(id)"])
    }

    @Test(arguments: [true, false])
    func workLeftForScannerdGoesToScan(afterQueue: Bool) throws {
        var m = try Self.scanned(rcpts: ["b@example.org", "c@example.org"])
        let id = Self.q(m)
        let v = Self.verdict([.pending, afterQueue ? .pending : .blocked], afterQueue: afterQueue)
        #expect(m.verdict(.verdict(outcomes: [.queued(id: id), .queued(id: id)], verdict: v)) == .commit(.scan, verdict: v))
    }

    @Test func aRefusalCommitsNothing() throws {
        var m = try Self.scanned()
        guard case .refuse(let ending) = m.verdict(.verdict(outcomes: [.contentRejected(reason: "clamav: infected: Eicar")],
                                                            verdict: Self.verdict([.dropped]))) else { Issue.record("not refused"); return }
        #expect(ending.replies.map(\.description) == ["550 5.7.1 Message rejected: clamav: infected: Eicar"])
        #expect(!ending.unscanned && m.state == .command)
    }

    /// No answer in ScanTimeout (or the connection broke): ProcessingErrors, never a silent pass.
    @Test func noAnswerMeansProcessingErrors() throws {
        var m = try Self.scanned()
        guard case .refuse(let ending) = m.verdict(nil) else { Issue.record("not refused"); return }
        #expect(ending.replies.map(\.description) == ["451 4.7.1 Try again later: content scanner not available"])
        #expect(ending.unscanned)
    }

    @Test func processingErrorsPassCommitsWithoutAVerdict() throws {
        var m = try Self.scanned(config: Self.sync + "\n[Receiver]\nProcessingErrors = pass")
        let id = Self.q(m)
        #expect(m.verdict(.unscanned(reason: "internal error")) == .commit(.scan, verdict: nil), "scannerd scans it later with both lists")
        guard case .finish(let ending) = m.committed() else { Issue.record("no finish"); return }
        #expect(ending.outcomes == [.queued(id: id)] && ending.unscanned)
    }

    /// A verdict with the wrong number of outcomes is no verdict.
    @Test func aVerdictThatDoesNotFitTheEnvelopeIsNoVerdict() throws {
        var m = try Self.scanned(rcpts: ["b@example.org", "c@example.org"])
        guard case .refuse(let ending) = m.verdict(.verdict(outcomes: [.queued(id: Self.q(m))], verdict: Self.verdict([.pending])))
        else { Issue.record("not refused"); return }
        #expect(ending.unscanned && ending.replies.map(\.code) == [451])
    }

    /// Refused for one, discarded for the other (RecipientFate.oneReply): one 550 over SMTP,
    /// and nothing is committed, since nobody would get the message.
    @Test func anSMTPRefusalBesideADiscardCommitsNothing() throws {
        var m = try Self.scanned(rcpts: ["b@example.org", "c@example.org"])
        let id = Self.q(m)
        let answer = m.verdict(.verdict(outcomes: [.queued(id: id), .contentRejected(reason: "clamav: infected: Eicar")],
                                        verdict: Self.verdict([.dropped, .dropped])))
        guard case .refuse(let ending) = answer else { Issue.record("not refused"); return }
        #expect(!ending.unscanned)
        #expect(ending.replies.map(\.description) == ["550 5.7.1 Message rejected: clamav: infected: Eicar"])
    }

    @Test func overLMTPEachRecipientGetsItsOutcome() throws {
        var m = try Self.scanned(rcpts: ["b@example.org", "c@example.org"], lmtp: true)
        let id = Self.q(m)
        let v = Self.verdict([.pending, .dropped])
        #expect(m.verdict(.verdict(outcomes: [.queued(id: id), .contentTempfailed(reason: "later")], verdict: v)) == .commit(.outgoing, verdict: v))
        guard case .finish(let ending) = m.committed() else { Issue.record("no finish"); return }
        #expect(ending.replies.map(\.description) == ["250 2.0.0 <b@example.org> Ok: queued as \(id)",
                                                       "451 4.7.1 <c@example.org> Try again later: later"])
    }

    /// Over LMTP too, a split without a verdict is a 451 for every recipient: the file would
    /// be queued without a verdict, and its later scan would deliver to one told 550.
    @Test func overLMTPAnUnscannedSplitIsRetriedForAll() throws {
        let rules = "\n[Receiver]\nProcessingErrors = pass\n[Rules]\nto:c@example.org cont ProcessingErrors = reject"
        var m = try Self.scanned(rcpts: ["b@example.org", "c@example.org"], config: Self.sync + rules, lmtp: true)
        guard case .refuse(let ending) = m.verdict(nil) else { Issue.record("not refused"); return }
        #expect(ending.unscanned)
        #expect(ending.replies.map(\.description) == ["451 4.7.1 <b@example.org> Try again later: content scanner not available",
                                                       "451 4.7.1 <c@example.org> Try again later: content scanner not available"])
    }

    @Test func aClientThatLeftDuringTheScanKeepsTheMessage() throws {
        var m = try Self.scanned()
        m.closed()
        #expect(m.verdict(.verdict(outcomes: [.queued(id: Self.q(m))], verdict: Self.verdict([.pending]))) == .abortMessage([]))
    }

    // MARK: - BDAT, shutdown, half-close, errors

    @Test func chunksAreAnsweredAndTheLastEndsTheMessage() throws {
        var m = try Self.machine()
        Self.transaction(&m)
        #expect(m.commandLine(Self.line("BDAT 20")) == .openMessage)
        #expect(m.messageOpened() == .none)
        #expect(m.next() == .chunk(20))
        #expect(m.chunkRead(15) == .none)
        #expect(m.chunkRead(5) == .reply([SMTPSession.chunkReceived(20)]))
        #expect(m.commandLine(Self.line("BDAT 6 LAST")) == .none, "the file is open already")
        #expect(m.chunkRead(6) == .endOfChunks)
        #expect(m.endOfData(.init(size: 26)) == .writeEnvelope)
    }

    @Test func aBDATTransactionWithoutItsFileIsRefusedAtLAST() throws {
        var m = try Self.machine()
        Self.transaction(&m)
        #expect(m.commandLine(Self.line("BDAT 3")) == .openMessage)
        #expect(m.openFailed(.diskFull) == .none)
        #expect(m.chunkRead(3) == .reply([Reply(452, EnhancedStatus(4, 3, 1), "Error: insufficient system storage")]))
        _ = m.commandLine(Self.line("BDAT 2 LAST"))
        guard case .refuse(let ending) = m.chunkRead(2) else { Issue.record("not refused"); return }
        #expect(ending.replies.map(\.code) == [452])
    }

    @Test func rsetEndsAnUnfinishedBDATTransaction() throws {
        var m = try Self.machine()
        Self.transaction(&m)
        _ = m.commandLine(Self.line("BDAT 1"))
        _ = m.messageOpened()
        _ = m.chunkRead(1)
        #expect(m.commandLine(Self.line("RSET")) == .abortMessage([Reply(250, EnhancedStatus(2, 0, 0), "Ok")]))
        #expect(m.commandLine(Self.line("NOOP")) == .reply([Reply(250, EnhancedStatus(2, 0, 0), "Ok")]))
    }

    @Test func aChunkOutsideATransactionIsReadAndRefused() throws {
        var m = try Self.machine()
        #expect(m.commandLine(Self.line("BDAT 4 LAST")) == .none)
        #expect(m.chunkRead(4) == .reply([SMTPSession.chunkWithoutTransaction]))
    }

    @Test func shutdownClosesAnIdleSessionAndWaitsForATransaction() throws {
        var m = try Self.machine()
        #expect(m.shutdown() == .close([Reply(421, EnhancedStatus(4, 3, 2), "mx.test Service shutting down, closing channel")], why: .shuttingDown))
        m = try Self.machine()
        Self.inData(&m)
        #expect(m.shutdown() == .none, "the message in DATA is finished first")
        _ = m.endOfData(.init(size: 10))
        _ = m.envelopeWritten(Self.envelope(m))
        _ = m.committed()
        #expect(m.next() == .act(.close([Reply(421, EnhancedStatus(4, 3, 2), "mx.test Service shutting down, closing channel")], why: .shuttingDown)))
    }

    @Test func aHalfCloseIsAnsweredBeforeTheSessionEnds() throws {
        var m = try Self.machine()
        Self.inData(&m)
        _ = m.endOfData(.init(size: 10))
        _ = m.envelopeWritten(Self.envelope(m))
        let open = m.inputEnded()
        #expect(open)
        #expect(m.endOfInput() == .flush, "the commit is still to be answered")
        _ = m.committed()
        #expect(m.inputClosed)
        #expect(m.endOfInput() == .close([], why: nil))
    }

    /// Postfix's smtpd_hard_error_limit; 452 4.5.3 (too many recipients) is no error.
    @Test func aClientThatKeepsErringIsCutOff() throws {
        var m = try Self.machine()
        for _ in 1..<SMTPSession.hardErrorLimit { #expect(m.commandLine(Self.line("FOO")) == .reply([Reply(500, EnhancedStatus(5, 5, 2), "Error: command not recognized")])) }
        #expect(m.commandLine(Self.line("FOO")) == .close([Reply(500, EnhancedStatus(5, 5, 2), "Error: command not recognized"),
                                                          Reply(421, EnhancedStatus(4, 7, 0), "mx.test Error: too many errors")], why: .tooManyErrors))
    }
}
