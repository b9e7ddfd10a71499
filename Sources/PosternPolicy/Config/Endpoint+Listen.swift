import Glibc
import PosternUtil

extension Endpoint {
    /// The accept queue of a socket Postern binds itself: a burst of clients waits in it rather
    /// than being refused or SYN-cookied.
    public static let listenBacklog: Int32 = 1024

    /// A listening socket on this endpoint, as systemd's .socket units pass one: bound,
    /// listening, close-on-exec, blocking (its user sets what it needs). `posternctl run` passes
    /// these to the daemons, and a daemon started without passed sockets binds its own with it.
    ///
    /// A unix socket replaces an earlier socket at its path (left by a daemon that was killed)
    /// but never another kind of file: a mistyped path must not delete a file. It is made
    /// group-accessible (0660), as the units' `SocketMode=` does.
    public func listen(backlog: Int32 = Endpoint.listenBacklog) throws -> Int32 {
        switch location {
        case .inet(let host, let port):
            var hints = addrinfo()
            hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV
            hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
            var res: UnsafeMutablePointer<addrinfo>?
            let rc = getaddrinfo(host, String(port), &hints, &res)
            guard rc == 0, let ai = res else { throw SpoolError("getaddrinfo", "\(host): \(String(cString: gai_strerror(rc)))", errno: EINVAL) }
            defer { freeaddrinfo(res) }
            let fd = socket(ai.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { throw SpoolError("socket", "\(self)") }
            var one: Int32 = 1
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
            guard bind(fd, ai.pointee.ai_addr, ai.pointee.ai_addrlen) == 0 else { let err = errno; close(fd); throw SpoolError("bind", "\(self)", errno: err) }
            guard Glibc.listen(fd, backlog) == 0 else { let err = errno; close(fd); throw SpoolError("listen", "\(self)", errno: err) }
            return fd
        case .unix(let path):
            if let slash = path.lastIndex(of: "/"), slash != path.startIndex { try SysCall.mkdirs(String(path[..<slash]), mode: 0o755) }
            var st = stat()
            if lstat(path, &st) == 0 {
                guard st.st_mode & S_IFMT == S_IFSOCK else { throw SpoolError("bind", path, errno: EEXIST) }
                unlink(path)
            }
            let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { throw SpoolError("socket", path) }
            guard let rc = UnixSocketAddress.with(path, { bind(fd, $0, $1) }) else { close(fd); throw SpoolError("bind", path, errno: ENAMETOOLONG) }
            guard rc == 0 else { let err = errno; close(fd); throw SpoolError("bind", path, errno: err) }
            chmod(path, 0o660)
            guard Glibc.listen(fd, backlog) == 0 else { let err = errno; close(fd); throw SpoolError("listen", path, errno: err) }
            return fd
        }
    }
}
