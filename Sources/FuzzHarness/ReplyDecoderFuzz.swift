import NIOCore
import NIOEmbedded
import PosternSMTP

/// What senderd reads from a next hop: ReplyDecoder in a channel pipeline, as ClientConnection
/// runs it, fed the input whole and in random pieces.
///
/// Invariants: the replies (and whether the stream is refused) do not depend on the chunking;
/// every reply has a code from 200 to 599 and at most `maxReplyLines` lines; writing the
/// replies and reading them back reads as many replies, and settles to a fixed point within a
/// few rounds (Reply.write, RFC 5321 §4.2).
enum ReplyDecoderFuzz {
    struct Decoded: Equatable {
        var replies: [Reply]
        var failed: Bool
    }

    static func run(_ data: UnsafeRawBufferPointer) throws(FuzzFailure) {
        var chunker = Chunker(data)
        let input = [UInt8](data)
        let whole = decode(input, [0..<data.count])
        let pieces = decode(input, chunker.ranges(data.count))
        try expect(whole == pieces, "replies depend on the chunking: \(whole.replies.count) vs \(pieces.replies.count), failed \(whole.failed) vs \(pieces.failed)")
        for reply in whole.replies {
            try expect((200...599).contains(reply.code), "reply code \(reply.code)")
            try expect(!reply.lines.isEmpty && reply.lines.count <= SMTPDefaults.maxReplyLines, "\(reply.lines.count) reply lines")
            if let status = reply.status { try expect(status.klass == reply.code / 100, "status \(status) on a \(reply.code) reply") }
        }
        // Writing replaces CR, LF and NUL in the text, which may let a status code show that
        // was hidden behind a NUL, and reading then drops the spaces after it: the text settles
        // in a few rounds of writing and reading, and stays as it is from then on.
        let once = written(whole.replies)
        var again = decode(once, [0..<once.count])
        try expect(!again.failed && again.replies.count == whole.replies.count, "written replies do not read back: \(show(once))")
        var text = written(again.replies)
        for round in 2...Self.settlingRounds {
            again = decode(text, [0..<text.count])
            let next = written(again.replies)
            if next == text { return }
            try expect(round < Self.settlingRounds, "Reply.write/ReplyDecoder has not settled after \(round) rounds: \(difference(text, next))")
            text = next
        }
    }

    /// NUL cleaning, then the spaces after a status that showed: two rounds, and one to see it stay.
    static let settlingRounds = 4

    static func written(_ replies: [Reply]) -> [UInt8] {
        var buffer = ByteBuffer()
        for reply in replies { reply.write(into: &buffer) }
        return Array(buffer.readableBytesView)
    }

    static func decode(_ data: [UInt8], _ pieces: [Range<Int>]) -> Decoded {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(ReplyDecoder()))
        defer { _ = try? channel.finish() }
        var replies: [Reply] = []
        var failed = false
        for range in pieces {
            do {
                try channel.writeInbound(ByteBuffer(bytes: data[range]))
            } catch {
                failed = true
            }
            while let reply = try? channel.readInbound(as: Reply.self) { replies.append(reply) }
            if failed { break }
        }
        return Decoded(replies: replies, failed: failed)
    }
}
