import NIOCore
import PosternMIME
import PosternSMTP
@testable import PosternSpool
import PosternTestSupport
import PosternUtil
import Testing

@Suite struct DeliveryReportTests {
    func rcpt(_ notify: String?, _ address: String = "b@example.org") -> Recipient {
        Recipient(address: address, parameters: MailParameters(notify.map { [.init(keyword: "NOTIFY", value: $0)] } ?? []))
    }

    /// RFC 3461 §4.1: without NOTIFY a failure or a delay is reported, a success is not.
    @Test(arguments: [
        (nil, true, true, false), ("SUCCESS,FAILURE", true, false, true), ("NEVER", false, false, false),
        ("DELAY", false, true, false), ("success", false, false, true), ("FAILURE,DELAY", true, true, false),
    ] as [(String?, Bool, Bool, Bool)])
    func whoGetsWhichReport(notify: String?, failed: Bool, delayed: Bool, success: Bool) {
        let r = rcpt(notify)
        #expect(DeliveryReport.wanted(.failed, for: r, sender: "a@example.com") == failed)
        #expect(DeliveryReport.wanted(.delayed, for: r, sender: "a@example.com") == delayed)
        #expect(DeliveryReport.wanted(.relayed, for: r, sender: "a@example.com") == success)
        #expect(DeliveryReport.wanted(.delivered, for: r, sender: "a@example.com") == success)
        for action in [DeliveryReport.Action.failed, .delayed, .relayed, .delivered] {
            #expect(!DeliveryReport.wanted(action, for: r, sender: ""))   // never a report about a report
        }
    }

    func report(_ action: DeliveryReport.Action, envelope e: Envelope, message: ByteBuffer, forced: String? = nil,
                retryUntil: Double? = nil, diagnostic: String = "550 5.1.1 no\r\nX: y", remote: String? = "mx.example.org") -> String {
        var batch = DeliveryReport.Batch(original: e, action: action, retryUntil: retryUntil)
        batch.add(route: 0, recipient: 0, status: action == .failed ? "5.1.1" : action == .delayed ? "4.2.0" : "2.0.0",
                  diagnostic: diagnostic, remote: remote)
        return String(buffer: DeliveryReport.message(batch, originalMessage: message, hostname: "h", reportID: "R",
                                                     headersOnlyBecause: forced, now: 1_700_003_600))
    }

    @Test func largeMessagesAreReturnedAsHeadersOnlyAndTheTextSaysSo() {
        let e = Envelope(id: "ID", arrival: 0, mailFrom: "a@example.com", recipients: [rcpt(nil)], size: 0)
        let small = ByteBuffer(string: "Subject: s\r\n\r\nbody\r\n")
        let big = ByteBuffer(string: "Subject: s\r\n\r\n" + String(repeating: "x", count: DeliveryReport.fullMessageLimit))
        let a = report(.failed, envelope: e, message: small)
        let b = report(.failed, envelope: e, message: big)
        #expect(a.contains("Content-Type: message/rfc822") && a.contains("body\r\n"))
        #expect(a.contains("Your message is attached below.") && !a.contains("header section"))
        #expect(b.contains("Content-Type: text/rfc822-headers") && !b.contains("xxxx"))
        #expect(b.contains("Only the header section of your message is attached below: the message is larger than 50000 octets."))
        #expect(a.contains("Diagnostic-Code: smtp; 550 5.1.1 no  X: y"))   // no header injection
        #expect(a.contains("<b@example.org>: 550 5.1.1 no  X: y\r\n"))     // each recipient with its reason
        #expect(a.hasSuffix("--R/h--\r\n"))
    }

    /// A report reads the original only as far as it returns it: a large message's head, at
    /// most the header section's limit, never the whole message.
    @Test func aReportReadsTheOriginalOnlyAsFarAsItReturnsIt() {
        let e = Envelope(id: "ID", arrival: 0, mailFrom: "a@example.com", recipients: [rcpt(nil)], size: 0)
        var batch = DeliveryReport.Batch(original: e, action: .failed)
        batch.add(route: 0, recipient: 0, status: "5.1.1", diagnostic: "550 5.1.1 no", remote: nil)
        for size in [200, DeliveryReport.fullMessageLimit + 1, 8 << 20] {
            let original = ByteBuffer(string: "Subject: s\r\n\r\n" + String(repeating: "x", count: size - 14))
            var asked: [Int] = []
            let text = String(buffer: DeliveryReport.message(batch, originalSize: size, reading: { n in
                asked.append(n)
                return original.getSlice(at: 0, length: n)!
            }, hostname: "h", reportID: "R"))
            #expect(asked == [size <= DeliveryReport.fullMessageLimit ? size : min(size, HeaderField.sectionLimit)])
            #expect(text.contains("Subject: s\r\n") && text.contains("xxxx") == (size <= DeliveryReport.fullMessageLimit))
        }
    }

