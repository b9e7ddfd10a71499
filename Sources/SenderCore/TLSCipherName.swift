/// Names of the cipher suites BoringSSL can negotiate, as OpenSSL (and so Postfix's log) spells
/// them, with their symmetric key bits; others are shown by code point.
package enum TLSCipherName {
    private static let known: [UInt16: (name: String, bits: Int)] = [
        0x1301: ("TLS_AES_128_GCM_SHA256", 128),
        0x1302: ("TLS_AES_256_GCM_SHA384", 256),
        0x1303: ("TLS_CHACHA20_POLY1305_SHA256", 256),
        0xC02B: ("ECDHE-ECDSA-AES128-GCM-SHA256", 128),
        0xC02C: ("ECDHE-ECDSA-AES256-GCM-SHA384", 256),
        0xC02F: ("ECDHE-RSA-AES128-GCM-SHA256", 128),
        0xC030: ("ECDHE-RSA-AES256-GCM-SHA384", 256),
        0xCCA8: ("ECDHE-RSA-CHACHA20-POLY1305", 256),
        0xCCA9: ("ECDHE-ECDSA-CHACHA20-POLY1305", 256),
        0xC009: ("ECDHE-ECDSA-AES128-SHA", 128),
        0xC00A: ("ECDHE-ECDSA-AES256-SHA", 256),
        0xC013: ("ECDHE-RSA-AES128-SHA", 128),
        0xC014: ("ECDHE-RSA-AES256-SHA", 256),
        0x009C: ("AES128-GCM-SHA256", 128),
        0x009D: ("AES256-GCM-SHA384", 256),
        0x002F: ("AES128-SHA", 128),
        0x0035: ("AES256-SHA", 256),
    ]

    /// `TLS_AES_256_GCM_SHA384 (256/256 bits)`, as Postfix writes it.
    package static func describe(_ code: UInt16?) -> String {
        guard let code else { return "unknown cipher" }
        guard let entry = known[code] else { return "0x" + String(code, radix: 16, uppercase: true) }
        return "\(entry.name) (\(entry.bits)/\(entry.bits) bits)"
    }
}
