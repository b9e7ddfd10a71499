import PosternMIME
@testable import PosternPolicy
import PosternSMTP
import PosternSpool
import PosternTestSupport
import PosternUtil
import Testing

/// The documented sample `config/postern.conf` must load and say what its comments say.
@Suite struct ConfigSampleTests {
    static let samplePath: String = {
        // #filePath is …/Tests/PosternPolicyTests/ConfigSampleTests.swift
        var parts = String(#filePath).split(separator: "/", omittingEmptySubsequences: false)
        parts.removeLast(3)
        return parts.joined(separator: "/") + "/config/postern.conf"
    }()

    @Test func sampleLoads() throws {
        let config = try PosternConfig.load(path: Self.samplePath)
        #expect(config.general.spoolDir == "./var/spool")
        #expect(config.general.runDir == "./var/run")
        #expect(config.receiver.address.map(\.description) == ["inet:10024@127.0.0.1"])
        #expect(config.sender.address.description == "inet:10025@127.0.0.1")   // the MTA's return port: port 25 would loop
        #expect(config.receiver.maxFilterPasses == 2)
        #expect(config.notifier.filterMail == "postern@localhost")
        #expect(config.scanner.address.description == "local:./var/run/scannerd.sock")
        #expect(config.rules.rules.count == 1)
        let normal = RuleContext(from: "alice@example.com", rcpt: "bob@example.org", clientIP: "192.0.2.7")
        #expect(config.rules.value(of: "SenderAddress", in: normal) == "inet:10025@CLIENT-IP")
        #expect(config.rules.value(of: "SenderAddress", in: RuleContext(from: "")) == nil)
        #expect(config.rules.value(of: "SenderAddress", in: RuleContext(from: "root@localhost")) == nil)
        #expect(config.rules.value(of: "SenderAddress", in: RuleContext(from: config.notifier.filterMail)) == nil)
    }

    @Test func sampleMentionsEveryCoreKey() throws {
        let config = try PosternConfig.load(path: Self.samplePath)
        let expected: [String: [String]] = [
            "general": ["hostname", "spooldir", "rundir", "user", "loglevel"],
            "receiver": ["address", "protectednetworks", "maxmessagesize", "maxrecipients", "maxsessions",
                         "commandtimeout", "datatimeout", "stressthreshold", "stresscommandtimeout", "stressdatatimeout",
                         "clientconnectionlimit", "clientconnectionratelimit", "clientratetimeunit", "limitexempt", "processingerrors", "returnreject", "softbounce", "addreceivedheader",
                         "maxreceivedheaders", "maxfilterpasses"],
            "scanner": ["address", "beforequeuefilters", "afterqueuefilters", "scantimeout"],
            "sender": ["address", "controladdress", "connecttimeout", "commandtimeout", "datatimeout",
                       "maxconnections", "retryintervals", "maxqueuelifetime", "securehash", "skipdsnonblock",
                       "tls", "tlscafile", "tlscertificate", "tlskey", "tlsservername", "authfile", "authwithouttls"],
            "notifier": ["filtermail", "adminmail"],
            "quarantine": ["path", "storedtime", "maxsize"],
        ]
        for (section, keys) in expected {
            let written = Set(config.sections[section]?.order ?? [])
            #expect(Set(keys).subtracting(written).isEmpty, "missing in [\(section)]")
        }
    }
}