    @Test func retHdrsAndAForcedReasonAreNamed() throws {
        let hdrs = Envelope(id: "ID", arrival: 0, mailFrom: "a@example.com", mailParameters: try MailParameters.parse("RET=HDRS"),
                            recipients: [rcpt(nil)], size: 0)
        let m = ByteBuffer(string: "Subject: s\r\n\r\nbody\r\n")
        let a = report(.failed, envelope: hdrs, message: m)
        #expect(a.contains("attached below: you asked for the headers only (RET=HDRS).") && !a.contains("body\r\n"))
        let full = Envelope(id: "ID", arrival: 0, mailFrom: "a@example.com", mailParameters: try MailParameters.parse("RET=FULL"),
                            recipients: [rcpt(nil)], size: 0)
        let b = report(.failed, envelope: full, message: m, forced: "it was blocked by the content filter")
        #expect(b.contains("attached below: it was blocked by the content filter.") && b.contains("text/rfc822-headers"))
    }

    /// Delay and success reports return the header section whatever RET says.
    @Test(arguments: [DeliveryReport.Action.delayed, .relayed, .delivered])
    func onlyFailuresReturnTheWholeMessage(action: DeliveryReport.Action) throws {
        let e = Envelope(id: "ID", arrival: 1_700_000_000, mailFrom: "a@example.com",
                         mailParameters: try MailParameters.parse("RET=FULL ENVID=a+2Bb"), recipients: [rcpt("SUCCESS,DELAY")], size: 0)
        let text = report(action, envelope: e, message: ByteBuffer(string: "Subject: s\r\n\r\nbody\r\n"),
                          retryUntil: action == .delayed ? 1_700_432_000 : nil, diagnostic: "250 2.0.0 Ok")
        #expect(text.contains("Content-Type: text/rfc822-headers") && !text.contains("body\r\n"))
        #expect(text.contains("attached below: a report of this kind never returns the whole message."))
        #expect(text.contains("Action: \(action.rawValue)\r\n"))
        #expect(text.contains("Original-Envelope-Id: a+b\r\n"))   // xtext decoded
        #expect(text.contains("Remote-MTA: dns; mx.example.org\r\n"))
        #expect(text.contains("Will-Retry-Until: ") == (action == .delayed))
    }

    @Test func subjectsAndTexts() {
        let e = Envelope(id: "Q1", arrival: 1_700_000_000, mailFrom: "a@example.com", recipients: [rcpt("SUCCESS,DELAY,FAILURE")], size: 0)
        let m = ByteBuffer(string: "Subject: s\r\n\r\nbody\r\n")
        let delayed = report(.delayed, envelope: e, message: m, retryUntil: 1_700_432_000, diagnostic: "451 4.2.0 later")
        #expect(delayed.contains("Subject: Delayed Mail (still being retried)\r\n"))
        #expect(delayed.contains("YOU DO NOT NEED TO RESEND YOUR MESSAGE"))
        #expect(delayed.contains("(queue id Q1) has waited 60 minutes and could not be\r\ndelivered yet to one or more recipients.\r\n"))
        let until = Timestamp.format(1_700_432_000, Timestamp.rfc5322)   // local time, as the Date: field
        #expect(delayed.contains("It will be tried again until \(until).\r\n"))
        #expect(delayed.contains("Will-Retry-Until: \(until)\r\n"))
        let relayed = report(.relayed, envelope: e, message: m, diagnostic: "250 2.0.0 Ok: queued")
        #expect(relayed.contains("Subject: Successful Mail Delivery Report\r\n"))
        #expect(relayed.contains("does not send delivery reports") && relayed.contains("<b@example.org>: 250 2.0.0 Ok: queued\r\n"))
        #expect(report(.delivered, envelope: e, message: m, diagnostic: "250 ok").contains("was delivered to the mailboxes"))
        let failed = report(.failed, envelope: e, message: m)
        #expect(failed.contains("Subject: Undelivered Mail Returned to Sender\r\n") && !failed.contains("Will-Retry-Until"))
    }

    /// RFC 3464 §2.3.5/§2.3.6: a next hop is named by its host, Postern's own reasons are not SMTP replies.
    @Test func remoteMTAAndDiagnosticType() {
        let e = Envelope(id: "Q1", arrival: 0, mailFrom: "a@example.com", recipients: [rcpt(nil)], size: 0)
        let m = ByteBuffer(string: "Subject: s\r\n\r\n")
        let local = report(.failed, envelope: e, message: m, diagnostic: "delivery time expired: connection refused", remote: nil)
        #expect(!local.contains("Remote-MTA"))
        #expect(local.contains("Diagnostic-Code: x-postern; delivery time expired: connection refused\r\n"))
        #expect(DeliveryReport.diagnosticCode("451-4.3.0 busy") == "smtp; 451-4.3.0 busy")
        #expect(DeliveryReport.diagnosticCode("4.7.4 TLS is required") == "x-postern; 4.7.4 TLS is required")
        #expect(DeliveryReport.diagnosticCode("600 nonsense") == "x-postern; 600 nonsense")
    }

    @Test func waitedTimeForPeople() {
        #expect(DeliveryReport.hours(1) == "1 second")
        #expect(DeliveryReport.hours(119) == "119 seconds")
        #expect(DeliveryReport.hours(3600) == "60 minutes")
        #expect(DeliveryReport.hours(4 * 3600 + 59) == "4 hours")
    }
}
