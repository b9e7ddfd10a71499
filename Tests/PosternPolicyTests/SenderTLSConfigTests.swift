import Glibc
import PosternMIME
@testable import PosternPolicy
import PosternSMTP
import PosternSpool
import PosternTestSupport
import PosternUtil
import Testing

/// `[Sender]` TLS and AUTH keys: values, the files they name (read at load), and errors with
/// their positions.
@Suite struct SenderTLSConfigTests {
    static let certificate = """
        subject=CN = test
        -----BEGIN CERTIFICATE-----
        MAMCAQA=
        -----END CERTIFICATE-----

        """
    static let key = "-----BEGIN PRIVATE KEY-----\nMAMCAQA=\n-----END PRIVATE KEY-----\n"

    func parse(_ text: String, in dir: ConfigTestDirectory) throws(ConfigErrors) -> PosternConfig {
        try PosternConfig.parse(text, path: dir.path + "/postern.conf")
    }

    func messages(_ text: String, in dir: ConfigTestDirectory) -> [String] {
        do {
            _ = try parse(text, in: dir)
            return []
        } catch {
            return error.errors.map(\.description)
        }
    }

    @Test func defaults() throws {
        let sender = try PosternConfig.parse("", path: "t").sender
        #expect(sender.tls == .may)
        #expect(sender.tlsCAFile == nil && sender.tlsCertificate == nil && sender.tlsKey == nil)
        #expect(sender.tlsServerName == nil && sender.authFile == nil && sender.authWithoutTLS.isEmpty)
    }

    @Test func everyKeyWithRelativeFiles() throws {
        let dir = ConfigTestDirectory()
        defer { dir.remove() }
        dir.write("ca.pem", Self.certificate + Self.certificate)
        dir.write("client.pem", Self.certificate)
        dir.write("client.key", Self.key)
        chmod(dir.write("sasl_passwd", "# comment\n[smtp.example.net]:587  user:pa ss:word\n\nmx.example.org other:x\n"), 0o600)
        let config = try parse("""
            [Sender]
            TLS = Verify
            TLSCAFile = ca.pem
            TLSCertificate = client.pem
            TLSKey = client.key
            TLSServerName = MTA.example.com
            AuthFile = sasl_passwd
            AuthWithoutTLS = 10.0.0.5, inet:25@[2001:db8::1]
            """, in: dir)
        let s = config.sender
        #expect(s.tls == .verify)
        #expect(s.tlsCAFile?.path == dir.path + "/ca.pem" && s.tlsCAFile?.blocks == 2)
        #expect(s.tlsCertificate?.blocks == 1 && s.tlsKey?.blocks == 1)
        #expect(s.tlsServerName == "mta.example.com")
        #expect(s.authWithoutTLS == [.host("10.0.0.5"), .location(.inet(host: "2001:db8::1", port: 25))])
        let auth = try #require(s.authFile)
        let submission = try Endpoint.parse("inet:587@SMTP.example.net")
        #expect(auth.credentials(for: submission) == SASLCredentials(username: "user", password: "pa ss:word"))
        #expect(auth.credentials(for: try Endpoint.parse("inet:25@smtp.example.net")) == nil)
        #expect(auth.credentials(for: try Endpoint.parse("lmtp:inet:24@mx.example.org"))?.username == "other")
    }

    @Test(arguments: [
        ("TLS = sometimes", "t:2:7: invalid TLS 'sometimes': expected none, may, encrypt or verify"),
        ("TLSServerName = 192.0.2.1", "t:2:17: invalid TLSServerName '192.0.2.1': expected a host name such as mx.example.com"),
        ("TLSServerName = bad_name.example", "t:2:17: invalid TLSServerName 'bad_name.example': expected a host name such as mx.example.com"),
        ("AuthWithoutTLS = inet:25@CLIENT-IP", "t:2:26: CLIENT-IP and SERVER-IP cannot be used here"),
        ("AuthWithoutTLS = client-ip", "t:2:18: CLIENT-IP and SERVER-IP cannot be used here"),
        ("AuthWithoutTLS = [mx.example.net]x", "t:2:34: invalid port: expected a number from 1 to 65535"),
    ])
    func valueErrors(_ line: String, _ expected: String) {
        do {
            _ = try PosternConfig.parse("[Sender]\n" + line, path: "t")
            Issue.record("accepted \(line)")
        } catch {
            #expect(error.errors.map(\.description) == [expected])
        }
    }

