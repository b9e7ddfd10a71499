import NIOCore
import PosternSMTP

/// Takes ``IPCMessage``s out of a byte stream: a line each, and a VERDICT line's section of
/// the length it names. A line over ``IPCMessage/maxLine`` or anything malformed is garbage:
/// the connection it came on is closed (docs/ipc.md).
public struct IPCReader: Sendable {
    /// Why a stream is given up.
    public struct Garbage: Error, Sendable, CustomStringConvertible {
        public let hint: String
        public init(hint: String) { self.hint = hint }
        public var description: String { "bad IPC message: \(hint)" }
    }

    private var framer = LineFramer(limit: IPCMessage.maxLine)
    /// A VERDICT line whose section has not all come yet.
    private var head: IPCMessage.VerdictHead?

    public init() {}

    /// The next whole message, or nil when more bytes are needed.
    public mutating func next(from buffer: inout ByteBuffer) throws(Garbage) -> IPCMessage? {
        if head == nil {
            guard let framed = framer.next(from: &buffer) else { return nil }
            let line: ByteBuffer
            switch framed {
            case .line(let l), .bareLF(let l): line = l
            case .overlong: throw Garbage(hint: "line longer than \(IPCMessage.maxLine) octets")
            }
            switch IPCMessage.parseLine(Substring(String(buffer: line))) {
            case .message(let m)?: return m
            case .verdictHead(let h)?: head = h
            case nil: throw Garbage(hint: "unknown or malformed line")
            }
        }
        guard let h = head, let section = buffer.readString(length: h.length) else { return nil }
        head = nil
        guard let m = h.message(section: section) else { throw Garbage(hint: "bad verdict section for \(h.id)") }
        return m
    }
}
