import PosternSpool
import Prometheus
import ScannerCore
import Testing

@Suite struct ScannerMetricsTests {
    /// Each verdict is counted under its own label, the five a scan gives and any other.
    @Test func scansAreCountedByVerdict() {
        let metrics = ScannerMetrics()
        for v: VerdictAction in [.pass, .pass, .reject, .tempfail, .discard, .split, .split, .split, "newer-word"] { metrics.count(v) }
        var out: [UInt8] = []
        metrics.registry.emit(into: &out)
        let lines = Set(String(decoding: out, as: UTF8.self).split(separator: "\n").map(String.init))
        for (word, n) in [("pass", 2), ("reject", 1), ("tempfail", 1), ("discard", 1), ("split", 3), ("newer-word", 1)] {
            #expect(lines.contains("postern_scanned_messages_total{verdict=\"\(word)\"} \(n)"), "\(word)")
        }
    }
}
