import Glibc
import NIOCore
import NIOPosix

/// Short, log-friendly text for network errors (`Connection refused`, not NIO's dump).
enum ErrorText {
    static func describe(_ error: any Error) -> String {
        switch error {
        case let e as NIOConnectionError:
            if let first = e.connectionErrors.first { return describe(first.error) }
            if e.dnsAError != nil || e.dnsAAAAError != nil { return "host \(e.host) not found" }
            return "cannot connect to \(e.host):\(e.port)"
        case let e as IOError:
            return String(cString: strerror(e.errnoCode))
        case let e as ChannelError:
            if case .connectTimeout = e { return "connection timed out" }
            return e == .ioOnClosedChannel || e == .eof ? "connection closed" : "\(e)"
        default:
            return "\(error)"
        }
    }
}
