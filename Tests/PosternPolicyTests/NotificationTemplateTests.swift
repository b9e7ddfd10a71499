import Glibc
@testable import PosternPolicy
import PosternTestSupport
import PosternUtil
import Testing

/// `[Notifier] TemplatesDir`: templates parsed at load, every problem with its position.
@Suite struct NotificationTemplateTests {
    static let good = """
        From: "Filter on $HOSTNAME$" <$FILTER_MAIL$>
        To: <$TO$>
        Subject: [$QUEUE_ID$] $SUBJECT$
         costs $$5
        X-Note: plain

        Dear $TO$,
        $REPORT$
        $$HOME stays
        """

    @Test func macrosTextAndFoldedFields() throws {
        let t = try NotificationTemplate.parse(Self.good, file: "t.txt").get()
        #expect(t.fields.map(\.name) == ["From", "To", "Subject", "X-Note"])
        #expect(t.fields[2].value == [.text("["), .macro(.queueID), .text("] "), .macro(.subject), .text(" "), .text("costs $5")])
        let (fields, body) = t.render([.hostname: "mx", .filterMail: "f@mx", .to: "u@x", .queueID: "Q1",
                                       .subject: "hi\r\nBcc: evil@x", .report: "<a>: reject\r\n<b>: reject"])
        #expect(fields.map(\.value) == ["\"Filter on mx\" <f@mx>", "<u@x>", "[Q1] hi  Bcc: evil@x costs $5", "plain"])
        #expect(body == ["Dear u@x,", "<a>: reject\r\n<b>: reject", "$HOME stays"])
    }

    @Test func aFieldWhoseMacrosAreAllEmptyIsLeftOut() throws {
        let t = try NotificationTemplate.parse("From: a\nTo: <$TO$>\nSubject: [$QUEUE_ID$] $SUBJECT$\nReply-To: <$RELEASE$>\n\nReply to $RELEASE$.",
                                               file: "t.txt").get()
        let without = t.render([.to: "u@x", .queueID: "Q1"])
        #expect(without.fields.map(\.name) == ["From", "To", "Subject"])
        #expect(without.fields[2].value == "[Q1] ")
        let with = t.render([.to: "u@x", .queueID: "Q1", .release: "release+T@x"])
        #expect(with.fields.map(\.name) == ["From", "To", "Subject", "Reply-To"])
        #expect(with.fields[3].value == "<release+T@x>")
    }

    @Test(arguments: [
        ("From: a\nTo: b\nSubject: $NOPE$\n\nbody", "t.txt:3:10: unknown macro $NOPE$: expected one of"),
        ("From: a\nTo: b\nSubject: x\nbody without a blank line", "t.txt:4:1: no empty line after the header fields"),
        ("From: a\nTo: b\nSubject: $REPORT$\n\n", "t.txt:3:10: $REPORT$ has several lines: it can only stand in the body"),
        ("From: a\nTo: b\nSubject: x\nDate: now\n\n", "t.txt:4:1: Date is written by Postern; leave it out of the template"),
        ("From: a\nTo: b\n\nbody", "t.txt:1:1: no Subject: field"),
        ("From: a\nTo: b\nSubject: x\n\nCosts $5 now", "t.txt:5:7: a '$' without its closing '$' (write $$ for a dollar sign)"),
        ("From: a\nTo: b\nSubject: x\nnot a field\n\n", "t.txt:4:1: expected a header field 'Name: value'"),
        ("From: a\nTo: b\nSubject: x\n\nok $TO$ and $BAD_ONE$", "t.txt:5:13: unknown macro $BAD_ONE$"),
    ])
    func brokenTemplatesAreRefusedWithTheirPosition(text: String, expected: String) {
        guard case .failure(let errors) = NotificationTemplate.parse(text, file: "t.txt") else {
            Issue.record("accepted: \(text)")
            return
        }
        #expect(errors.errors.count == 1)
        #expect(errors.errors.first?.description.hasPrefix(expected) == true, "\(errors)")
    }

    /// The shipped templates with the release address their quarantine notice needs.
    static var shipped: String {
        "[Quarantine]\nReleaseAddress = quarantine-release@example.com\n[Notifier]\nTemplatesDir = \(repository)/config/templates\n"
    }

    /// The shipped set is complete and parses; `postern.conf` names it.
    @Test func theShippedTemplatesLoad() throws {
        let config = try PosternConfig.parse(Self.shipped, path: "t.conf")
        let templates = try #require(config.notifier.templates)
        #expect(templates.byName.count == NotifyEvent.allCases.count * NotifyParty.allCases.count + 1)
        #expect(templates.digest.fields.map(\.name) == ["From", "To", "Subject"])
        #expect(templates.digest.body.contains([.macro(.digest)]))
        #expect(templates.template(.quarantine, .recipients).fields.contains { $0.name == "Reply-To" && $0.value == [.text("<"), .macro(.release), .text(">")] })
        for event in NotifyEvent.allCases {
            for party in NotifyParty.allCases {
                let fields = templates.template(event, party).fields.map(\.name)
                #expect(fields.starts(with: ["From", "To", "Subject"]), "\(event)-\(party)")
            }
        }
    }

