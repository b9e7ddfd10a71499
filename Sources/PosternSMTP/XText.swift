/// xtext (RFC 3461 §4): the encoding of ORCPT, ENVID and XFORWARD values — `+`, `=`,
/// controls, space and non-ASCII as `+HH`.
public enum XText {
    public static func encode(_ s: String) -> String {
        let hex = Array("0123456789ABCDEF")
        var out = ""
        for b in s.utf8 {
            if b > 32 && b < 127 && b != UInt8(ascii: "+") && b != UInt8(ascii: "=") {
                out.unicodeScalars.append(Unicode.Scalar(b))
            } else {
                out += "+\(hex[Int(b >> 4)])\(hex[Int(b & 15)])"
            }
        }
        return out
    }

    /// Decodes `+HH`; anything else is kept as it is.
    public static func decode<S: StringProtocol>(_ s: S) -> String {
        let x = Array(s.utf8)
        var out: [UInt8] = []
        var k = 0
        while k < x.count {
            if x[k] == UInt8(ascii: "+"), k + 2 < x.count,
               let v = UInt8(String(decoding: x[(k + 1)...(k + 2)], as: UTF8.self), radix: 16) {
                out.append(v)
                k += 3
            } else {
                out.append(x[k])
                k += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
