import NIOCore

/// Encodes message bytes for the DATA phase: doubles a dot at the start of a line and
/// ends the data with `CRLF "." CRLF`, adding the CRLF the message may lack.
/// - SeeAlso: RFC 5321 §4.5.2
public struct DotStuffer: Sendable {
    private var atLineStart = true
    private var lastWasCR = false
    private var wroteAny = false

    public init() {}

    public mutating func encode(_ input: UnsafeRawBufferPointer, into out: inout ByteBuffer) {
        let dot = UInt8(ascii: "."), cr = UInt8(ascii: "\r"), lf = UInt8(ascii: "\n")
        var runStart = 0
        for i in 0..<input.count {
            let b = input[i]
            if atLineStart && b == dot {
                out.writeBytes(UnsafeRawBufferPointer(rebasing: input[runStart..<i]))
                out.writeInteger(dot)
                runStart = i
            }
            atLineStart = (b == lf && lastWasCR)
            lastWasCR = (b == cr)
        }
        out.writeBytes(UnsafeRawBufferPointer(rebasing: input[runStart..<input.count]))
        if input.count > 0 { wroteAny = true }
    }

    public mutating func encode(_ input: ByteBuffer, into out: inout ByteBuffer) {
        input.withUnsafeReadableBytes { encode($0, into: &out) }
    }

    /// Writes the terminator; a message without a final CRLF gets one first.
    public mutating func finish(into out: inout ByteBuffer) {
        if wroteAny && !atLineStart { out.writeStaticString("\r\n") }
        out.writeStaticString(".\r\n")
        atLineStart = true
        lastWasCR = false
        wroteAny = false
    }
}
