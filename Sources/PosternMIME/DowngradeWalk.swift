/// The converter's pass over one message. It sees the structure the attachments scanner sees
/// (the same header parser, line and delimiter code, through ``MIMEWalk``) and writes down
/// what must change as edits: parts with 8-bit octets re-encoded, their
/// Content-Transfer-Encoding fields rewritten, composite entities around them relabelled 7bit.
/// Everything else is copied as it is when the edits are applied.
/// - SeeAlso: RFC 6152 §3, RFC 2045 §6.4, RFC 2046 §5
package struct DowngradeWalk {
    /// Replace `range` of the message with `bytes` (an insertion when the range is empty).
    package struct Edit {
        package let range: Range<Int>
        package let bytes: [UInt8]
    }

    package var walk: MIMEWalk
    package var edits: [Edit] = []
    package var conversions: [EightBitDowngrade.Conversion] = []
    /// The multipart/signed or /encrypted being walked: nothing inside it may change.
    package var sealed: String?

    package var buffer: UnsafeBufferPointer<UInt8> { walk.buffer }

    package init(buffer: UnsafeBufferPointer<UInt8>, source: [UInt8]) {
        walk = MIMEWalk(buffer: buffer, source: source, maxDepth: EightBitDefaults.maxDepth)
    }

    /// entity := header [CRLF body] (RFC 2045 §3), walked as ``MIMEWalk/entity`` walks it,
    /// except that message/global is a leaf: RFC 6532 §3.7 lets it be encoded whole, which is
    /// the only way its UTF-8 header fields can cross a 7-bit hop. Returns the delimiter that
    /// ended the entity, nil at the end of input.
    package mutating func entity(from start: Int, depth: Int, defaultType: String, isMessage: Bool) throws(EightBitRefusal) -> MIMEWalk.Delimiter? {
        let header = walk.parseHeader(from: start)
        let layout = EntityHeaderLayout(walk, from: start, to: header.bodyStart)
        if let field = layout.eightBitField {
            throw EightBitRefusal(.headerField, "8-bit octets in header field \(field)")
        }
        let type = header.contentType.map(\.value).flatMap { $0.contains("/") ? $0 : nil } ?? defaultType
        let before = edits.count
        let found: MIMEWalk.Delimiter?
        if type.hasPrefix("multipart/"), let boundary = header.boundary, depth < walk.maxDepth {
            let outer = sealed
            if type == "multipart/signed" || type == "multipart/encrypted" { sealed = outer ?? type }
            found = try multipart(from: header.bodyStart, type: type, boundary: boundary, depth: depth)
            sealed = outer
        } else if type == "message/rfc822", Self.isIdentity(layout.transferEncoding), depth < walk.maxDepth {
            found = try entity(from: header.bodyStart, depth: depth + 1, defaultType: "text/plain", isMessage: true)
        } else {
            return try leaf(header, layout, type: type, isMessage: isMessage, depth: depth)
        }
        if edits.count > before { try relabel(layout, type: type) }
        return found
    }

    /// A composite entity whose insides were converted is 7bit now (RFC 2045 §6.4: its own
    /// encoding can only be an identity one).
    private mutating func relabel(_ layout: EntityHeaderLayout, type: String) throws(EightBitRefusal) {
        switch layout.transferEncoding {
        case "", "7bit": return
        case "8bit", "binary": rewrite(layout.transferEncodings, to: "7bit")
        default:
            throw EightBitRefusal(.composite, "\(type) with Content-Transfer-Encoding \(layout.transferEncoding) holds 8-bit octets")
        }
    }

    /// Each Content-Transfer-Encoding field becomes `name: token` (the name as it was written);
    /// all of them, so that a reader of a later one does not see the old encoding.
    package mutating func rewrite(_ fields: [EntityHeaderLayout.Field], to token: String) {
        for field in fields {
            var bytes = Array(buffer[field.range.lowerBound...field.colon])
            bytes.append(0x20)
            bytes.append(contentsOf: token.utf8)
            bytes.append(contentsOf: [0x0D, 0x0A])
            edits.append(Edit(range: field.range, bytes: bytes))
        }
    }

    /// `mechanism` is one of the identity encodings, under which the body is the content.
    package static func isIdentity(_ mechanism: String) -> Bool {
        mechanism == "" || mechanism == "7bit" || mechanism == "8bit" || mechanism == "binary"
    }

    /// The message with every edit made, nothing else changed.
    package func apply() -> [UInt8] {
        // An insertion before the body of a header cut short starts where the body does: it goes first.
        let sorted = edits.sorted { ($0.range.lowerBound, $0.range.isEmpty ? 0 : 1) < ($1.range.lowerBound, $1.range.isEmpty ? 0 : 1) }
        var out: [UInt8] = []
        out.reserveCapacity(buffer.count + sorted.reduce(0) { $0 + max(0, $1.bytes.count - $1.range.count) })
        var at = 0
        for edit in sorted {
            precondition(edit.range.lowerBound >= at, "overlapping MIME edits")
            out.append(contentsOf: buffer[at..<edit.range.lowerBound])
            out.append(contentsOf: edit.bytes)
            at = edit.range.upperBound
        }
        out.append(contentsOf: buffer[at...])
        return out
    }
}
