import PosternUtil
/// A `[Rules]` line with its `\` continuations joined, remembering where each piece came from
/// so an error deep in a continued rule still points at the physical line and column.
package struct LogicalLine: Sendable {
    /// Where one physical piece starts in the joined bytes.
    package struct Segment: Sendable {
        package var start: Int
        package var line: Int
        package var physicalStart: Int
        package var physical: [UInt8]
    }

    package var bytes: [UInt8] = []
    package var segments: [Segment] = []

    package var text: String { String(decoding: bytes, as: UTF8.self) }
    package var line: Int { segments.first?.line ?? 0 }

    /// Appends `physical[range]`; pieces are joined with one space.
    package mutating func append(_ physical: [UInt8], _ range: Range<Int>, line: Int) {
        if !bytes.isEmpty { bytes.append(0x20) }
        segments.append(Segment(start: bytes.count, line: line, physicalStart: range.lowerBound, physical: physical))
        bytes.append(contentsOf: physical[range])
    }

    /// The physical (line, column) of byte `offset` of the joined text.
    package func position(of offset: Int) -> (line: Int, column: Int) {
        guard let segment = segments.last(where: { $0.start <= offset }) ?? segments.first else { return (0, 0) }
        let index = segment.physicalStart + max(0, offset - segment.start)
        return (segment.line, ASCII.column(in: segment.physical, at: index))
    }
}
