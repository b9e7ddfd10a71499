import CPosternShims
import Glibc
import PosternPolicy
import PosternUtil

/// A blocking client connection to a scanner daemon. Every call gives up at its deadline;
/// every failure is a ``PluginError`` naming the service and address (`clamd inet:3310@10.0.0.1:
/// connection refused`), ready for the log.
///
/// Non-blocking descriptor plus `poll`: the only portable way to bound `connect` and each read
/// and write by one deadline without a thread or signal per call.
public final class ScannerSocket: Sendable {
    /// A host that does not complete a handshake within this is as good as down; the other
    /// addresses still get a try before the scan's deadline. The last address may use all the
    /// time that is left.
    public static let connectTimeout = Duration.seconds(5)

    public let address: ScannerAddress
    /// `service address`, the prefix of every error.
    public let peer: String
    private let fd: Int32

    private init(fd: Int32, address: ScannerAddress, peer: String) {
        self.fd = fd
        self.address = address
        self.peer = peer
    }

    deinit { close(fd) }

    /// Connects to one of `addresses` in ``ScannerAddress/failoverOrder(_:using:)``, going on to
    /// the next when connecting fails. Only connecting fails over: once a scanner has the message,
    /// its failure is the scan's (the deadline is then mostly spent).
    public static func connect(to addresses: [ScannerAddress], service: String, deadline: ContinuousClock.Instant,
                               using generator: inout some RandomNumberGenerator) throws(PluginError) -> ScannerSocket {
        let order = ScannerAddress.failoverOrder(addresses, using: &generator)
        guard !order.isEmpty else { throw PluginError("\(service): no address configured") }
        var failures: [String] = []
        for (i, address) in order.enumerated() {
            let until = i == order.count - 1 ? deadline : min(deadline, .now + connectTimeout)
            do {
                return try connect(to: address, service: service, deadline: until)
            } catch {
                failures.append(error.message)
            }
            if ContinuousClock.now >= deadline { break }
        }
        throw PluginError(failures.joined(separator: "; "))
    }

    /// The same with the system's random numbers.
    public static func connect(to addresses: [ScannerAddress], service: String,
                               deadline: ContinuousClock.Instant) throws(PluginError) -> ScannerSocket {
        var generator = SystemRandomNumberGenerator()
        return try connect(to: addresses, service: service, deadline: deadline, using: &generator)
    }

    /// Connects to one address; a host name may give several, tried in resolver order.
    /// XXX: getaddrinfo blocks outside the deadline; use literals or /etc/hosts for scanners.
    public static func connect(to address: ScannerAddress, service: String,
                               deadline: ContinuousClock.Instant) throws(PluginError) -> ScannerSocket {
        let peer = "\(service) \(address)"
        switch address.location {
        case .unix(let path):
            guard !path.isEmpty, UnixSocketAddress.fits(path) else {
                throw PluginError("\(peer): \(path.isEmpty ? "empty" : "too long a") socket path")
            }
            let fd = try attempt(AF_UNIX, peer: peer, deadline: deadline) { fd in
                UnixSocketAddress.with(path) { Glibc.connect(fd, $0, $1) } ?? -1
            }
            return ScannerSocket(fd: fd, address: address, peer: peer)
        case .inet(let host, let port):
            var hints = addrinfo()
            hints.ai_flags = AI_NUMERICSERV
            hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
            var list: UnsafeMutablePointer<addrinfo>?
            let rc = getaddrinfo(host, String(port), &hints, &list)
            guard rc == 0 else { throw PluginError("\(peer): \(lowercasedFirst(String(cString: gai_strerror(rc))))") }
            defer { freeaddrinfo(list) }
            var failure = PluginError("\(peer): no address")
            var next = list
            while let ai = next?.pointee {
                next = ai.ai_next
                do {
                    let fd = try attempt(ai.ai_family, peer: peer, deadline: deadline) { Glibc.connect($0, ai.ai_addr, ai.ai_addrlen) }
                    return ScannerSocket(fd: fd, address: address, peer: peer)
                } catch {
                    failure = error
                }
            }
            throw failure
        }
    }

