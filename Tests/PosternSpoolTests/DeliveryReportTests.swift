import NIOCore
import PosternMIME
import PosternSMTP
@testable import PosternSpool
import PosternTestSupport
import PosternUtil
import Testing

@Suite struct DeliveryReportTests {
    func rcpt(_ notify: String?) -> Recipient {
        Recipient(address: "b@example.org", parameters: MailParameters(notify.map { [.init(keyword: "NOTIFY", value: $0)] } ?? []))
    }

    @Test func whoGetsAReport() {
        #expect(DeliveryReport.wanted(for: rcpt(nil), sender: "a@example.com"))
        #expect(DeliveryReport.wanted(for: rcpt("SUCCESS,FAILURE"), sender: "a@example.com"))
        #expect(!DeliveryReport.wanted(for: rcpt("NEVER"), sender: "a@example.com"))
        #expect(!DeliveryReport.wanted(for: rcpt("DELAY"), sender: "a@example.com"))
        #expect(!DeliveryReport.wanted(for: rcpt(nil), sender: ""))   // never a report about a report
    }

    @Test func largeMessagesAreReturnedAsHeadersOnly() {
        let e = Envelope(id: "ID", arrival: 0, mailFrom: "a@example.com", recipients: [rcpt(nil)], size: 0)
        let failure = DeliveryReport.Failure(recipient: rcpt(nil), status: "5.1.1", diagnostic: "550 5.1.1 no\r\nX: y", remote: "inet:25@mx")
        let small = ByteBuffer(string: "Subject: s\r\n\r\nbody\r\n")
        let big = ByteBuffer(string: "Subject: s\r\n\r\n" + String(repeating: "x", count: DeliveryReport.fullMessageLimit))
        let a = String(buffer: DeliveryReport.message(original: e, failures: [failure], originalMessage: small, hostname: "h", reportID: "R"))
        let b = String(buffer: DeliveryReport.message(original: e, failures: [failure], originalMessage: big, hostname: "h", reportID: "R"))
        #expect(a.contains("Content-Type: message/rfc822") && a.contains("body\r\n"))
        #expect(b.contains("Content-Type: text/rfc822-headers") && !b.contains("xxxx"))
        #expect(a.contains("Diagnostic-Code: smtp; 550 5.1.1 no  X: y"))   // no header injection
        #expect(a.hasSuffix("--R/h--\r\n"))
    }
}
