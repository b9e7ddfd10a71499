import PosternUtil
/// `[Metrics]`: where each daemon serves its Prometheus metrics over HTTP (`GET /metrics`).
/// Every key is optional; a daemon without an address serves none.
public struct MetricsSection: Sendable {
    /// receiverd's metrics listener, e.g. `inet:9610@127.0.0.1`.
    public var receiver: Endpoint?
    /// scannerd's.
    public var scanner: Endpoint?
    /// senderd's (which also reports the number of messages in each spool state).
    public var sender: Endpoint?

    /// No listeners.
    public init() {}

    package static func read(_ reader: inout SectionReader) -> MetricsSection {
        var section = MetricsSection()
        section.receiver = reader.endpoint("Receiver")
        section.scanner = reader.endpoint("Scanner")
        section.sender = reader.endpoint("Sender")
        for key in ["Receiver", "Scanner", "Sender"] {
            guard let raw = reader.section.keys[ASCII.lowercased(key)]?.values.last,
                  let e = try? Endpoint.parse(raw.text) else { continue }
            if case .unix = e.location {
                reader.report(line: raw.line, column: raw.column, "metrics are served over TCP: use inet:PORT@HOST")
            } else if e.hasMacros {
                reader.report(line: raw.line, column: raw.column, "CLIENT-IP and SERVER-IP cannot be used in a listening address")
            }
        }
        return section
    }
}
