extension DowngradeWalk {
    /// A leaf part: left alone when its body is 7-bit; otherwise its content is encoded and its
    /// Content-Transfer-Encoding fields rewritten (or one added). A body already declared
    /// base64 or quoted-printable that holds stray 8-bit octets is encoded again the same way,
    /// from what readers decode (§6.8 ignores octets outside the alphabet; QP readers pass them
    /// through), and keeps its header.
    package mutating func leaf(_ header: MIMEPartHeader, _ layout: EntityHeaderLayout, type: String,
                               isMessage: Bool, depth: Int) throws(EightBitRefusal) -> MIMEWalk.Delimiter? {
        let found = walk.boundaries.isEmpty ? nil : walk.nextDelimiter(from: header.bodyStart)
        let end = found.map { walk.bodyEnd(before: $0.lineStart, notBefore: header.bodyStart) } ?? buffer.count
        let body = header.bodyStart..<end
        guard EightBitScan.contains(buffer, body) else { return found }
        if let sealed { throw EightBitRefusal(.sealed, "8-bit octets inside \(sealed)") }
        try Self.checkEncodable(type, header: header, transferEncoding: layout.transferEncoding)
        if type == "message/global", Self.isIdentity(layout.transferEncoding) {
            try checkEndsAtItsDelimiter(header, found: found, depth: depth)
        }

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
        // A header that the body's first line ended (no empty line; readers take a line without
        // a colon as the body) gets its empty line: encoded, that line may well hold a colon
        // (a bare LF became =0A and joined the next line) and would read as a header field.
        let separator: [UInt8] = layout.end == body.lowerBound ? [0x0D, 0x0A] : []
        edits.append(Edit(range: body, bytes: separator + encoded))
        if !keepsHeader { label(layout, encoding: encoding, isMessage: isMessage) }
        conversions.append(EightBitDowngrade.Conversion(contentType: type, encoding: encoding))
        return found
    }

    /// A message/global encoded whole ends at the first delimiter of an enclosing multipart. The
    /// scanner walks into it and lets a multipart inside reuse an enclosing boundary (innermost
    /// first), so for the scanner such a part may end further on: encoded, its parts would move
    /// out of it. RFC 2046 §5.1.1 forbids the reuse; rather than pick a reading, refuse.
    private mutating func checkEndsAtItsDelimiter(_ header: MIMEPartHeader, found: MIMEWalk.Delimiter?, depth: Int) throws(EightBitRefusal) {
        var scanner = walk
        let end = scanner.entity(from: header.bodyStart, depth: depth + 1, defaultType: "text/plain") { (_: MIMEPart) throws(Never) in }
        guard end?.lineStart == found?.lineStart else {
            throw EightBitRefusal(.composite, "8-bit octets in a message/global whose parts reuse an enclosing boundary")
        }
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
