import PosternSpool
import Prometheus

/// What scannerd counts, for `[Metrics] Scanner`.
package struct ScannerMetrics: Sendable {
    package let registry = PrometheusCollectorRegistry()
    /// Scans that failed (the message stays in `scan/` and is tried again).
    package let errors: Counter
    /// Damaged queue files moved to `corrupt/`.
    package let corrupt: Counter
    /// Copies stored in the quarantine.
    package let quarantined: Counter
    package let duration: DurationHistogram
    /// `scanned_messages` for each verdict word a scan gives, made once: finding a counter in
    /// the registry by name and labels for every message cost as much as a log line.
    private let scanned: [String: Counter]

    package init() {
        errors = registry.makeCounter(descriptor: .postern("scanner_errors", unit: "total", help: "Scans that failed and will be retried."))
        corrupt = registry.makeCounter(descriptor: .postern("corrupt_files", unit: "total", help: "Unreadable queue files moved to corrupt/."))
        quarantined = registry.makeCounter(descriptor: .postern("quarantined_messages", unit: "total", help: "Messages copied into the quarantine."))
        duration = registry.makeDurationHistogram(descriptor: .postern("scan", unit: "seconds", help: "Time to scan a message and resolve its routes."), buckets: [.microseconds(100), .microseconds(250), .milliseconds(1), .milliseconds(10), .milliseconds(100),
                      .seconds(1), .seconds(10), .seconds(60)])
        let registry = self.registry
        scanned = Dictionary(uniqueKeysWithValues: ([.pass, .reject, .tempfail, .discard, .split] as [VerdictAction]).map {
            ($0.description, ScannerMetrics.scannedCounter(registry, $0))
        })
    }

    private static func scannedCounter(_ registry: PrometheusCollectorRegistry, _ verdict: VerdictAction) -> Counter {
        registry.makeCounter(descriptor: .postern("scanned_messages", unit: "total", help: "Messages scanned, by verdict."),
                             labels: [("verdict", verdict.description)])
    }

    /// Messages scanned, by verdict (`pass`, `reject`, `tempfail`, `discard`, `split`).
    package func count(_ verdict: VerdictAction) {
        (scanned[verdict.description] ?? ScannerMetrics.scannedCounter(registry, verdict)).increment()
    }

    /// A plug-in that was down, timed out or answered garbage.
    package func pluginErrors(_ plugin: String) {
        registry.makeCounter(descriptor: .postern("plugin_errors", unit: "total", help: "Plug-in failures (ProcessingErrors applied), by plug-in."),
                             labels: [("plugin", plugin)]).increment()
    }
}
