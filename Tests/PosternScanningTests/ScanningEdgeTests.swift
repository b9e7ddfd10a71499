import Glibc
import NIOCore
import PosternMIME
import PosternPolicy
import PosternSMTP
@testable import PosternScanning
import PosternSpool
import PosternTestSupport
import PosternUtil
import Testing

/// Inputs chosen to break the scanners or slip past them.
@Suite struct ScanningEdgeTests {
    /// Each level an encoded message/rfc822 holding the next: the MIME depth limit must hold
    /// across them (each inner walk counts from 0 again).
    @Test func encodedMessagesNestedThousandsDeepAreABombNotACrash() throws {
        var body = "Content-Type: text/plain\r\n\r\nbottom\r\n"
        for _ in 0..<5000 {
            body = "Content-Type: message/rfc822\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" + body
        }
        let message = "Subject: deep\r\n" + body
        let plugin = AttachmentsPlugin(settings: AttachmentsSettings())
        let started = ContinuousClock.now
        let finding = try plugin.scan(ScanRequest(queueID: "T", message: Array(message.utf8)), deadline: .now + .seconds(30))
        #expect(finding.verdict == AttachmentsPlugin.archiveBomb, "\(finding)")
        #expect(finding.names.first?.contains("MIME nesting over") == true)
        #expect(ContinuousClock.now - started < .seconds(5))
    }

    @Test func headersFilterSeesEncodedWordsAndPastNUL() throws {
        let config = try PosternConfig.parse("[HeadersFilter]\nRule = reject Subject viagra", path: "t")
        let plugin = config.plugins["headersfilter"]!.plugin
        func verdict(_ header: String) throws -> FindingVerdict {
            try plugin.scan(ScanRequest(queueID: "T", message: Array((header + "\r\n\r\nbody\r\n").utf8)), deadline: .now + .seconds(1)).verdict
        }
        #expect(try verdict("Subject: =?utf-8?B?dmlhZ3Jh?=") == "reject")
        #expect(try verdict("Subject: cheap\0 viagra") == "reject")
        #expect(try verdict("Subject: =?utf-8?B?aGVsbG8=?=") == Finding.clean)
    }

    @Test func filterListsInRulesAreCheckedAndTheirPluginsConfigured() throws {
        let config = try PosternConfig.parse("[Rules]\nto:a@example.com cont AfterQueueFilters = \"clamav, attachments\"", path: "t")
        #expect(config.plugins["clamav"] != nil && config.plugins["attachments"] != nil)
        #expect(config.scansWithPlugins)
        do {
            _ = try PosternConfig.parse("[Rules]\nto:a@example.com cont AfterQueueFilters = clamv", path: "t.conf")
            Issue.record("a misspelt plug-in in a rule was accepted")
        } catch {
            #expect("\(error)".contains("unknown plug-in 'clamv'"), "\(error)")
        }
    }

    @Test func aMessageWithWorkLeftIsNotReadyForDelivery() {
        var v = Verdict(scanned: 1, routes: [.init(recipient: 0, endpoint: "inet:25@h")])
        #expect(v.readyForDelivery)
        v.afterQueuePending = true
        #expect(!v.readyForDelivery)
        v.afterQueuePending = false
        v.routes.append(.init(recipient: 1, status: .blocked, endpoint: "inet:25@h"))
        #expect(!v.readyForDelivery)
    }

    @Test func aFailedScannerIsNotExplainedToTheClient() {
        let f = Finding(plugin: "clamav", verdict: Finding.error, detail: "error: clamd inet:3310@10.0.0.1: connection refused")
        #expect(f.reason == "clamav: scanner temporarily unavailable")
    }
}
