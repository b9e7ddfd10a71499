import Glibc
import NIOCore
import PosternSpool
import PosternUtil

/// A spool in a fresh temporary directory.
package struct TempSpool: ~Copyable, Sendable {
    package let layout: SpoolLayout
    package init() throws {
        var template = Array("/tmp/postern-test-XXXXXX".utf8CString)
        let dir = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
        layout = SpoolLayout(root: dir)
        try layout.createDirectories()
    }
    deinit { _ = system("rm -rf '\(layout.root)'") }

    /// Writes `message` the way receiverd does and commits it to `scan/`; returns its id.
    package func write(_ message: String, envelope: (String, Int) -> Envelope) throws -> String {
        let id = QueueID.make()
        let w = try SpoolWriter(layout: layout, id: id)
        var b = ByteBuffer(string: message)
        try w.append(&b)
        try w.finish(envelope: envelope(id, message.utf8.count))
        try w.commit(to: .scan)
        return id
    }

    /// Rewrites the text of a queue file: what readers make of contents another writer (or an
    /// older version) would have left.
    package static func edit(_ path: String, _ change: (String) -> String) throws {
        let text = change(try TextFile.read(path))
        guard let f = fopen(path, "w") else { throw SpoolError("fopen", path) }
        defer { fclose(f) }
        fputs(text, f)
    }
}
