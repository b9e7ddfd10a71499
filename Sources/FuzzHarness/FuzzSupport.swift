/// Throws a ``FuzzFailure`` when `condition` does not hold.
@inline(__always)
func expect(_ condition: Bool, _ message: @autoclosure () -> String) throws(FuzzFailure) {
    if !condition { throw FuzzFailure(message()) }
}

/// Chunk sizes for feeding an input in pieces, drawn from the input itself so that a run is
/// reproducible from the input file alone (no control bytes in front of the corpus files).
struct Chunker {
    private var state: UInt64

    init(_ data: UnsafeRawBufferPointer, salt: UInt64 = 0) {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325 ^ salt   // FNV-1a
        for byte in data { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        state = hash
    }

    /// SplitMix64.
    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }

    /// Mostly tiny pieces (1–8 bytes: where state machines break), sometimes larger ones.
    mutating func size() -> Int {
        let roll = next()
        return roll % 4 == 0 ? Int((roll >> 8) % 256) + 1 : Int((roll >> 8) % 8) + 1
    }

    /// `count` split at random points.
    mutating func ranges(_ count: Int) -> [Range<Int>] {
        var out: [Range<Int>] = []
        var at = 0
        while at < count {
            let end = min(count, at + size())
            out.append(at..<end)
            at = end
        }
        return out
    }
}

extension Array where Element == UInt8 {
    init(_ data: UnsafeRawBufferPointer) { self.init(data.bindMemory(to: UInt8.self)) }
}

/// The lines of `bytes` split at LF, a CR before the LF removed.
func lines(_ bytes: [UInt8]) -> [ArraySlice<UInt8>] {
    bytes.split(separator: 0x0A, omittingEmptySubsequences: false).map { $0.last == 0x0D ? $0.dropLast() : $0 }
}

/// A bare CR or LF: one not in a CRLF pair.
func hasBareNewline(_ bytes: some Collection<UInt8>) -> Bool {
    var previous: UInt8 = 0
    var pendingCR = false
    for byte in bytes {
        if pendingCR && byte != 0x0A { return true }
        if byte == 0x0A && previous != 0x0D { return true }
        pendingCR = byte == 0x0D
        previous = byte
    }
    return pendingCR
}

/// Whether `haystack` contains `needle`, ASCII case folded.
func containsFolded(_ haystack: [UInt8], _ needle: String) -> Bool {
    let n = Array(needle.utf8)
    guard !n.isEmpty, haystack.count >= n.count else { return false }
    let fold: (UInt8) -> UInt8 = { $0 >= 0x41 && $0 <= 0x5A ? $0 | 0x20 : $0 }
    for i in 0...(haystack.count - n.count) where fold(haystack[i]) == n[0] {
        if (0..<n.count).allSatisfy({ fold(haystack[i + $0]) == n[$0] }) { return true }
    }
    return false
}

/// Text made safe for a failure message.
func show(_ bytes: some Collection<UInt8>, limit: Int = 120) -> String {
    var out = ""
    for byte in bytes.prefix(limit) {
        out += byte >= 0x20 && byte < 0x7F && byte != 0x5C ? String(UnicodeScalar(byte)) : "\\x" + String(byte, radix: 16)
    }
    return bytes.count > limit ? out + "…" : out
}

func show(_ text: String, limit: Int = 120) -> String { show(Array(text.utf8), limit: limit) }

/// Where two byte strings first differ, with some context from each.
func difference(_ a: some Collection<UInt8>, _ b: some Collection<UInt8>) -> String {
    let x = Array(a), y = Array(b)
    var i = 0
    while i < x.count, i < y.count, x[i] == y[i] { i += 1 }
    let from = max(0, i - 40)
    return "at octet \(i) of \(x.count)/\(y.count): …\(show(x[from...].prefix(80)))… vs …\(show(y[from...].prefix(80)))…"
}
