import NIOCore

/// Streams the DATA phase: removes dot-stuffing, finds the end of data and notes every
/// irregularity, writing the message bytes as received into an output buffer.
///
/// End of data is only `CRLF "." CRLF` (the CRLF before the dot being the end of the last line,
/// or the start of data). A bare CR or LF is copied but flagged: the server refuses such a
/// message once it has read to the real end, so `<LF>.<LF>` and friends can never end data
/// early (SMTP smuggling) nor pass on to the next hop.
/// - SeeAlso: RFC 5321 §4.1.1.4, §4.5.2, §2.3.8
public struct DataDecoder: Sendable {
    public enum Result: Sendable, Equatable {
        /// All input was used; more is needed.
        case needMore
        /// End of data was found after `consumed` bytes of this input.
        case end(consumed: Int)
    }

    private enum State: Sendable { case lineStart, inLine, sawCR, dot, dotCR }

    private var state: State = .lineStart
    private var lineLength = 0
    /// Message bytes produced so far (after unstuffing).
    public private(set) var size = 0
    /// A CR or LF that is not part of a CRLF pair was seen.
    public private(set) var sawBareNewline = false
    /// The longest text line seen, in octets including CRLF.
    public private(set) var longestLine = 0

    public init() {}

    /// Consumes `input` (as much as belongs to the message) and appends message bytes to `output`.
    public mutating func decode(_ input: UnsafeRawBufferPointer, into output: inout ByteBuffer) -> Result {
        let cr = UInt8(ascii: "\r"), lf = UInt8(ascii: "\n"), dot = UInt8(ascii: ".")
        var i = 0
        let n = input.count
        var runStart = 0   // start of a run of bytes copied unchanged
        var produced = 0
        func flush(_ upTo: Int, _ output: inout ByteBuffer) {
            if upTo > runStart {
                output.writeBytes(UnsafeRawBufferPointer(rebasing: input[runStart..<upTo]))
                produced += upTo - runStart
            }
        }
        while i < n {
            let b = input[i]
            switch state {
            case .lineStart:
                if b == dot {
                    flush(i, &output)
                    runStart = i + 1          // the stuffed dot is dropped
                    state = .dot
                } else {
                    state = .inLine
                    continue                  // re-examine as an ordinary byte
                }
            case .dot:
                if b == cr {
                    runStart = i + 1          // hold the CR back: it may belong to the terminator
                    state = .dotCR
                } else {
                    // ".." or ".x": the first dot is dropped (RFC 5321 §4.5.2)
                    lineLength += 1
                    state = .inLine
                    continue
                }
            case .dotCR:
                if b == lf {
                    size += produced
                    trackLine()
                    state = .lineStart
                    return .end(consumed: i + 1)
                }
                // "." CR x: a bare CR; keep the CR as data
                sawBareNewline = true
                output.writeInteger(cr)
                produced += 1
                runStart = i
                lineLength += 1
                state = .inLine
                continue
            case .inLine:
                if b == cr {
                    state = .sawCR
                } else if b == lf {
                    sawBareNewline = true
                    lineLength += 1
                } else {
                    // The rest of the line up to its CR or LF is copied as it is: skip it at once.
                    let end = ByteScan.firstNewline(input, from: i + 1)
                    lineLength += end - i
                    i = end
                    continue
                }
            case .sawCR:
                if b == lf {
                    lineLength += 2
                    trackLine()
                    state = .lineStart
                } else {
                    sawBareNewline = true
                    lineLength += 1
                    state = .inLine
                    continue
                }
            }
            i += 1
        }
        flush(n, &output)
        size += produced
        return .needMore
    }

    private mutating func trackLine() {
        if lineLength > longestLine { longestLine = lineLength }
        lineLength = 0
    }

    /// BDAT chunks (RFC 3030) are length-delimited, so there is no dot-stuffing and no end
    /// marker; the bytes are copied as they are while bare CR/LF and line lengths are noted
    /// just as for DATA (a bare LF passed on inside DATA to the next hop would be a smuggling
    /// vector there).
    public mutating func copyChunk(_ input: UnsafeRawBufferPointer, into output: inout ByteBuffer) {
        let cr = UInt8(ascii: "\r"), lf = UInt8(ascii: "\n")
        for b in input {
            switch state {
            case .sawCR:
                if b == lf {
                    lineLength += 2
                    trackLine()
                    state = .lineStart
                    continue
                }
                sawBareNewline = true
                lineLength += 1
                state = .inLine
                fallthrough
            default:
                if b == cr { state = .sawCR } else {
                    if b == lf { sawBareNewline = true }
                    lineLength += 1
                    state = .inLine
                }
            }
        }
        output.writeBytes(input)
        size += input.count
    }

    /// After the last BDAT chunk: a CR at the very end was not part of a CRLF.
    public mutating func finishChunks() {
        if state == .sawCR { sawBareNewline = true }
        trackLine()
    }

    /// Convenience for tests and small inputs.
    public mutating func decode(_ input: ByteBuffer, into output: inout ByteBuffer) -> Result {
        input.withUnsafeReadableBytes { decode($0, into: &output) }
    }
}
