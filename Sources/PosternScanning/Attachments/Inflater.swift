import CZlib
import PosternPolicy

/// Raw deflate (APPNOTE §4.4.5 method 8, RFC 1951) through zlib, stopping as soon as the output
/// passes a cap: declared sizes are never trusted, and a bomb costs at most `cap` bytes of work.
package enum Inflater {
    private enum Outcome { case done, overCap, truncated, corrupt, deadline }

    package static func inflate(_ input: ArraySlice<UInt8>, cap: Int, keep: Int,
                        deadline: ContinuousClock.Instant?) throws(ZipError) -> (bytes: [UInt8], size: Int) {
        var stream = z_stream()
        // -MAX_WBITS: a raw stream, no zlib header or checksum, as zip stores it.
        guard inflateInit2_(&stream, -MAX_WBITS, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw ZipError(.corruptData, "zlib cannot start")
        }
        defer { inflateEnd(&stream) }
        var kept: [UInt8] = []
        var total = 0
        let chunk = AttachmentsDefaults.inflateChunk
        let outcome = input.withUnsafeBufferPointer { source -> Outcome in
            stream.next_in = UnsafeMutablePointer(mutating: source.baseAddress)
            stream.avail_in = UInt32(source.count)
            return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: chunk) { out -> Outcome in
                while true {
                    // One byte past the cap is enough to prove it passed.
                    let room = cap - total < chunk ? cap - total + 1 : chunk
                    stream.next_out = out.baseAddress
                    stream.avail_out = UInt32(room)
                    let status = CZlib.inflate(&stream, Z_NO_FLUSH)
                    let produced = room - Int(stream.avail_out)
                    total += produced
                    if kept.count < keep { kept.append(contentsOf: out[0..<Swift.min(produced, keep - kept.count)]) }
                    if total > cap { return .overCap }
                    switch status {
                    case Z_STREAM_END: return .done
                    case Z_OK: break
                    case Z_BUF_ERROR: return .truncated
                    default: return .corrupt
                    }
                    if let deadline, ContinuousClock.now >= deadline { return .deadline }
                }
            }
        }
        switch outcome {
        case .done: return (kept, total)
        case .overCap: throw ZipError(.outputLimit, "over \(cap) bytes")
        case .truncated: throw ZipError(.corruptData, "deflate data ends early")
        case .corrupt: throw ZipError(.corruptData, "deflate data corrupt")
        case .deadline: throw ZipError(.deadline, "deadline passed")
        }
    }
}
