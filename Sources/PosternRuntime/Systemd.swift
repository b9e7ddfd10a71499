import CSystemd
import Glibc

/// libsystemd's socket activation and notification calls, for the three daemons.
/// - SeeAlso: sd_listen_fds(3), sd_notify(3)
public enum Systemd {
    public struct ListenFD: Sendable {
        public let fd: CInt
        public let name: String
        public let isUnixStream: Bool
        public let isInetStream: Bool
    }

    /// The sockets passed by systemd (or `posternctl run`), with their `FileDescriptorName=`.
    public static func listenFDs(unsetEnvironment: Bool = true) -> [ListenFD] {
        var names: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = nil
        let n = sd_listen_fds_with_names(unsetEnvironment ? 1 : 0, &names)
        guard n > 0 else { return [] }
        defer {
            if let names {
                for i in 0..<Int(n) { free(names[i]) }
                free(names)
            }
        }
        let stream = CInt(SOCK_STREAM.rawValue)
        return (0..<n).map { i in
            let fd = SD_LISTEN_FDS_START + i
            return ListenFD(fd: fd, name: names?[Int(i)].map { String(cString: $0) } ?? "unknown",
                            isUnixStream: sd_is_socket_unix(fd, stream, 1, nil, 0) > 0,
                            isInetStream: sd_is_socket_inet(fd, AF_UNSPEC, stream, 1, 0) > 0)
        }
    }

    /// Sends a state string (`READY=1`, `STATUS=…`); a no-op outside systemd.
    @discardableResult
    public static func notify(_ state: String) -> Bool { sd_notify(0, state) > 0 }

    /// The watchdog interval systemd expects pings within, if any.
    public static func watchdogInterval() -> Duration? {
        var usec: UInt64 = 0
        guard sd_watchdog_enabled(0, &usec) > 0 else { return nil }
        return .microseconds(Int64(usec))
    }
}
