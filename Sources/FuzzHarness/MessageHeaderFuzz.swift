import PosternSMTP
import PosternSpool

/// The header section as receiverd watches it stream by (Received: count, loop guards, body
/// hash) and as rules and the headers filter read it.
///
/// Invariants: HeaderInspector gives the same counts, guards and body hash whatever the
/// chunking; it keeps at most `maxGuards` guards; parsed fields have names without a colon.
enum MessageHeaderFuzz {
    static func run(_ data: UnsafeRawBufferPointer) throws(FuzzFailure) {
        let bytes = [UInt8](data)
        for field in HeaderField.parseSection(bytes) {
            try expect(!field.name.contains(":"), "field name \(show(field.name)) holds a colon")
            try expect(!field.name.utf8.contains(0x0A) && !field.value.utf8.contains(0x0A), "a field holds an LF")
        }
        var whole = HeaderInspector()
        whole.feed(data)
        var pieces = HeaderInspector()
        var chunker = Chunker(data)
        for range in chunker.ranges(data.count) { pieces.feed(UnsafeRawBufferPointer(rebasing: data[range])) }
        try expect(whole.receivedCount == pieces.receivedCount, "Received: count depends on the chunking")
        try expect(whole.guardValues == pieces.guardValues, "loop guards depend on the chunking")
        try expect(whole.inHeaders == pieces.inHeaders, "end of header depends on the chunking")
        try expect(whole.guardValues.count <= HeaderInspector.maxGuards, "\(whole.guardValues.count) guards kept")
        let guardKey = LoopGuard(key: Array("fuzz".utf8))
        for value in whole.guardValues { _ = guardKey.stamp(value: value, bodyHash: "") }
        let (a, b) = (whole.bodyHash(), pieces.bodyHash())
        try expect(a == b, "body hash depends on the chunking")
    }
}
