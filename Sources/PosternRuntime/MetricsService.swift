import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import PosternPolicy
import Prometheus
import ServiceLifecycle

/// Serves a daemon's Prometheus registry on `GET /metrics` (text exposition format 0.0.4),
/// when `[Metrics]` names an address for it; idle otherwise.
public struct MetricsService: Service {
    package let endpoint: Endpoint?
    package let registry: PrometheusCollectorRegistry
    /// Called before each scrape to update gauges that are measured, not counted.
    package let refresh: @Sendable () -> Void
    package let group: any EventLoopGroup
    package let logger: Logger

    public init(endpoint: Endpoint?, registry: PrometheusCollectorRegistry, group: any EventLoopGroup, logger: Logger,
                refresh: @escaping @Sendable () -> Void = {}) {
        self.endpoint = endpoint
        self.registry = registry
        self.refresh = refresh
        self.group = group
        self.logger = logger
    }

    public func run() async throws {
        guard let endpoint, case .inet(let host, let port) = endpoint.location else {
            try? await gracefulShutdown()
            return
        }
        let registry = self.registry
        let refresh = self.refresh
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { ch in
                ch.pipeline.configureHTTPServerPipeline().flatMap {
                    ch.pipeline.addHandler(MetricsHTTPHandler(registry: registry, refresh: refresh))
                }
            }
            .bind(host: host, port: port).get()
        logger.info("metrics on http://\(host.contains(":") ? "[\(host)]" : host):\(port)/metrics")
        try? await gracefulShutdown()
        try? await channel.close()
    }
}

/// One request, one response: the registry for `/metrics`, 404 for anything else.
package final class MetricsHTTPHandler: ChannelInboundHandler, @unchecked Sendable {
    package typealias InboundIn = HTTPServerRequestPart
    package typealias OutboundOut = HTTPServerResponsePart
    private let registry: PrometheusCollectorRegistry
    private let refresh: @Sendable () -> Void
    private var uri = ""
    private var keepAlive = false

    package init(registry: PrometheusCollectorRegistry, refresh: @escaping @Sendable () -> Void) {
        self.registry = registry
        self.refresh = refresh
    }

    package func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            uri = head.uri
            keepAlive = head.isKeepAlive
        case .body:
            break
        case .end:
            let found = uri == "/metrics" || uri.hasPrefix("/metrics?")
            var body = ByteBuffer()
            if found {
                refresh()
                body.writeBytes(registry.emitToBuffer())
            } else {
                body.writeString("not found: try /metrics\n")
            }
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: found ? "text/plain; version=0.0.4; charset=utf-8" : "text/plain")
            headers.add(name: "Content-Length", value: String(body.readableBytes))
            if !keepAlive { headers.add(name: "Connection", value: "close") }
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: found ? .ok : .notFound, headers: headers))), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
            let keep = keepAlive
            let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
                if !keep { bound.value.close(promise: nil) }
            }
        }
    }

    package func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

extension MetricNameDescriptor {
    /// `postern_NAME_UNIT` with its help text.
    public static func postern(_ name: String, unit: String, help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "postern", metricName: name, unitName: unit, helpText: help)
    }
}