    /// A non-blocking socket of `family`, connected by `start` (which calls connect(2)) and
    /// `poll` until `deadline`.
    private static func attempt(_ family: Int32, peer: String, deadline: ContinuousClock.Instant,
                                _ start: (Int32) -> Int32) throws(PluginError) -> Int32 {
        let fd = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw PluginError("\(peer): socket: \(errnoText(errno))") }
        do throws(PluginError) {
            if start(fd) != 0 {
                guard errno == EINPROGRESS || errno == EINTR else { throw PluginError("\(peer): \(errnoText(errno))") }
                try wait(fd, for: Int16(POLLOUT), peer: peer, doing: "connecting", deadline: deadline)
                var error: Int32 = 0
                var length = socklen_t(MemoryLayout<Int32>.size)
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length)
                guard error == 0 else { throw PluginError("\(peer): \(errnoText(error))") }
            }
            return fd
        } catch {
            close(fd)
            throw error
        }
    }

    /// How much of a message goes to a scanner in one write: it is read from the spool file a
    /// piece at a time, not held whole.
    public static let chunkSize = 64 << 10

    /// Sends all of `bytes`. MSG_NOSIGNAL: a scanner that hangs up must give an error, not
    /// SIGPIPE for the whole daemon (Linux has no SO_NOSIGPIPE).
    public func writeAll(_ bytes: [UInt8], deadline: ContinuousClock.Instant) throws(PluginError) {
        try bytes.withUnsafeBytes { p in Result { () throws(PluginError) in try writeAll(p, deadline: deadline) } }.get()
    }

    public func writeAll(_ bytes: UnsafeRawBufferPointer, deadline: ContinuousClock.Instant) throws(PluginError) {
        var offset = 0
        while offset < bytes.count {
            let n = send(fd, bytes.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL))
            if n >= 0 {
                offset += n
            } else if errno == EAGAIN || errno == EWOULDBLOCK {
                try Self.wait(fd, for: Int16(POLLOUT), peer: peer, doing: "sending", deadline: deadline)
            } else if errno != EINTR {
                throw PluginError("\(peer): sending: \(errnoText(errno))")
            }
        }
    }

    /// Passes the open file `descriptor` to the scanner (SCM_RIGHTS; unix sockets only).
    public func sendDescriptor(_ descriptor: Int32, deadline: ContinuousClock.Instant) throws(PluginError) {
        while postern_send_fd(fd, descriptor) < 0 {
            if errno == EAGAIN || errno == EWOULDBLOCK {
                try Self.wait(fd, for: Int16(POLLOUT), peer: peer, doing: "sending", deadline: deadline)
            } else if errno != EINTR {
                throw PluginError("\(peer): sending the message's descriptor: \(errnoText(errno))")
            }
        }
    }

    /// Tells the scanner the request is complete (spamd waits for it like spamc sends it).
    public func shutdownWrite() {
        shutdown(fd, Int32(SHUT_WR))
    }

    /// Up to `maxCount` bytes, as soon as some arrive; empty when the scanner closed.
    public func read(maxCount: Int = 64 << 10, deadline: ContinuousClock.Instant) throws(PluginError) -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: maxCount)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, 0) }
            if n >= 0 { return Array(buffer[..<n]) }
            if errno == EAGAIN || errno == EWOULDBLOCK {
                try Self.wait(fd, for: Int16(POLLIN), peer: peer, doing: "waiting for the reply", deadline: deadline)
            } else if errno != EINTR {
                throw PluginError("\(peer): reading: \(errnoText(errno))")
            }
        }
    }

    /// Reads until the scanner closes or `isComplete` says the reply is whole; more than `limit`
    /// bytes is an error (a scanner is not allowed to fill our memory).
    public func readReply(limit: Int, deadline: ContinuousClock.Instant,
                          isComplete: ([UInt8]) -> Bool = { _ in false }) throws(PluginError) -> [UInt8] {
        var reply: [UInt8] = []
        while !isComplete(reply) {
            let chunk = try read(deadline: deadline)
            if chunk.isEmpty { break }
            reply += chunk
            guard reply.count <= limit else { throw PluginError("\(peer): reply longer than \(limit) bytes") }
        }
        return reply
    }

    /// Polls until `events` or `deadline`. POLLERR/POLLHUP also return: the next call reports them.
    private static func wait(_ fd: Int32, for events: Int16, peer: String, doing what: String,
                             deadline: ContinuousClock.Instant) throws(PluginError) {
        while true {
            let left = (deadline - .now).components
            guard left.seconds > 0 || (left.seconds == 0 && left.attoseconds > 0) else {
                throw PluginError("\(peer): timed out \(what)")
            }
            let ms = min(left.seconds, 1 << 20) * 1000 + (left.attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000
            var p = pollfd(fd: fd, events: events, revents: 0)
            let rc = poll(&p, 1, Int32(ms))
            if rc > 0 { return }
            if rc < 0 && errno != EINTR { throw PluginError("\(peer): poll: \(errnoText(errno))") }
        }
    }
}

/// `strerror` in log style: `connection refused`.
private func errnoText(_ code: Int32) -> String {
    lowercasedFirst(String(cString: strerror(code)))
}

private func lowercasedFirst(_ text: String) -> String {
    text.prefix(1).lowercased() + text.dropFirst()
}

extension PluginError {
    /// `unexpected reply '…'`: the peer's text made safe for a log line (printable ASCII, at
    /// most 100 characters).
    package static func unexpected(_ text: some StringProtocol) -> PluginError {
        PluginError("unexpected reply '\(ASCII.oneLine(text, replacing: ASCII.isNotPrintable, limit: 100))'")
    }
}
