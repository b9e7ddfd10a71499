import PosternTestSupport
@testable import PosternUtil
import Testing

/// Networks and addresses, IPv4, IPv6 and IPv4-mapped.
@Suite struct CIDRTests {
    @Test(arguments: [
        ("10.0.0.0/8", "10.1.2.3", true),
        ("10.0.0.0/8", "11.0.0.1", false),
        ("127.0.0.1", "127.0.0.1", true),
        ("127.0.0.1", "127.0.0.2", false),
        ("192.0.2.0/24", "::ffff:192.0.2.9", true),
        ("192.0.2.0/24", "[::ffff:192.0.2.9]", true),
        ("0.0.0.0/0", "203.0.113.5", true),
        ("0.0.0.0/0", "2001:db8::1", false),
        ("::1/128", "::1", true),
        ("::1/128", "::2", false),
        ("[::1]/128", "::1", true),
        ("[2001:db8::1]", "2001:db8::1", true),
        ("2001:db8::/32", "2001:db8:ffff::1", true),
        ("2001:db8::/32", "2001:db9::1", false),
        ("2001:db8::/33", "2001:db8:8000::1", false),
        ("fe80::/10", "fe80::1%eth0", true),
        ("::/0", "2001:db8::1", true),
        ("::ffff:0:0/96", "198.51.100.7", true),
        ("10.1.2.3/8", "10.200.0.1", true),
        ("10.0.0.0/8", "not-an-ip", false),
        ("10.0.0.0/8", "", false),
        ("172.16.0.0/12", "172.31.255.255", true),
        ("172.16.0.0/12", "172.32.0.0", false),
    ])
    func contains(network: String, ip: String, expected: Bool) throws {
        let cidr = try #require(CIDR(network))
        #expect(cidr.contains(ip) == expected)
    }

    @Test(arguments: ["", "10.0.0.0/33", "::1/129", "10.0.0.0/", "10.0.0/8", "10.0.0.0/-1", "host/8", "1.2.3.4/a", "[::1"])
    func invalid(text: String) {
        #expect(CIDR(text) == nil)
    }

    @Test(arguments: [
        ("10.1.2.3/8", "10.0.0.0/8"), ("127.0.0.1", "127.0.0.1/32"), ("[::1]/128", "::1/128"),
        ("2001:DB8::1/32", "2001:db8::/32"), ("::ffff:192.0.2.1", "192.0.2.1/32"),
    ])
    func description(text: String, expected: String) throws {
        #expect(try #require(CIDR(text)).description == expected)
    }

    @Test func addresses() throws {
        #expect(IPAddress("192.0.2.7")?.isIPv4 == true)
        #expect(IPAddress("::ffff:192.0.2.7") == IPAddress("192.0.2.7"))
        #expect(IPAddress("2001:db8::7")?.isIPv4 == false)
        #expect(IPAddress("2001:0db8:0:0::7")?.description == "2001:db8::7")
        #expect(IPAddress("1.2.3") == nil)
        #expect(IPAddress("example.com") == nil)
    }

    /// Found by the value-syntax fuzz target (Fuzz/Regressions/value-syntax/): inet_pton stopped
    /// at the NUL and the text before it was taken for the whole address.
    @Test(arguments: ["192.0.2.7\0junk", "::1\0", "[2001:db8::1]\0", "10.0.0.0\0/8"])
    func nulIsNotAnAddress(text: String) {
        #expect(IPAddress(text) == nil)
        #expect(CIDR(text) == nil)
    }
}
