import Glibc
import Logging
import NIOCore
import NIOPosix

/// Opens a daemon's listening sockets: those systemd (or `posternctl run`) passed with one of
/// `names`, or else binds `endpoints` itself. Never sets SO_REUSEADDR on an adopted socket.
public enum Listeners {
    public static func open(
        names: Set<String>, endpoints: [Endpoint], bootstrap: ServerBootstrap, logger: Logger
    ) async throws -> [any Channel] {
        let passed = Systemd.listenFDs()
        if !passed.isEmpty {
            var channels: [any Channel] = []
            for l in passed {
                guard names.contains(l.name) || (passed.count == 1 && l.name == "unknown") else {
                    logger.warning("ignoring passed socket with unexpected name", metadata: ["fd": "\(l.fd)", "name": "\(l.name)"])
                    close(l.fd)
                    continue
                }
                logger.info("adopting passed socket", metadata: ["fd": "\(l.fd)", "name": "\(l.name)"])
                channels.append(try await bootstrap.withBoundSocket(l.fd).get())
            }
            if !channels.isEmpty { return channels }
        }
        var channels: [any Channel] = []
        for e in endpoints {
            switch e.location {
            case .inet(let host, let port):
                channels.append(try await bootstrap
                    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                    .bind(host: host, port: port).get())
            case .unix(let path):
                try? SysCall.mkdirs(String(path[..<(path.lastIndex(of: "/") ?? path.startIndex)]), mode: 0o755)
                channels.append(try await bootstrap.bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true).get())
            }
            logger.info("listening", metadata: ["address": "\(e)"])
        }
        return channels
    }
}
