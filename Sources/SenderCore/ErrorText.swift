import Glibc
import NIOCore
import NIOPosix
import NIOSSL

/// Short, log-friendly text for network errors (`Connection refused`, not NIO's dump).
package enum ErrorText {
    package static func describe(_ error: any Error) -> String {
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
        case let e as NIOSSLError:
            switch e {
            case .handshakeFailed(let b): return "TLS handshake failed: \(boringSSL(b))"
            case .uncleanShutdown: return "connection closed without TLS close_notify"
            default: return "TLS: \(e)"
            }
        case let e as NIOSSLExtraError where e == .failedToValidateHostname:
            return "TLS: the certificate does not name the next hop (its host name, TLSServerName, or for an"
                + " address route without one the address itself)"
        case let e as NIOSSLExtraError:
            // "NIOSSLExtraError.failedToValidateHostname: Couldn't find … in certificate from peer"
            let text = "\(e)"
            return "TLS: " + (text.firstIndex(of: " ").map { String(text[text.index(after: $0)...]) } ?? text)
        default:
            return "\(error)"
        }
    }

    /// BoringSSL's reason without its numbers and source paths: `CERTIFICATE_VERIFY_FAILED`.
    private static func boringSSL(_ e: BoringSSLError) -> String {
        guard case .sslError(let stack) = e, !stack.isEmpty else { return "\(e)" }
        return stack.map { entry -> String in
            let parts = "\(entry)".split(separator: ":", omittingEmptySubsequences: false)
            guard let i = parts.firstIndex(of: "OPENSSL_internal"), i + 1 < parts.count else { return "\(entry)" }
            return String(parts[i + 1].prefix { $0 != " " })
        }.joined(separator: ", ")
    }
}
