import Prometheus

/// What receiverd counts, for `[Metrics] Receiver`.
package struct ReceiverMetrics: Sendable {
    package let registry = PrometheusCollectorRegistry()
    /// Messages made durable and answered 250.
    package let queued: Counter
    /// Messages answered 5xx at end of data (smuggling, size, loops…).
    package let refused: Counter
    /// Messages answered 4xx at end of data (disk full, write errors).
    package let tempfailed: Counter
    package let bytes: Counter
    package let sessions: Gauge
    /// From end of data to the file being durable in `scan/` (the group commit).
    package let commit: DurationHistogram

    package init() {
        queued = registry.makeCounter(descriptor: .postern("received_messages", unit: "total", help: "Messages received, by the reply to end of data."), labels: [("result", "queued")])
        refused = registry.makeCounter(descriptor: .postern("received_messages", unit: "total", help: "Messages received, by the reply to end of data."), labels: [("result", "refused")])
        tempfailed = registry.makeCounter(descriptor: .postern("received_messages", unit: "total", help: "Messages received, by the reply to end of data."), labels: [("result", "tempfailed")])
        bytes = registry.makeCounter(descriptor: .postern("received_bytes", unit: "total", help: "Octets of messages queued."))
        sessions = registry.makeGauge(descriptor: .postern("receiver_sessions", unit: "", help: "SMTP/LMTP sessions open now."))
        commit = registry.makeDurationHistogram(descriptor: .postern("receiver_commit", unit: "seconds", help: "Time to make a message durable in the spool."), buckets: [.microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5),
                      .milliseconds(10), .milliseconds(25), .milliseconds(100), .seconds(1)])
    }
}
