import Glibc
import PosternMIME
@testable import PosternPolicy
import PosternSMTP
import PosternSpool
import PosternTestSupport
import PosternUtil
import Testing

/// The core sections: defaults, every key, derived defaults, plug-in sections.
@Suite struct ConfigTests {
    @Test func defaults() throws {
        let config = try PosternConfig.parse("", path: "t.conf")
        #expect(config.general.hostname == SystemHostname.current())
        #expect(config.general.spoolDir == "/var/spool/postern")
        #expect(config.general.runDir == "/run/postern")
        #expect(config.general.user == nil)
        #expect(config.general.logLevel == .info)
        #expect(config.receiver.address.map(\.description) == ["inet:10024@127.0.0.1"])
        #expect(config.receiver.protectedNetworks.map(\.description) == ["127.0.0.0/8", "::1/128"])
        #expect(config.receiver.maxMessageSize == 10 * 1024 * 1024)
        #expect(config.receiver.maxRecipients == 1000)
        #expect(config.receiver.maxSessions == 200)
        #expect(config.receiver.commandTimeout == .seconds(300))
        #expect(config.receiver.dataTimeout == .seconds(300))
        #expect(config.receiver.stressThreshold == 80)
        #expect(config.receiver.stressCommandTimeout == .seconds(10) && config.receiver.stressDataTimeout == .seconds(10))
        #expect(config.receiver.clientConnectionLimit == 0 && config.receiver.clientConnectionRateLimit == 0, "off: the MTA is the client")
        #expect(config.receiver.clientRateTimeUnit == .seconds(60))
        #expect(config.receiver.limitExempt.map(\.description) == ["127.0.0.0/8", "::1/128"])
        #expect(config.receiver.processingErrors == "tempfail")
        #expect(config.receiver.processingErrorsActions == ActionList(main: .tempfail))
        #expect(config.receiver.returnReject && config.receiver.addReceivedHeader)
        #expect(config.receiver.maxReceivedHeaders == 50)
        #expect(config.scanner.address.description == "local:/run/postern/scannerd.sock")
        #expect(config.scanner.beforeQueueFilters.isEmpty && config.scanner.afterQueueFilters.isEmpty)
        #expect(config.scanner.scanTimeout == .seconds(300))
        #expect(config.sender.address.description == "inet:10025@127.0.0.1")
        #expect(config.sender.controlAddress.description == "local:/run/postern/senderd.sock")
        #expect(config.sender.connectTimeout == .seconds(30))
        #expect(config.sender.commandTimeout == .seconds(300))
        #expect(config.sender.dataTimeout == .seconds(600))
        #expect(config.sender.maxConnections == 20)
        #expect(config.sender.retryIntervals == [.seconds(60), .seconds(300), .seconds(900), .seconds(3600)])
        #expect(config.sender.maxQueueLifetime == .seconds(5 * 86400))
        #expect(config.sender.secureHash == "" && !config.sender.skipDSNOnBlock)
        #expect(config.notifier.filterMail == "postern@" + config.general.hostname)
        #expect(config.notifier.adminMail == "root@localhost")
        #expect(config.notifier.templatesDir == nil)
        #expect(config.quarantine.path == "/var/spool/postern/quarantine")
        #expect(config.rules.rules.isEmpty)
    }

