import PosternUtil
/// The fields of one entity header the walker needs, and where the body starts.
/// - SeeAlso: RFC 2045 §5–6, RFC 2183 §2
package struct MIMEPartHeader {
    /// Every Content-Type field, in order. The structure is walked by the first; the names in
    /// all of them are checked, as clients differ on which of repeated fields they read.
    package var contentTypes: [MIMEHeaderValue]
    /// Every Content-Disposition field, in order.
    package var dispositions: [MIMEHeaderValue]
    package var transferEncoding: MIMETransferEncoding
    /// After the empty line; where a delimiter or a non-field line cut the header short; or the end.
    package var bodyStart: Int

    package init(contentTypes: [[UInt8]], dispositions: [[UInt8]], transferEncoding: [UInt8]?, bodyStart: Int) {
        self.contentTypes = contentTypes.map(MIMEHeaderValue.parse)
        self.dispositions = dispositions.map(MIMEHeaderValue.parse)
        self.transferEncoding = MIMETransferEncoding(token: transferEncoding.map { MIMEHeaderValue.parse($0).value } ?? "")
        self.bodyStart = bodyStart
    }

    package var contentType: MIMEHeaderValue? { contentTypes.first }

    package var boundary: [UInt8]? { contentType.flatMap(Self.boundary) }

    /// boundary := 0*69<bchars> bcharsnospace (RFC 2046 §5.1.1); trailing spaces dropped, as
    /// delimiter lines are matched without them.
    package static func boundary(_ type: MIMEHeaderValue) -> [UInt8]? {
        guard let value = type.parameters["boundary"] else { return nil }
        var bytes = Array(value.utf8)
        while let last = bytes.last, ASCII.isSpace(last) { bytes.removeLast() }
        return bytes.isEmpty ? nil : bytes
    }

    /// A Content-Type after the first names a multipart boundary other than `walked`, the one
    /// the body is split by (nil when it is not walked as a multipart).
    package func namesOtherBoundary(than walked: [UInt8]?) -> Bool {
        contentTypes.dropFirst().contains { type in
            guard type.value.hasPrefix("multipart/"), let boundary = Self.boundary(type) else { return false }
            return boundary != walked
        }
    }

    /// Content-Disposition `filename` (RFC 2183 §2.3), then Content-Type `name` (RFC 2046 §4.5.1,
    /// deprecated but still what many clients show), from every such field, RFC 2047 words decoded.
    package var fileNames: [String] {
        let raw = dispositions.flatMap { $0.values(of: "filename") } + contentTypes.flatMap { $0.values(of: "name") }
        var names: [String] = []
        for value in raw {
            let name = EncodedWord.decode(value)
            if !name.isEmpty, !names.contains(name) { names.append(name) }
        }
        return names
    }
}
