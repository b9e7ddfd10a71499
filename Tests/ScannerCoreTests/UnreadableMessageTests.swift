import Glibc
import NIOCore
import PosternPolicy
import PosternScanning
import PosternSpool
import PosternTestSupport
import PosternUtil
@testable import ScannerCore
import Testing

/// A message whose spool file fails to read while a plug-in streams it (cut short here, as
/// a damaged disk or a hand edit would) gets no verdict: the scan throws, so scannerd scans it
/// again later (after the queue) or answers "unscanned" (before it), instead of applying the
/// plug-in's `ProcessingErrors` to what was read.
@Suite struct UnreadableMessageTests {
    @Test(arguments: [false, true])
    func aMessageThatCannotBeReadGetsNoVerdict(cut: Bool) throws {
        let spool = try TempSpool()
        let size = 200_001
        let id = QueueID.make()
        let w = try SpoolWriter(layout: spool.layout, id: id)
        var body = ByteBuffer(bytes: Array("Subject: s\r\n\r\n".utf8) + [UInt8](repeating: UInt8(ascii: "x"), count: size - 14))
        try w.append(&body)
        try w.finish(envelope: Envelope(id: id, arrival: 1, mailFrom: "a@example.org", recipients: [Recipient(address: "b@example.com")], size: size))
        try w.commit(to: .scan)
        let file = try SpoolFile.read(path: spool.layout.path(id, .scan))
        let message = try StoredMessage(file: file)
        if cut { #expect(truncate(file.path, off_t(file.messageOffset + 100_000)) == 0) }
        let config = try PosternConfig.parse("[Scanner]\nAfterQueueFilters = clamav\n", path: "t.conf")
        // What a streaming plug-in does: a read that fails is its error finding.
        let scan = StageScan(config: config, stage: .afterQueue, plugins: { names, request, _ in
            var sent = 0
            do throws(PluginError) {
                try request.message.forEachChunk(size: 65_536) { (p, _) throws(PluginError) in sent += p.count }
            } catch {
                return [Finding(plugin: "clamav", verdict: .error, detail: "error: \(error)")]
            }
            return [Finding(plugin: "clamav", verdict: .clean, detail: "clean \(sent)")]
        })
        if cut {
            #expect(throws: SpoolError.self) { try scan.run(file: file, message: message, deadline: .now + .seconds(5)) }
            #expect(message.readFailure?.errno == EIO)
        } else {
            let outcome = try scan.run(file: file, message: message, deadline: .now + .seconds(5))
            #expect(outcome.findings.map { $0.detail } == ["clean \(size)"])
            #expect(message.readFailure == nil)
        }
    }
}
