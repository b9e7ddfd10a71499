import PosternPolicy
import PosternSpool
import Testing

/// AdminMail, FilterMail, Notify and ScanTimeout resolved per recipient like SenderAddress
/// (the plug-ins' MaxSize and spam thresholds: `ScanEngineTests`).
@Suite struct PerRecipientParameterTests {
    static let envelope = Envelope(id: "T", arrival: 0, mailProtocol: .smtp, clientIP: "192.0.2.1", mailFrom: "a@example.org",
                                   recipients: [Recipient(address: "sales@example.com"), Recipient(address: "ceo@example.com"),
                                                Recipient(address: "dev@example.net")])
    static let config = """
        [Scanner]
        ScanTimeout = 5m
        [Notifier]
        AdminMail = postmaster@example.com
        FilterMail = filter@example.com
        [Rules]
        to:regex:@example\\.net$ cont AdminMail = hostmaster@example.net, FilterMail = filter@example.net, ScanTimeout = 30s
        to:ceo@example.com cont ScanTimeout = 2m, Notify = admin
        score:>5 cont AdminMail = spam-desk@example.com
        """

    static func resolver() throws -> RouteResolver {
        RouteResolver(config: try PosternConfig.parse(config, path: "t.conf"))
    }

    @Test func adminAndFilterMailPerRecipient() throws {
        let r = try Self.resolver(), e = Self.envelope
        #expect((0..<3).map { r.adminMail(for: e, recipient: $0, headers: nil) }
            == ["postmaster@example.com", "postmaster@example.com", "hostmaster@example.net"])
        #expect((0..<3).map { r.filterMail(for: e, recipient: $0, headers: nil) }
            == ["filter@example.com", "filter@example.com", "filter@example.net"])
        // After a scan, score: terms apply.
        #expect(r.adminMail(for: e, recipient: 0, headers: nil, score: 7) == "spam-desk@example.com")
        #expect(r.adminMail(for: e, recipient: 0, headers: nil, score: 2) == "postmaster@example.com")
    }

    @Test func notifyPerRecipientWithItsSectionDefault() throws {
        let config = try PosternConfig.parse(NotificationTemplateTests.shipped + """
            Notify = "admin, recipients"
            [Rules]
            to:ceo@example.com cont Notify = sender
            """, path: "t.conf")
        let r = RouteResolver(config: config)
        #expect((0..<3).map { r.notify(for: Self.envelope, recipient: $0, headers: nil) } == [[.admin, .recipients], [.sender], [.admin, .recipients]])
    }

    /// One scan serves every recipient: the shortest limit among them holds.
    @Test func scanTimeoutIsTheShortestOfTheRecipients() throws {
        let r = try Self.resolver(), e = Self.envelope
        #expect(r.scanTimeout(for: e, recipients: [0], headers: nil) == .seconds(300))
        #expect(r.scanTimeout(for: e, recipients: [0, 1], headers: nil) == .seconds(120))
        #expect(r.scanTimeout(for: e, recipients: 0..<3, headers: nil) == .seconds(30))
        #expect(r.scanTimeout(for: e, recipients: [], headers: nil) == .seconds(300))
    }
}
