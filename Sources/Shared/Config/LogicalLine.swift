/// A `[Rules]` line with its `\` continuations joined, remembering where each piece came from
/// so an error deep in a continued rule still points at the physical line and column.
struct LogicalLine: Sendable {
    /// Where one physical piece starts in the joined bytes.
    struct Segment: Sendable {
        var start: Int
        var line: Int
        var physicalStart: Int
        var physical: [UInt8]
    }

    var bytes: [UInt8] = []
    var segments: [Segment] = []

    var text: String { String(decoding: bytes, as: UTF8.self) }
    var line: Int { segments.first?.line ?? 0 }

    /// Appends `physical[range]`; pieces are joined with one space.
    mutating func append(_ physical: [UInt8], _ range: Range<Int>, line: Int) {
        if !bytes.isEmpty { bytes.append(0x20) }
        segments.append(Segment(start: bytes.count, line: line, physicalStart: range.lowerBound, physical: physical))
        bytes.append(contentsOf: physical[range])
    }

    /// The physical (line, column) of byte `offset` of the joined text.
    func position(of offset: Int) -> (line: Int, column: Int) {
        guard let segment = segments.last(where: { $0.start <= offset }) ?? segments.first else { return (0, 0) }
        let index = segment.physicalStart + max(0, offset - segment.start)
        return (segment.line, ASCII.column(in: segment.physical, at: index))
    }
}