    @Test func aMissingOrBrokenTemplateIsAConfigError() throws {
        let dir = ConfigTestDirectory()
        defer { dir.remove() }
        for event in NotifyEvent.allCases {
            for party in NotifyParty.allCases where (event, party) != (.spam, .sender) {
                dir.write("\(event)-\(party).txt", "From: a\nTo: b\nSubject: x\n\nbody\n")
            }
        }
        dir.write(NotificationTemplates.digestFile, "From: a\nTo: b\nSubject: x\n\n$DIGEST$\n")
        dir.write("virus-admin.txt", "From: a\nTo: b\nSubject: $VIRUS$\n\n")
        do {
            _ = try PosternConfig.parse("[General]\n[Notifier]\nTemplatesDir = \(dir.path)\n", path: "t.conf")
            Issue.record("accepted")
        } catch {
            #expect(Set(error.errors.map(\.description)) == [
                "t.conf:3:16: TemplatesDir: cannot read '\(dir.path)/spam-sender.txt': No such file or directory",
                "\(dir.path)/virus-admin.txt:3:10: unknown macro $VIRUS$: expected one of " + TemplateMacro.allCases.map { "$\($0.rawValue)$" }.joined(separator: ", "),
            ])
        }
    }

    /// `$RELEASE$` only where a recipient is offered release, and only with an address to
    /// reply to; `$DIGEST$` only in the digest, which knows no one message.
    @Test func macrosOnlyWhereTheyMeanSomething() {
        let dir = ConfigTestDirectory()
        defer { dir.remove() }
        for event in NotifyEvent.allCases {
            for party in NotifyParty.allCases {
                dir.write("\(event)-\(party).txt", "From: a\nTo: b\nSubject: x\n\n\((event, party) == (.quarantine, .recipients) ? "$RELEASE$" : "body")\n")
            }
        }
        dir.write(NotificationTemplates.digestFile, "From: a\nTo: b\nSubject: x\n\n$DIGEST$\n")
        func errors(_ quarantine: String) -> [String] {
            do {
                _ = try PosternConfig.parse(quarantine + "[Notifier]\nTemplatesDir = \(dir.path)\n", path: "t.conf")
                return []
            } catch {
                return error.errors.map(\.description)
            }
        }
        let withAddress = "[Quarantine]\nReleaseAddress = quarantine-release@example.com\n"
        #expect(errors(withAddress) == [])
        #expect(errors("") == ["\(dir.path)/quarantine-recipients.txt:5:1: $RELEASE$ needs [Quarantine] ReleaseAddress, the address recipients reply to (docs/postfix.md)"])
        dir.write("virus-recipients.txt", "From: a\nTo: <$RELEASE$>\nSubject: x\n\n$DIGEST$\n")
        dir.write(NotificationTemplates.digestFile, "From: a\nTo: b\nSubject: $SUBJECT$\n\n$DIGEST$\n")
        #expect(errors(withAddress) == [
            "\(dir.path)/virus-recipients.txt:2:6: $RELEASE$ is only for quarantine-recipients.txt: only a recipient releases, and only what is offered for release",
            "\(dir.path)/virus-recipients.txt:5:1: $DIGEST$ is only for quarantine-digest.txt, which lists several messages",
            "\(dir.path)/quarantine-digest.txt:3:10: $SUBJECT$ is about one message; the digest lists several: $DIGEST$ has each one's details",
        ])
        // The address must take a token after a '+'.
        #expect(errors("[Quarantine]\nReleaseAddress = release+x@example.com\n").contains { $0.hasPrefix("t.conf:2:18: ReleaseAddress: expected local@domain without '+'") })
    }

    @Test func tellingSendersNeedsTemplates() {
        #expect(throws: ConfigErrors.self) { try PosternConfig.parse("[Notifier]\nNotify = admin, sender\n", path: "t.conf") }
        do {
            _ = try PosternConfig.parse("[Rules]\nto:a@b cont Notify = recipients\n", path: "t.conf")
            Issue.record("accepted")
        } catch {
            #expect(error.errors.map(\.description) == [
                "t.conf:2:1: Notify = recipients: the sender and the recipients are told with templates: set [Notifier] TemplatesDir"])
        }
        #expect((try? PosternConfig.parse("[Notifier]\nNotify = admin\n[Rules]\ntrue cont Notify = admin\n", path: "t.conf")) != nil)
    }

    /// The checkout: this file is Tests/PosternPolicyTests/NotificationTemplateTests.swift.
    static var repository: String {
        var path = #filePath
        for _ in 0..<3 { path = String(path[..<path.lastIndex(of: "/")!]) }
        return path
    }
}
