import Glibc
import PosternMIME
@testable import PosternPolicy
import PosternSMTP
import PosternSpool
import PosternTestSupport
import PosternUtil
import Testing

/// What `posternctl config check` and the daemons refuse beyond syntax: files the
/// configuration names, settings nothing reads, sections Postern does not have.
@Suite struct ConfigCheckTests {
    func errors(_ text: String) -> [String] {
        do {
            _ = try PosternConfig.parse(text, path: "t.conf")
            return []
        } catch {
            return error.errors.map(\.description)
        }
    }

    @Test(arguments: [
        ("[Maild]\nMaxScanSize = 1m", "t.conf:1:1: Dr.Web MailD's [Maild] is not supported: Postern has no core process"),
        ("[Milter]\nAddress = x", "t.conf:1:1: Dr.Web MailD's [Milter] is not supported: Postern is not a milter"),
        ("[General]\n[MailBase]\n", "t.conf:2:1: Dr.Web MailD's [MailBase] is not supported: Postern keeps no mail database"),
        ("[Stat]", "t.conf:1:1: Dr.Web MailD's [Stat] is not supported: statistics are Prometheus metrics: set addresses in [Metrics]"),
        ("[Filters]", "t.conf:1:1: Dr.Web MailD's [Filters] is not supported: plug-ins are listed in [Scanner] BeforeQueueFilters"),
        ("[Logging]", "t.conf:1:1: Dr.Web MailD's [Logging] is not supported: the log level is [General] LogLevel"),
        ("[Milter:spamd]", "t.conf:1:1: milter plug-ins ([Milter:spamd]) are not supported yet"),
        ("[Recevier]\nMaxSessions = 5", "t.conf:1:1: unknown section [Recevier]: expected one of [General], [Receiver]"),
    ])
    func sectionsPosternDoesNotHave(text: String, expectedPrefix: String) {
        let found = errors(text)
        #expect(found.count == 1 && found[0].hasPrefix(expectedPrefix), "\(found)")
    }

    @Test func unknownKeysInKnownSectionsStayErrors() {
        #expect(errors("[Notifier]\nReportLanguages = en") == ["t.conf:2:1: unknown key 'ReportLanguages' in [Notifier]"])
    }

    // MARK: Files the configuration names

    static let certificate = "-----BEGIN CERTIFICATE-----\nMAIwAA==\n-----END CERTIFICATE-----\n"
    static let key = "-----BEGIN PRIVATE KEY-----\nMAMCAQA=\n-----END PRIVATE KEY-----\n"

    func tls(_ cert: String?, _ key: String?) -> [String] {
        let dir = ConfigTestDirectory()
        defer { dir.remove() }
        let certPath = cert.map { dir.write("cert.pem", $0) } ?? dir.path + "/missing.pem"
        let keyPath = key.map { dir.write("key.pem", $0) } ?? dir.path + "/missing-key.pem"
        return errors("[Receiver]\nTLSCertificate = \(certPath)\nTLSKey   = \(keyPath)\n").map {
            $0.replacingOccurrences(of: dir.path, with: "DIR")
        }
    }

    @Test func tlsFilesAreReadAsPEM() {
        #expect(tls(Self.certificate, Self.key) == [])
        #expect(tls(nil, Self.key) == ["t.conf:2:18: TLSCertificate: cannot read 'DIR/missing.pem': No such file or directory"])
        #expect(tls(Self.certificate, nil) == ["t.conf:3:12: TLSKey: cannot read 'DIR/missing-key.pem': No such file or directory"])
        #expect(tls(Self.key, Self.certificate) == [
            "t.conf:2:18: TLSCertificate: 'DIR/cert.pem' holds no PEM certificate (-----BEGIN CERTIFICATE-----) (it holds PRIVATE KEY)",
            "t.conf:3:12: TLSKey: 'DIR/key.pem' holds no PEM private key (-----BEGIN PRIVATE KEY-----) (it holds CERTIFICATE)",
        ])
        #expect(tls("not pem at all\n", Self.key) == [
            "t.conf:2:18: TLSCertificate: 'DIR/cert.pem' holds no PEM certificate (-----BEGIN CERTIFICATE-----)"])
        #expect(tls("-----BEGIN CERTIFICATE-----\nMAIwAA==\n", Self.key) == [
            "t.conf:2:18: TLSCertificate: 'DIR/cert.pem': '-----BEGIN CERTIFICATE-----' on line 1 has no END line"])
        #expect(tls("-----BEGIN CERTIFICATE-----\nMAUwAA==\n-----END CERTIFICATE-----\n", Self.key) == [
            "t.conf:2:18: TLSCertificate: 'DIR/cert.pem': CERTIFICATE on line 1 is not DER (truncated or damaged)"])
        #expect(tls("-----BEGIN CERTIFICATE-----\nMA*wAA==\n-----END CERTIFICATE-----\n", Self.key) == [
            "t.conf:2:18: TLSCertificate: 'DIR/cert.pem': CERTIFICATE on line 1 is not base64"])
        #expect(tls(Self.certificate, "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMAMCAQA=\n-----END ENCRYPTED PRIVATE KEY-----\n").first?
            .hasPrefix("t.conf:3:12: TLSKey: 'DIR/key.pem' holds an encrypted private key") == true)
        #expect(tls(Self.certificate, "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nMAMCAQA=\n-----END RSA PRIVATE KEY-----\n").first?
            .hasPrefix("t.conf:3:12: TLSKey: 'DIR/key.pem' holds an encrypted private key") == true)
    }

    @Test func templatesDirMustBeADirectory() throws {
        #expect(errors("[Notifier]\nTemplatesDir = /nonexistent/templates") ==
                ["t.conf:2:16: TemplatesDir: cannot open directory '/nonexistent/templates': No such file or directory"])
        // A directory without the templates: one error for each that is missing.
        let empty = errors("[Notifier]\nTemplatesDir = /")
        #expect(empty.count == NotifyEvent.allCases.count * NotifyParty.allCases.count + 1)   // and the digest
        #expect(empty.first == "t.conf:2:16: TemplatesDir: cannot read '/virus-admin.txt': No such file or directory")
    }
}
