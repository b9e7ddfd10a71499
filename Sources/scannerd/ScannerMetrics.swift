import Prometheus

/// What scannerd counts, for `[Metrics] Scanner`.
struct ScannerMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    let passed: Counter
    /// Scans that failed (the message stays in `scan/` and is tried again).
    let errors: Counter
    /// Damaged queue files moved to `corrupt/`.
    let corrupt: Counter
    let duration: DurationHistogram

    init() {
        passed = registry.makeCounter(descriptor: .postern("scanned_messages", unit: "total", help: "Messages scanned, by verdict."), labels: [("verdict", "pass")])
        errors = registry.makeCounter(descriptor: .postern("scanner_errors", unit: "total", help: "Scans that failed and will be retried."))
        corrupt = registry.makeCounter(descriptor: .postern("corrupt_files", unit: "total", help: "Unreadable queue files moved to corrupt/."))
        duration = registry.makeDurationHistogram(descriptor: .postern("scan", unit: "seconds", help: "Time to scan a message and resolve its routes."), buckets: [.microseconds(100), .microseconds(250), .milliseconds(1), .milliseconds(10), .milliseconds(100),
                      .seconds(1), .seconds(10), .seconds(60)])
    }
}
