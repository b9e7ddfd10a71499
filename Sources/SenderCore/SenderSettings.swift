/// The `[Sender]` settings the pools need.
package struct SenderSettings: Sendable {
    package var hostname: String
    package var maxConnections: Int
    package var connectTimeout: Duration
    package var readTimeout: Duration
    /// Postfix's smtp_connection_cache_time_limit is 2 s; a little longer suits a filter's steady stream.
    package var idleTime: Duration = .seconds(5)
}
