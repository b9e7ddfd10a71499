import PosternMIME

/// One structured field value (Content-Type, Content-Disposition) and RFC 2047 words in it.
///
/// Invariants: no crash; no blow-up (what comes out is never much longer than what went in);
/// the preferred value of an attribute comes first in `values(of:)`.
enum MIMEHeaderFuzz {
    static func run(_ data: UnsafeRawBufferPointer) throws(FuzzFailure) {
        let bytes = [UInt8](data)
        let value = MIMEHeaderValue.parse(bytes)
        // An input octet becomes at most a three-octet U+FFFD (or two for Latin-1).
        let bound = 3 * bytes.count + 3
        try expect(value.value.utf8.count <= bound, "token of \(value.value.utf8.count) octets from \(bytes.count)")
        for (attribute, text) in value.parameters {
            try expect(attribute.utf8.count <= bound, "attribute of \(attribute.utf8.count) octets from \(bytes.count)")
            try expect(text.utf8.count <= bound, "parameter \(show(attribute)) decodes to \(text.utf8.count) octets from \(bytes.count)")
            try expect(value.values(of: attribute).first == text, "values(of:) does not start with the preferred value")
            let decoded = EncodedWord.decode(text)
            try expect(decoded.utf8.count <= 3 * text.utf8.count + 3, "encoded words in \(show(text)) decode to \(decoded.utf8.count) octets")
        }
        let text = String(decoding: bytes, as: UTF8.self)
        let decoded = EncodedWord.decode(text)
        try expect(decoded.utf8.count <= 3 * text.utf8.count + 3, "encoded words decode to \(decoded.utf8.count) octets from \(text.utf8.count)")
    }
}
