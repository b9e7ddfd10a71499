import Glibc
import PosternPolicy
import PosternUtil

/// Binds listening sockets for `posternctl run`, as systemd's .socket units would.
enum SocketBinder {
    static func listen(_ e: Endpoint) throws -> Int32 {
        switch e.location {
        case .inet(let host, let port):
            var hints = addrinfo()
            hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV
            hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
            var res: UnsafeMutablePointer<addrinfo>?
            let rc = getaddrinfo(host, String(port), &hints, &res)
            guard rc == 0, let ai = res else { throw SpoolError("getaddrinfo", "\(host): \(String(cString: gai_strerror(rc)))", errno: EINVAL) }
            defer { freeaddrinfo(res) }
            let fd = socket(ai.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { throw SpoolError("socket", "\(e)") }
            var one: Int32 = 1
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
            guard bind(fd, ai.pointee.ai_addr, ai.pointee.ai_addrlen) == 0 else { let err = errno; close(fd); throw SpoolError("bind", "\(e)", errno: err) }
            guard Glibc.listen(fd, 1024) == 0 else { let err = errno; close(fd); throw SpoolError("listen", "\(e)", errno: err) }
            return fd
        case .unix(let path):
            if let slash = path.lastIndex(of: "/") { try SysCall.mkdirs(String(path[..<slash]), mode: 0o755) }
            unlink(path)
            let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { throw SpoolError("socket", path) }
            guard let rc = UnixSocketAddress.with(path, { bind(fd, $0, $1) }) else { close(fd); throw SpoolError("bind", path, errno: ENAMETOOLONG) }
            guard rc == 0 else { let err = errno; close(fd); throw SpoolError("bind", path, errno: err) }
            chmod(path, 0o660)
            guard Glibc.listen(fd, 1024) == 0 else { let err = errno; close(fd); throw SpoolError("listen", path, errno: err) }
            return fd
        }
    }
}
