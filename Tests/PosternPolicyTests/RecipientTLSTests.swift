@testable import PosternPolicy
import PosternMIME
import PosternSMTP
import PosternSpool
import PosternTestSupport
import PosternUtil
import Testing

/// `SenderTLS`: checked as a rule parameter, resolved per recipient, carried in the verdict
/// (`rcpt-tls` lines) and absent from files written before it existed.
@Suite struct RecipientTLSTests {
    let envelope = Envelope(id: "X", arrival: 0, clientIP: "192.0.2.1", clientPort: 1, helo: "h", serverIP: "127.0.0.1",
                            serverPort: 10024, xforward: [:], mailFrom: "a@example.com", mailParameters: MailParameters([]),
                            recipients: [Recipient(address: "open@example.org"), Recipient(address: "secret@example.org")],
                            size: 0, bodyHash: "", validGuards: 0, receivedHeaders: 0)

    @Test func ruleSetsItPerRecipient() throws {
        let config = try PosternConfig.parse("[Rules]\nto:secret@example.org cont SenderTLS = Encrypt\n", path: "t")
        let resolver = RouteResolver(config: config)
        #expect(resolver.tlsPolicy(for: envelope, recipient: 0, headers: nil) == nil)
        #expect(resolver.tlsPolicy(for: envelope, recipient: 1, headers: nil) == .encrypt)
    }

    @Test func badValueIsAnError() {
        do {
            _ = try PosternConfig.parse("[Rules]\ntrue cont SenderTLS = always\n", path: "t")
            Issue.record("accepted")
        } catch {
            #expect(error.errors.first?.description.contains("invalid value 'always': expected none, may, encrypt or verify") == true)
        }
    }

    @Test func verdictRoundTrip() throws {
        var v = Verdict(scanned: 1, routes: [.init(recipient: 0, endpoint: "inet:25@127.0.0.1"), .init(recipient: 1, endpoint: "inet:25@127.0.0.1")])
        v.recipientTLS = [1: .verify]
        let text = v.write()
        #expect(text.contains("\nrcpt-tls 1 verify\nroute P 0 "))
        let spool = try TempSpool()
        let id = try spool.write("a\r\n") { id, size in
            var e = envelope
            e.id = id
            e.size = size
            return e
        }
        let f = try SpoolFile.read(path: spool.layout.path(id, .scan))
        try f.writeVerdict(v, sync: false)
        let back = try SpoolFile.read(path: spool.layout.path(id, .scan))
        #expect(back.verdict?.recipientTLS == [1: .verify])
        #expect(back.verdict == v)
        // A verdict written before SenderTLS existed has no such line: the section default applies.
        var old = v
        old.recipientTLS = [:]
        try f.writeVerdict(old, sync: false)
        #expect(try SpoolFile.read(path: spool.layout.path(id, .scan)).verdict?.recipientTLS == [:])
    }
}
