import Glibc
import PosternMIME
@testable import PosternPolicy
import PosternSMTP
import PosternSpool
import PosternTestSupport
import PosternUtil
import Testing

/// Addresses: parse, print, macros.
@Suite struct EndpointTests {
    @Test(arguments: [
        ("inet:10024@127.0.0.1", "inet:10024@127.0.0.1"),
        ("smtp:inet:25@mx.example.com", "inet:25@mx.example.com"),
        ("LMTP:local:/run/dovecot/lmtp", "lmtp:local:/run/dovecot/lmtp"),
        ("lmtp:inet:24@127.0.0.1", "lmtp:inet:24@127.0.0.1"),
        ("inet:25@[::1]", "inet:25@[::1]"),
        ("inet:25@[2001:db8::1]", "inet:25@[2001:db8::1]"),
        ("inet:10025@client-ip", "inet:10025@CLIENT-IP"),
        ("inet:10025@SERVER-IP", "inet:10025@SERVER-IP"),
        ("unix:/tmp/socket", "local:/tmp/socket"),
        ("local:./var/run/scannerd.sock", "local:./var/run/scannerd.sock"),
        ("inet:65535@localhost", "inet:65535@localhost"),
    ])
    func roundTrip(text: String, canonical: String) throws {
        let endpoint = try Endpoint.parse(text)
        #expect(endpoint.description == canonical)
        #expect(try Endpoint.parse(canonical) == endpoint)
    }

    @Test func parts() throws {
        let endpoint = try Endpoint.parse("lmtp:inet:24@[2001:db8::1]")
        #expect(endpoint.mailProtocol == .lmtp)
        #expect(endpoint.location == .inet(host: "2001:db8::1", port: 24))
        #expect(try Endpoint.parse("local:/x").location == .unix(path: "/x"))
    }

    @Test(arguments: [
        ("tcp:25@host", EndpointError(.unknownScheme, offset: 0)),
        ("lmtp:tcp:25@host", EndpointError(.unknownScheme, offset: 5)),
        ("smtp:lmtp:inet:25@host", EndpointError(.unknownScheme, offset: 5)),   // one prefix at most
        ("inet:25", EndpointError(.missingAt, offset: 5)),
        ("inet:0@host", EndpointError(.invalidPort, offset: 5)),
        ("inet:65536@host", EndpointError(.invalidPort, offset: 5)),
        ("inet:x@host", EndpointError(.invalidPort, offset: 5)),
        ("inet:25@", EndpointError(.missingHost, offset: 8)),
        ("inet:25@300.1.1.1", EndpointError(.invalidIPv4, offset: 8)),
        ("inet:25@[::g]", EndpointError(.invalidIPv6, offset: 8)),
        ("inet:25@[::1", EndpointError(.invalidIPv6, offset: 8)),
        ("inet:25@[::1\0x]", EndpointError(.invalidIPv6, offset: 8)),   // inet_pton would stop at the NUL
        ("inet:25@::1", EndpointError(.unbracketedIPv6, offset: 8)),
        ("inet:25@bad host", EndpointError(.invalidHost, offset: 11)),
        ("local:", EndpointError(.missingPath, offset: 6)),
        ("local:/" + String(repeating: "a", count: 107), EndpointError(.pathTooLong, offset: 6)),
    ])
    func errors(text: String, expected: EndpointError) {
        #expect(throws: expected) { try Endpoint.parse(text) }
    }

    @Test(arguments: [
        ("192.0.2.7", "inet:10025@192.0.2.7"),
        ("2001:db8::7", "inet:10025@[2001:db8::7]"),
        ("[2001:db8::7]", "inet:10025@[2001:db8::7]"),
        ("::ffff:192.0.2.7", "inet:10025@192.0.2.7"),
        ("::1", "inet:10025@[::1]"),
    ])
    func clientIPSubstitution(ip: String, expected: String) throws {
        let endpoint = try Endpoint.parse("inet:10025@CLIENT-IP")
        #expect(endpoint.hasMacros)
        let substituted = endpoint.substituting(clientIP: ip, serverIP: "198.51.100.1")
        #expect(substituted.description == expected)
        #expect(!substituted.hasMacros)
        #expect(try Endpoint.parse(substituted.description) == substituted)
    }

    @Test func serverIPAndMissingAddresses() throws {
        let server = try Endpoint.parse("lmtp:inet:24@SERVER-IP")
        #expect(server.substituting(clientIP: "192.0.2.7", serverIP: "2001:db8::25").description == "lmtp:inet:24@[2001:db8::25]")
        #expect(server.substituting(clientIP: "192.0.2.7", serverIP: nil) == server)
        let plain = try Endpoint.parse("inet:25@127.0.0.1")
        #expect(!plain.hasMacros)
        #expect(plain.substituting(clientIP: "192.0.2.7", serverIP: "192.0.2.8") == plain)
        let local = try Endpoint.parse("local:/run/x")
        #expect(local.substituting(clientIP: "192.0.2.7", serverIP: nil) == local)
    }
}

/// `posternctl run`'s listening sockets (``Endpoint/listen(backlog:)``).
@Suite struct EndpointListenTests {
    /// A unix socket replaces a socket left at its path, never a file: a path mistyped onto
    /// the configuration file once deleted it.
    @Test func aUnixListenerReplacesAStaleSocketButNotAFile() throws {
        let dir = ConfigTestDirectory()
        let path = dir.path + "/run/lmtp.sock"
        defer { unlink(path); rmdir(dir.path + "/run"); dir.remove() }
        let endpoint = Endpoint(location: .unix(path: path))
        close(try endpoint.listen())   // the socket file stays, as after a daemon that was killed
        let fd = try endpoint.listen()
        defer { close(fd) }
        var st = stat()
        #expect(stat(path, &st) == 0 && st.st_mode & S_IFMT == S_IFSOCK && st.st_mode & 0o777 == 0o660)
        let file = dir.write("postern.conf", "[General]\n")
        #expect { try Endpoint(location: .unix(path: file)).listen() } throws: { ($0 as? SpoolError)?.description == "bind \(file): File exists" }
        #expect(try TextFile.read(file) == "[General]\n")
    }

    @Test func anInetListenerListensWithItsBacklog() throws {
        let fd = try Endpoint(location: .inet(host: "127.0.0.1", port: 0)).listen(backlog: 77)
        defer { close(fd) }
        var info = tcp_info()
        var size = socklen_t(MemoryLayout<tcp_info>.size)
        #expect(getsockopt(fd, Int32(IPPROTO_TCP), TCP_INFO, &info, &size) == 0)
        #expect(info.tcpi_state == UInt8(TCP_LISTEN) && info.tcpi_sacked == 77)
    }
}
