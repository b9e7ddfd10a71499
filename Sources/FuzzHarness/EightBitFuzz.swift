import PosternMIME

/// senderd's conversion for a next hop without 8BITMIME (RFC 6152 §3).
///
/// Invariants: a message is refused with a reason or converted; a converted message is 7-bit,
/// its parts (walked as the scanner walks them, encoded messages decoded and walked into) have
/// the same types, names and decoded content as the original's, and every part that was 7-bit
/// is byte for byte what it was.
enum EightBitFuzz {
    struct Leaf: Equatable {
        var type: String
        var names: [String]
        var content: [UInt8]
    }

    static func run(_ data: UnsafeRawBufferPointer) throws(FuzzFailure) {
        let message = [UInt8](data)
        let result: EightBitDowngrade.Result?
        do {
            result = try EightBitDowngrade.convert(message)
        } catch {
            try expect(!error.hint.isEmpty, "a refusal without a reason")
            return
        }
        guard let result else {
            try expect(!message.contains { $0 >= 0x80 }, "an 8-bit message was left as it was")
            return
        }
        let out = result.message
        try expect(!out.contains { $0 >= 0x80 }, "the converted message is not 7-bit")
        let before = leaves(message, depth: 0)
        let after = leaves(out, depth: 0)
        try expect(before.count == after.count, "\(before.count) parts before, \(after.count) after")
        for (index, (old, new)) in zip(before, after).enumerated() {
            try expect(old.type == new.type, "part \(index): type \(old.type) became \(new.type)")
            try expect(old.names == new.names, "part \(index): names \(old.names) became \(new.names)")
            try expect(old.content == new.content, "part \(index) (\(old.type)) decodes to \(show(new.content)), was \(show(old.content))")
        }
        let oldParts = MIMEParser().parts(of: message), newParts = MIMEParser().parts(of: out)
        if oldParts.count == newParts.count {
            for (old, new) in zip(oldParts, newParts) where !old.encodedBody.contains(where: { $0 >= 0x80 }) && old.contentType == new.contentType {
                try expect(old.encodedBody.elementsEqual(new.encodedBody), "a 7-bit \(old.contentType) part changed")
            }
        }
    }

    /// The leaf parts with their content decoded. The conversion encodes a message/global part
    /// whole, which the walker then sees as a leaf: a transfer-encoded message/global or
    /// message/rfc822 (the two types the walker enters unencoded) is decoded and walked into.
    static func leaves(_ message: [UInt8], depth: Int) -> [Leaf] {
        var out: [Leaf] = []
        for part in MIMEParser().parts(of: message) {
            if part.contentType == "message/global" || part.contentType == "message/rfc822", part.transferEncoding != .identity, depth < 4 {
                out += leaves(part.decodedBody(), depth: depth + 1)
            } else {
                out.append(Leaf(type: part.contentType, names: part.fileNames, content: part.decodedBody()))
            }
        }
        return out
    }
}
