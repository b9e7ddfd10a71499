/// The fields of one entity header the walker needs, and where the body starts.
/// - SeeAlso: RFC 2045 §5–6, RFC 2183 §2
struct MIMEPartHeader {
    var contentType: MIMEHeaderValue?
    var disposition: MIMEHeaderValue?
    var transferEncoding: MIMETransferEncoding
    /// After the empty line; where a delimiter or a non-field line cut the header short; or the end.
    var bodyStart: Int

    init(contentType: [UInt8]?, disposition: [UInt8]?, transferEncoding: [UInt8]?, bodyStart: Int) {
        self.contentType = contentType.map(MIMEHeaderValue.parse)
        self.disposition = disposition.map(MIMEHeaderValue.parse)
        self.transferEncoding = MIMETransferEncoding(token: transferEncoding.map { MIMEHeaderValue.parse($0).value } ?? "")
        self.bodyStart = bodyStart
    }

    /// boundary := 0*69<bchars> bcharsnospace (RFC 2046 §5.1.1); trailing spaces dropped, as
    /// delimiter lines are matched without them.
    var boundary: [UInt8]? {
        guard let value = contentType?.parameters["boundary"] else { return nil }
        var bytes = Array(value.utf8)
        while let last = bytes.last, ASCII.isSpace(last) { bytes.removeLast() }
        return bytes.isEmpty ? nil : bytes
    }

    /// Content-Disposition `filename` (RFC 2183 §2.3), then Content-Type `name` (RFC 2046 §4.5.1,
    /// deprecated but still what many clients show), RFC 2047 words decoded.
    var fileNames: [String] {
        let raw = (disposition?.values(of: "filename") ?? []) + (contentType?.values(of: "name") ?? [])
        var names: [String] = []
        for value in raw {
            let name = EncodedWord.decode(value)
            if !name.isEmpty, !names.contains(name) { names.append(name) }
        }
        return names
    }
}
