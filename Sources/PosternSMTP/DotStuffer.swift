import NIOCore

/// Encodes message bytes for the DATA phase: doubles a dot at the start of a line and
/// ends the data with `CRLF "." CRLF`, adding the CRLF the message may lack.
/// - SeeAlso: RFC 5321 §4.5.2
public struct DotStuffer: Sendable {
    private var atLineStart = true
    private var lastWasCR = false
    private var wroteAny = false

    /// Runs shorter than this are copied into a buffer of their own by
    /// ``encode(_:into:)-(ByteBuffer,[ByteBuffer])``, longer ones go out as slices of the
    /// message: a message of many dotted lines does not become as many tiny writes.
    public static let minSlice = 4096

    public init() {}

    /// Walks `input` line by line and calls `dot(i)` for each octet that starts a line with a
    /// dot: an extra dot goes before it. Only a CRLF ends a line here, as in the decoder.
    private mutating func scan(_ input: UnsafeRawBufferPointer, _ dot: (Int) -> Void) {
        let n = input.count
        guard n > 0 else { return }
        wroteAny = true
        var i = 0
        while i < n {
            if atLineStart && input[i] == UInt8(ascii: ".") { dot(i) }
            let lf = ByteScan.firstLF(input, from: i)
            if lf == n {
                atLineStart = false
                lastWasCR = input[n - 1] == UInt8(ascii: "\r")
                return
            }
            atLineStart = lf > i ? input[lf - 1] == UInt8(ascii: "\r") : lastWasCR
            lastWasCR = false
            i = lf + 1
        }
    }

    public mutating func encode(_ input: UnsafeRawBufferPointer, into out: inout ByteBuffer) {
        var runStart = 0
        scan(input) { i in
            out.writeBytes(UnsafeRawBufferPointer(rebasing: input[runStart..<i]))
            out.writeInteger(UInt8(ascii: "."))
            runStart = i
        }
        out.writeBytes(UnsafeRawBufferPointer(rebasing: input[runStart..<input.count]))
    }

    public mutating func encode(_ input: ByteBuffer, into out: inout ByteBuffer) {
        input.withUnsafeReadableBytes { encode($0, into: &out) }
    }

    /// Encodes without copying the message: appends to `parts` slices of `input` (they share
    /// its storage) with the added dots between them, ready for one gathering write.
    public mutating func encode(_ input: ByteBuffer, into parts: inout [ByteBuffer]) {
        var dots: [Int] = []
        input.withUnsafeReadableBytes { p in scan(p) { dots.append($0) } }
        var small = ByteBuffer()
        func run(_ from: Int, _ to: Int) {
            guard to > from else { return }
            let slice = input.getSlice(at: input.readerIndex + from, length: to - from)!
            if to - from < Self.minSlice {
                small.writeImmutableBuffer(slice)
                return
            }
            if small.readableBytes > 0 {
                parts.append(small)
                small = ByteBuffer()
            }
            parts.append(slice)
        }
        var runStart = 0
        for i in dots {
            run(runStart, i)
            small.writeInteger(UInt8(ascii: "."))
            runStart = i
        }
        run(runStart, input.readableBytes)
        if small.readableBytes > 0 { parts.append(small) }
    }

    /// Counts octets that went out as they are, beside the encoder (a run its caller knows has
    /// no line that starts with a dot, sent from a file), of which `tail` are the last one or
    /// two: the terminator depends on how they ended.
    public mutating func passedUnchanged(endingWith tail: [UInt8]) {
        guard let last = tail.last else { return }
        wroteAny = true
        let before = tail.count >= 2 ? tail[tail.count - 2] == UInt8(ascii: "\r") : lastWasCR
        atLineStart = last == UInt8(ascii: "\n") && before
        lastWasCR = last == UInt8(ascii: "\r")
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