    @Test func everyKey() throws {
        // The files the configuration names must exist (PEM only needs to look like PEM here).
        let files = ConfigTestDirectory()
        defer { files.remove() }
        let cert = files.write("cert.pem", "-----BEGIN CERTIFICATE-----\nMAIwAA==\n-----END CERTIFICATE-----\n")
        let key = files.write("key.pem", "-----BEGIN PRIVATE KEY-----\nMAMCAQA=\n-----END PRIVATE KEY-----\n")
        let templates = NotificationTemplateTests.repository + "/config/templates"
        let text = """
            [general]
            hostname = filter.example.com
            SpoolDir = ./var/spool
            RunDir = ./var/run
            User = postern
            LogLevel = Debug
            [RECEIVER]
            Address = inet:10024@127.0.0.1, lmtp:local:./var/run/lmtp.sock
            Address = inet:10024@[::1]
            ProtectedNetworks = 127.0.0.0/8, ::1/128, 192.0.2.0/24
            MaxMessageSize = 50m
            MaxRecipients = 500
            MaxSessions = 10
            CommandTimeout = 1m
            DataTimeout = 2m
            StressThreshold = 90%
            StressCommandTimeout = 20s
            StressDataTimeout = 30s
            ClientConnectionLimit = 10
            ClientConnectionRateLimit = 100
            ClientRateTimeUnit = 10m
            LimitExempt = 192.0.2.1
            ProcessingErrors = reject, notify
            ReturnReject = no
            AddReceivedHeader = off
            MaxReceivedHeaders = 30
            TLSCertificate = \(cert)
            TLSKey = \(key)
            [Scanner]
            Address = local:/tmp/scan.sock
            BeforeQueueFilters = ClamAV
            BeforeQueueFilters = rspamd
            AfterQueueFilters = "headersfilter"
            ScanTimeout = 90s
            [Sender]
            Address = inet:10026@mx.example.com
            Protocol = lmtp
            ControlAddress = local:/tmp/send.sock
            ConnectTimeout = 10s
            CommandTimeout = 1m
            DataTimeout = 3m
            MaxConnections = 5
            RetryIntervals = 30s, 2m
            MaxQueueLifetime = 2d
            SecureHash = "s3cret; not a comment"
            SkipDSNOnBlock = yes
            [Notifier]
            FilterMail = filter@example.com
            AdminMail = admin@example.com
            TemplatesDir = \(templates)
            [Quarantine]
            Path = ./var/quarantine
            StoredTime = 7d
            MaxSize = 2g
            ReleaseAddress = quarantine-release@example.com
            ReleaseLifetime = 2d
            ReleaseSecret = "release; secret"
            [ClamAV]
            Address = local:/run/clamd.sock
            Timeout = 20s
            """
        let config = try PosternConfig.parse(text, path: "t.conf")
        #expect(config.general.hostname == "filter.example.com")
        #expect(config.general.spoolDir == "./var/spool" && config.general.runDir == "./var/run")
        #expect(config.general.user == "postern" && config.general.logLevel == .debug)
        #expect(config.receiver.address.map(\.description) == ["inet:10024@127.0.0.1", "lmtp:local:./var/run/lmtp.sock", "inet:10024@[::1]"])
        #expect(config.receiver.protectedNetworks.count == 3)
        #expect(config.receiver.maxMessageSize == 50 << 20)
        #expect(config.receiver.maxRecipients == 500 && config.receiver.maxSessions == 10)
        #expect(config.receiver.commandTimeout == .seconds(60) && config.receiver.dataTimeout == .seconds(120))
        #expect(config.receiver.stressThreshold == 90 && config.receiver.stressCommandTimeout == .seconds(20))
        #expect(config.receiver.stressDataTimeout == .seconds(30))
        #expect(config.receiver.clientConnectionLimit == 10 && config.receiver.clientConnectionRateLimit == 100)
        #expect(config.receiver.clientRateTimeUnit == .seconds(600) && config.receiver.limitExempt.map(\.description) == ["192.0.2.1/32"])
        #expect(config.receiver.processingErrors == "reject, notify")
        #expect(!config.receiver.returnReject && !config.receiver.addReceivedHeader)
        #expect(config.receiver.maxReceivedHeaders == 30)
        #expect(config.receiver.tlsCertificate == cert && config.receiver.tlsKey == key)
        #expect(config.scanner.address.description == "local:/tmp/scan.sock")
        #expect(config.scanner.beforeQueueFilters == ["clamav", "rspamd"])
        #expect(config.scanner.afterQueueFilters == ["headersfilter"])
        #expect(config.scanner.scanTimeout == .seconds(90))
        #expect(config.sender.address.description == "lmtp:inet:10026@mx.example.com")
        #expect(config.sender.controlAddress.description == "local:/tmp/send.sock")
        #expect(config.sender.connectTimeout == .seconds(10) && config.sender.dataTimeout == .seconds(180))
        #expect(config.sender.maxConnections == 5)
        #expect(config.sender.retryIntervals == [.seconds(30), .seconds(120)])
        #expect(config.sender.maxQueueLifetime == .seconds(2 * 86400))
        #expect(config.sender.secureHash == "s3cret; not a comment" && config.sender.skipDSNOnBlock)
        #expect(config.notifier.filterMail == "filter@example.com" && config.notifier.adminMail == "admin@example.com")
        #expect(config.notifier.templatesDir == templates)
        #expect(config.warnings.isEmpty && config.notifier.templates != nil)
        #expect(config.quarantine.path == "./var/quarantine" && config.quarantine.storedTime == .seconds(7 * 86400))
        #expect(config.quarantine.releaseAddress == "quarantine-release@example.com" && config.quarantine.releaseLifetime == .seconds(2 * 86400))
        #expect(config.quarantine.releaseSecret == "release; secret")
        #expect(config.quarantine.maxSize == 2 << 30)
        #expect(config.plugins["clamav"]?.timeout == .seconds(20))
        #expect(Set(config.plugins.keys) == ["clamav", "rspamd", "headersfilter"])
    }

    @Test func derivedDefaultsFollowGeneral() throws {
        let config = try PosternConfig.parse("[General]\nHostname = mx.example.net\nRunDir = ./var/run\nSpoolDir = ./var/spool", path: "t")
        #expect(config.scanner.address.description == "local:./var/run/scannerd.sock")
        #expect(config.sender.controlAddress.description == "local:./var/run/senderd.sock")
        #expect(config.notifier.filterMail == "postern@mx.example.net")
        #expect(config.quarantine.path == "./var/spool/quarantine")
    }

    @Test func protocolConflictsWithAnExplicitPrefix() {
        #expect(throws: ConfigErrors.self) {
            try PosternConfig.parse("[Sender]\nAddress = smtp:inet:25@127.0.0.1\nProtocol = lmtp", path: "t")
        }
    }

    @Test func pluginSectionsWithSectionReader() throws {
        let document = INIParser.parse("[Milter:spamd]\nSocket = local:/run/clamd.sock\nTimeout = 30s\nTypo = 1", file: "t.conf")
        var reader = SectionReader(document.sections["milter:spamd"], name: "ClamAV", file: "t.conf")
        #expect(reader.endpoint("Socket")?.description == "local:/run/clamd.sock")
        #expect(reader.duration("timeout") == .seconds(30))
        #expect(reader.bool("Absent") == nil)
        reader.reportUnknownKeys()
        #expect(reader.errors.map(\.description) == ["t.conf:4:1: unknown key 'Typo' in [ClamAV]"])
    }

    @Test func listClearedByEmptyValue() throws {
        let config = try PosternConfig.parse("[Scanner]\nBeforeQueueFilters =", path: "t")
        #expect(config.scanner.beforeQueueFilters.isEmpty)
    }
}