    @Test func missingAndWrongFilesAreReportedAtTheirKeys() {
        let dir = ConfigTestDirectory()
        defer { dir.remove() }
        dir.write("key-as-cert.pem", Self.key)
        dir.write("cert-as-key.pem", Self.certificate)
        dir.write("truncated.pem", "-----BEGIN CERTIFICATE-----\nMAMCAQA=\n")
        let got = messages("""
            [Sender]
            TLSCAFile = missing.pem
            TLSCertificate = key-as-cert.pem
            TLSKey = cert-as-key.pem
            """, in: dir)
        let conf = dir.path + "/postern.conf"
        #expect(got == [
            "\(conf):2:13: TLSCAFile: cannot read '\(dir.path)/missing.pem': No such file or directory",
            "\(conf):3:18: TLSCertificate: '\(dir.path)/key-as-cert.pem' holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
            "\(conf):4:10: TLSKey: '\(dir.path)/cert-as-key.pem' holds no PEM private key (-----BEGIN PRIVATE KEY-----)",
        ])
        #expect(messages("[Sender]\nTLSCAFile = truncated.pem", in: dir)
            == ["\(conf):2:13: TLSCAFile: '\(dir.path)/truncated.pem': the CERTIFICATE block has no END line"])
        dir.write("client.pem", Self.certificate)
        #expect(messages("[Sender]\nTLSCertificate = client.pem", in: dir)
            == ["\(conf):2:1: TLSCertificate and TLSKey must be given together"])
    }

    @Test func authFileReadableByOthersIsRefused() {
        let dir = ConfigTestDirectory()
        defer { dir.remove() }
        chmod(dir.write("sasl_passwd", "mx.example.org user:secret\n"), 0o640)
        let got = messages("[Sender]\nAuthFile = sasl_passwd", in: dir)
        #expect(got == ["\(dir.path)/postern.conf:2:12: AuthFile: '\(dir.path)/sasl_passwd' is accessible by group or others (mode 0640): chmod 600 it"])
        #expect(messages("[Sender]\nAuthFile = none", in: dir).first?.contains("cannot read") == true)
    }

    @Test func authFileErrorsPointIntoTheFileAndNeverShowThePassword() {
        let dir = ConfigTestDirectory()
        defer { dir.remove() }
        let file = dir.write("sasl_passwd", """
            mx.example.org user:secret1
              bad!host user:secret2
            [mx.example.net]:587 nocolon-secret3
            mx.example.org again:secret4
            lonely
            user:secret5
            """)
        chmod(file, 0o600)
        let got = messages("[Sender]\nAuthFile = \(file)", in: dir)
        #expect(got == [
            "\(file):2:6: invalid next hop: invalid character in host name",
            "\(file):3:22: expected username:password after the next hop",
            "\(file):4:1: next hop mx.example.org is already listed on line 1",
            "\(file):5:7: expected a next hop, then username:password",
            "\(file):6:13: expected a next hop, then username:password",
        ])
        #expect(!got.joined().contains("secret"))
    }

    @Test func credentialsNeverPrintTheirPassword() {
        let c = SASLCredentials(username: "user", password: "hunter2")
        var dumped = ""
        dump(c, to: &dumped)
        for text in [c.description, c.debugDescription, "\(c)", String(reflecting: c), dumped] {
            #expect(!text.contains("hunter2"), "\(text)")
        }
    }

    @Test(arguments: [
        ("inet:587@Smtp.Example.net", "inet:587@smtp.example.net"),
        ("lmtp:inet:24@10.0.0.5", "inet:24@10.0.0.5"),
        ("local:/run/relay.sock", "local:/run/relay.sock"),
        ("[smtp.example.net]:587", "inet:587@smtp.example.net"),
        ("[2001:db8::1]:25", "inet:25@[2001:db8::1]"),
        ("[mx.example.net]", "mx.example.net"),
        ("[2001:db8::1]", "[2001:db8::1]"),
        ("MX.example.net", "mx.example.net"),
    ])
    func nextHopMatchForms(_ text: String, _ canonical: String) throws {
        #expect(try NextHopMatch.parse(text).description == canonical)
    }
}
