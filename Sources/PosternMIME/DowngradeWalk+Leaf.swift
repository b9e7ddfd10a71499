extension DowngradeWalk {
    /// A leaf part: left alone when its body is 7-bit; otherwise its content is encoded and its
    /// Content-Transfer-Encoding fields rewritten (or one added). A body already declared
    /// base64 or quoted-printable that holds stray 8-bit octets is encoded again the same way,
    /// from what readers decode (§6.8 ignores octets outside the alphabet; QP readers pass them
    /// through), and keeps its header.
    package mutating func leaf(_ header: MIMEPartHeader, _ layout: EntityHeaderLayout, type: String,
                       isMessage: Bool) throws(EightBitRefusal) -> MIMEWalk.Delimiter? {
        let found = walk.boundaries.isEmpty ? nil : walk.nextDelimiter(from: header.bodyStart)
        let end = found.map { walk.bodyEnd(before: $0.lineStart, notBefore: header.bodyStart) } ?? buffer.count
        let body = header.bodyStart..<end
        guard EightBitScan.contains(buffer, body) else { return found }
        if let sealed { throw EightBitRefusal(.sealed, "8-bit octets inside \(sealed)") }
        try Self.checkEncodable(type, header: header, transferEncoding: layout.transferEncoding)

        let mechanism = layout.transferEncoding
        var content: [UInt8]
        var encoding: TransferEncoding
        var keepsHeader = false
        switch mechanism {
        case "", "7bit", "8bit":
            content = Array(buffer[body])
            encoding = Self.choose(for: content, type: type)
        case "binary":
            // Octets, not lines: a CRLF in it is data, which quoted-printable would turn into a line break.
            content = Array(buffer[body])
            encoding = .base64
        case "base64":
            content = TransferDecoding.base64(Array(buffer[body]))
            encoding = .base64
            keepsHeader = true
        case "quoted-printable":
            content = TransferDecoding.quotedPrintable(Array(buffer[body]))
            encoding = .quotedPrintable
            keepsHeader = true
        default:
            throw EightBitRefusal(.unknownEncoding, "8-bit octets in a \(type) part in Content-Transfer-Encoding \(mechanism)")
        }
        var encoded: [UInt8] = []
        encoding.encode(content[...], into: &encoded)
        if encoding == .quotedPrintable, startsDelimiterLikeLine(encoded) {
            // A line of the text would read as a delimiter once the part is 7-bit (a prefix
            // match is enough for some readers); base64 lines never start with "-".
            encoded.removeAll(keepingCapacity: true)
            encoding = .base64
            encoding.encode(content[...], into: &encoded)
            keepsHeader = false
        }
        edits.append(Edit(range: body, bytes: encoded))
        if !keepsHeader { label(layout, encoding: encoding, isMessage: isMessage) }
        conversions.append(EightBitDowngrade.Conversion(contentType: type, encoding: encoding))
        return found
    }

    /// RFC 2045 §6.4: a multipart or message cannot be encoded as a whole, only its parts; a
    /// part typed composite that the walk did not enter has no parts to encode. message/global
    /// and its kin may be encoded (RFC 6532 §3.7, RFC 6533 §6).
    package static func checkEncodable(_ type: String, header: MIMEPartHeader, transferEncoding: String) throws(EightBitRefusal) {
        if type.hasPrefix("message/global") { return }
        if type.hasPrefix("multipart/") {
            let why = header.boundary == nil ? "without a boundary" : "nested deeper than \(EightBitDefaults.maxDepth) levels"
            throw EightBitRefusal(header.boundary == nil ? .composite : .tooDeep, "8-bit octets in a \(type) \(why)")
        }
        if type == "message/rfc822" && isIdentity(transferEncoding) {
            throw EightBitRefusal(.tooDeep, "8-bit octets in a message/rfc822 nested deeper than \(EightBitDefaults.maxDepth) levels")
        }
        if type.hasPrefix("message/") {
            throw EightBitRefusal(.composite, "8-bit octets in a \(type) part, which cannot be encoded")
        }
    }

    /// Text that is mostly ASCII goes quoted-printable, so it stays readable; anything else
    /// base64 (sendmail's rule, ``EightBitDefaults/base64Share``). Only text: QP line breaks
    /// mean CRLF in text alone (RFC 2045 §6.7 rule 4). A NUL is never text.
    package static func choose(for content: [UInt8], type: String) -> TransferEncoding {
        guard type.hasPrefix("text/") || type.hasPrefix("message/global") else { return .base64 }
        var high = 0
        for byte in content {
            if byte >= 0x80 { high += 1 } else if byte == 0 { return .base64 }
        }
        return high * EightBitDefaults.base64Share > content.count ? .base64 : .quotedPrintable
    }

    /// A line of `encoded` starts with "--" and an open boundary.
    private func startsDelimiterLikeLine(_ encoded: [UInt8]) -> Bool {
        var line = 0
        while line < encoded.count {
            if encoded.count - line > 2, encoded[line] == 0x2D, encoded[line + 1] == 0x2D {
                for boundary in walk.boundaries where encoded[(line + 2)...].starts(with: boundary) { return true }
            }
            guard let lf = encoded[line...].firstIndex(of: 0x0A) else { break }
            line = lf + 1
        }
        return false
    }

    /// The new Content-Transfer-Encoding, in place of the old fields or added at the end of the
    /// header; a message header without MIME-Version gets one, without which readers need not
    /// look at the encoding (RFC 2045 §4).
    private mutating func label(_ layout: EntityHeaderLayout, encoding: TransferEncoding, isMessage: Bool) {
        var added: [UInt8] = []
        if isMessage && !layout.hasMIMEVersion { added += Array("MIME-Version: 1.0\r\n".utf8) }
        if layout.transferEncodings.isEmpty {
            added += Array("Content-Transfer-Encoding: \(encoding.token)\r\n".utf8)
        } else {
            rewrite(layout.transferEncodings, to: encoding.token)
        }
        if !added.isEmpty { edits.append(Edit(range: layout.end..<layout.end, bytes: added)) }
    }
}
