import PosternMIME

/// quoted-printable and base64 as senderd's 8-bit conversion writes them and as the scanner
/// reads them (RFC 2045 §6.7, §6.8).
///
/// Invariants: encode then decode gives the input back; encoded output is 7-bit, in lines of
/// at most 76 characters, and no QP line that starts after a soft break starts with "-";
/// decoding with a limit gives a prefix of the full decoding, never more than the limit.
enum TransferEncodingFuzz {
    static func run(_ data: UnsafeRawBufferPointer) throws(FuzzFailure) {
        let input = [UInt8](data)
        for encoding in [TransferEncoding.base64, .quotedPrintable] {
            var encoded: [UInt8] = []
            encoding.encode(input[...], into: &encoded)
            try expect(encoded.allSatisfy { $0 < 0x80 }, "\(encoding.token) output is not 7-bit")
            var afterSoftBreak = false
            for line in encoded.split(separator: 0x0A, omittingEmptySubsequences: false) {
                let content = line.last == 0x0D ? line.dropLast() : line
                try expect(content.count <= EightBitDefaults.maxEncodedLine, "\(encoding.token) line of \(content.count) characters")
                try expect(!content.contains(0x0D), "\(encoding.token) output holds a bare CR")
                if encoding == .quotedPrintable {
                    try expect(!(afterSoftBreak && content.first == 0x2D), "a QP line after a soft break starts with '-'")
                    afterSoftBreak = content.last == 0x3D
                }
            }
            let decoded = encoding == .base64 ? TransferDecoding.base64(encoded) : TransferDecoding.quotedPrintable(encoded)
            try expect(decoded == input, "\(encoding.token) round trip changed \(show(input)) into \(show(decoded))")
        }
        // Arbitrary input to the decoders, with and without a limit.
        var chunker = Chunker(data)
        let limit = Int(chunker.next() % 64)
        for decode in [TransferDecoding.base64 as ([UInt8], Int) -> [UInt8], TransferDecoding.quotedPrintable] {
            let full = decode(input, .max)
            let head = decode(input, limit)
            try expect(head.count <= limit && full.starts(with: head), "decoding with limit \(limit) is not a prefix")
            try expect(full.count <= input.count, "decoding grew \(input.count) octets to \(full.count)")
        }
    }
}
