import CPosternShims
import Glibc
import PosternUtil

/// Every change an administrator makes to the queue or the quarantine, with who made it: to
/// syslog (facility mail, ident `posternctl`, as postsuper logs; the journal under systemd)
/// and the same line on stderr, so that the one who typed the command sees what was done.
enum AdminLog {
    /// `user=root uid=0`, plus `sudo_user=alice` under sudo and `login=bob` when the login
    /// name of the terminal differs from the user.
    static let invoker: String = {
        let uid = getuid()
        let user = getpwuid(uid).map { String(cString: $0.pointee.pw_name) } ?? "\(uid)"
        var who = "user=\(clean(user)) uid=\(uid)"
        if let sudo = getenv("SUDO_USER").map({ String(cString: $0) }), !sudo.isEmpty { who += " sudo_user=\(clean(sudo))" }
        if let login = getlogin().map({ String(cString: $0) }), !login.isEmpty, login != user { who += " login=\(clean(login))" }
        return who
    }()

    /// Logs `event` (`ID: deleted from deferred/`) with the invoker.
    static func record(_ event: String) {
        let line = "\(event) by \(invoker)"
        postern_syslog("posternctl", LOG_NOTICE, line)
        Stderr.write("posternctl: \(line)\n")
    }

    /// Names come from the environment: no spaces or control characters into the log.
    private static func clean(_ s: String) -> String {
        printable(s, limit: 64).replacingSpaces()
    }
}
