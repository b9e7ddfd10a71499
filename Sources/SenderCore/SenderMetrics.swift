import Glibc
import PosternSpool
import PosternUtil
import Prometheus

/// What senderd counts, for `[Metrics] Sender`, plus the depth of every spool state.
package struct SenderMetrics: Sendable {
    package let registry: PrometheusCollectorRegistry
    package let sent: Counter
    package let deferred: Counter
    package let bounced: Counter
    package let expired: Counter
    /// From arrival at receiverd to the next hop's 2xx.
    package let delay: DurationHistogram
    package let spool: [(SpoolState, Gauge)]

    package init() {
        let registry = PrometheusCollectorRegistry()
        self.registry = registry
        func recipients(_ status: String) -> Counter {
            registry.makeCounter(descriptor: .postern("delivered_recipients", unit: "total", help: "Delivery attempts per recipient, by outcome."), labels: [("status", status)])
        }
        sent = recipients("sent")
        deferred = recipients("deferred")
        bounced = recipients("bounced")
        expired = recipients("expired")
        delay = registry.makeDurationHistogram(descriptor: .postern("delivery_delay", unit: "seconds", help: "Time from arrival to delivery, per recipient delivered."), buckets: [.milliseconds(5), .milliseconds(10), .milliseconds(50), .milliseconds(100), .milliseconds(500),
                      .seconds(1), .seconds(10), .seconds(60), .seconds(600), .seconds(3600)])
        spool = SpoolState.allCases.map { state in
            (state, registry.makeGauge(descriptor: .postern("spool_messages", unit: "", help: "Files in each spool directory."), labels: [("state", state.rawValue)]))
        }
    }

    /// Counts the spool's directories (at scrape time).
    package func refreshSpool(_ layout: SpoolLayout) {
        for (state, gauge) in spool {
            gauge.set(Int64((try? SysCall.listDirectory(layout.directory(state)))?.count ?? 0))
        }
    }
}
