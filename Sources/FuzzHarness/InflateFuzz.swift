import CZlib
import PosternScanning

/// Raw deflate as zip members hold it (RFC 1951), through the scanner's Inflater.
///
/// Invariants: output never passes the cap; `keep` gives a prefix of the whole output and the
/// same size; whatever zlib's deflate makes of the input inflates back to the input, and a cap
/// one octet short of it is refused.
enum InflateFuzz {
    static let cap = 1 << 20

    static func run(_ data: UnsafeRawBufferPointer) throws(FuzzFailure) {
        let input = [UInt8](data)
        if let whole = try? Inflater.inflate(input[...], cap: cap, keep: .max, deadline: nil) {
            try expect(whole.size <= cap && whole.bytes.count == whole.size, "inflated \(whole.size) octets, kept \(whole.bytes.count), cap \(cap)")
            let head = try? Inflater.inflate(input[...], cap: cap, keep: 7, deadline: nil)
            try expect(head?.size == whole.size && head.map { whole.bytes.starts(with: $0.bytes) && $0.bytes.count <= 7 } == true,
                       "keep: 7 is not a prefix of the output")
        }
        let deflated = deflate(input)
        let back: (bytes: [UInt8], size: Int)
        do {
            back = try Inflater.inflate(deflated[...], cap: input.count, keep: .max, deadline: nil)
        } catch {
            throw FuzzFailure("zlib's own deflate stream of \(input.count) octets failed to inflate: \(error.hint)")
        }
        try expect(back.bytes == input, "deflate → Inflater changed the data")
        if !input.isEmpty {
            let short = try? Inflater.inflate(deflated[...], cap: input.count - 1, keep: .max, deadline: nil)
            try expect(short == nil, "\(input.count) octets passed a cap of \(input.count - 1)")
        }
    }

    /// zlib's raw deflate (windowBits -15, as zip writes it).
    static func deflate(_ input: [UInt8]) -> [UInt8] {
        var stream = z_stream()
        guard deflateInit2_(&stream, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY,
                            ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else { return [] }
        defer { deflateEnd(&stream) }
        var out = [UInt8](repeating: 0, count: Int(deflateBound(&stream, UInt(input.count))) + 16)
        var copy = input
        let produced = copy.withUnsafeMutableBufferPointer { source in
            out.withUnsafeMutableBufferPointer { target -> Int in
                stream.next_in = source.baseAddress
                stream.avail_in = UInt32(source.count)
                stream.next_out = target.baseAddress
                stream.avail_out = UInt32(target.count)
                _ = CZlib.deflate(&stream, Z_FINISH)
                return target.count - Int(stream.avail_out)
            }
        }
        return Array(out.prefix(produced))
    }
}
