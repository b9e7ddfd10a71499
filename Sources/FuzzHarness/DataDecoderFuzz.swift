import NIOCore
import PosternSMTP

/// The DATA and BDAT paths of receiverd and the DATA encoder of senderd.
///
/// Invariants:
/// - DataDecoder agrees with a line-by-line reference of RFC 5321 §4.5.2 on where data ends,
///   the message bytes, bare CR/LF and the longest line, and does not depend on the chunking;
/// - DotStuffer's output decodes to the input (plus the CRLF it adds to an unterminated
///   message) and ends exactly at its own terminator, for any input;
/// - BDAT chunks are copied unchanged and flagged like DATA.
enum DataDecoderFuzz {
    static func run(_ data: UnsafeRawBufferPointer) throws(FuzzFailure) {
        let input = [UInt8](data)
        var chunker = Chunker(data)
        try checkDecoder(input, &chunker)
        try checkRoundTrip(input, &chunker)
        try checkChunks(input, &chunker)
    }

    struct Decoded: Equatable {
        var end: Int?
        var output: [UInt8]
        var size: Int
        var bare: Bool
        var longest: Int
    }

    static func decode(_ input: [UInt8], _ pieces: [Range<Int>]) throws(FuzzFailure) -> Decoded {
        var decoder = DataDecoder()
        var output = ByteBuffer()
        var end: Int?
        for range in pieces {
            let result = input[range].withUnsafeBytes { decoder.decode($0, into: &output) }
            if case .end(let consumed) = result {
                try expect(consumed > 0 && consumed <= range.count, "consumed \(consumed) of a \(range.count)-octet piece")
                end = range.lowerBound + consumed
                break
            }
        }
        try expect(decoder.size == output.readableBytes, "size \(decoder.size) but \(output.readableBytes) octets out")
        return Decoded(end: end, output: Array(output.readableBytesView), size: decoder.size,
                       bare: decoder.sawBareNewline, longest: decoder.longestLine)
    }

    /// RFC 5321 §4.5.2 line by line: a line is "." CRLF (the end) or loses one leading dot.
    /// Lines are split at CRLF only; a bare CR or LF is text inside a line. The longest line
    /// counts octets on the wire, CRLF included (only asked for when there is no bare CR/LF).
    static func reference(_ input: [UInt8]) -> Decoded {
        var output: [UInt8] = []
        var bare = false
        var longest = 0
        var start = 0
        while true {
            var i = start
            while i + 1 < input.count, !(input[i] == 0x0D && input[i + 1] == 0x0A) { i += 1 }
            guard i + 1 < input.count else {   // no CRLF: an unfinished line
                return Decoded(end: nil, output: output + unstuffed(input[start...]), size: 0, bare: false, longest: 0)
            }
            let line = input[start..<i]
            if line.elementsEqual([0x2E]) {
                return Decoded(end: i + 2, output: output, size: output.count, bare: bare, longest: longest)
            }
            output += unstuffed(line) + [0x0D, 0x0A]
            bare = bare || line.contains(0x0D) || line.contains(0x0A)
            longest = max(longest, line.count + 2)
            start = i + 2
        }
    }

    private static func unstuffed(_ line: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        line.first == 0x2E ? line.dropFirst() : line
    }

    static func checkDecoder(_ input: [UInt8], _ chunker: inout Chunker) throws(FuzzFailure) {
        let whole = try decode(input, [0..<input.count])
        let pieces = try decode(input, chunker.ranges(input.count))
        let expected = reference(input)
        try expect(whole.end == expected.end, "end of data at \(String(describing: whole.end)), reference \(String(describing: expected.end))")
        if expected.end == nil {
            // Unfinished: the output so far is a prefix of the reference's (a held-back CR may be missing).
            try expect(expected.output.starts(with: whole.output), "unfinished DATA: output is not the reference's prefix")
        } else {
            try expect(whole.output == expected.output, "message bytes differ from the reference: \(show(whole.output)) vs \(show(expected.output))")
            try expect(whole.bare == expected.bare, "bare CR/LF flag \(whole.bare), reference \(expected.bare)")
            // receiverd refuses bare CR/LF before it looks at line lengths.
            try expect(whole.bare || whole.longest == expected.longest, "longest line \(whole.longest), reference \(expected.longest)")
        }
        try expect(whole == pieces, "DATA decoding depends on the chunking")
    }

    static func checkRoundTrip(_ payload: [UInt8], _ chunker: inout Chunker) throws(FuzzFailure) {
        var stuffer = DotStuffer()
        var encoded = ByteBuffer()
        for range in chunker.ranges(payload.count) {
            payload[range].withUnsafeBytes { stuffer.encode($0, into: &encoded) }
        }
        stuffer.finish(into: &encoded)
        let wire = Array(encoded.readableBytesView)
        let decoded = try decode(wire, chunker.ranges(wire.count))
        var expected = payload
        if !payload.isEmpty && !payload.ends(with: [0x0D, 0x0A]) { expected += [0x0D, 0x0A] }
        try expect(decoded.end == wire.count, "stuffed data ends at \(String(describing: decoded.end)) of \(wire.count)")
        try expect(decoded.output == expected, "DotStuffer → DataDecoder changed the message: \(show(payload)) → \(show(decoded.output))")
        try expect(decoded.bare == hasBareNewline(expected), "bare CR/LF flag \(decoded.bare) after the round trip")
    }

    static func checkChunks(_ input: [UInt8], _ chunker: inout Chunker) throws(FuzzFailure) {
        var decoder = DataDecoder()
        var output = ByteBuffer()
        for range in chunker.ranges(input.count) {
            input[range].withUnsafeBytes { decoder.copyChunk($0, into: &output) }
        }
        decoder.finishChunks()
        try expect(output.readableBytesView.elementsEqual(input), "BDAT chunks were not copied unchanged")
        try expect(decoder.size == input.count, "BDAT size \(decoder.size) of \(input.count)")
        try expect(decoder.sawBareNewline == hasBareNewline(input), "BDAT bare CR/LF flag \(decoder.sawBareNewline)")
        guard !decoder.sawBareNewline else { return }   // refused before line lengths count
        var maxLine = 0
        var start = 0
        var i = 0
        while i + 1 < input.count {
            if input[i] == 0x0D && input[i + 1] == 0x0A {
                maxLine = max(maxLine, i + 2 - start)
                start = i + 2
                i += 2
            } else {
                i += 1
            }
        }
        maxLine = max(maxLine, input.count - start)
        try expect(decoder.longestLine == maxLine, "BDAT longest line \(decoder.longestLine), reference \(maxLine)")
    }
}

extension Array where Element == UInt8 {
    func ends(with suffix: [UInt8]) -> Bool { count >= suffix.count && self[(count - suffix.count)...].elementsEqual(suffix) }
}
