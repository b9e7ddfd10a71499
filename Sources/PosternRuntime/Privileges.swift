import Glibc
import Logging
import PosternPolicy
import PosternSpool

/// `[General] User`: a daemon started as root (`posternctl run` as root, a container) gives the
/// spool's directories to that user and becomes it for good before it does anything else.
/// Its listening sockets are bound by whoever started it (posternctl run, systemd) while still
/// root, as Postfix's master binds for its daemons; a daemon that binds its own binds as the
/// user. Under the shipped systemd units the daemons start as `postern` and this does nothing.
public enum Privileges {
    /// Why switching users failed: the daemon must not go on as root.
    public struct SwitchError: Error, CustomStringConvertible {
        public var hint: String
        public var description: String { hint }
    }

    /// Switches to `user` (its uid, primary group and supplementary groups) when running as
    /// root and a user is set; first hands it the spool and run directories root created.
    public static func drop(_ config: PosternConfig, layout: SpoolLayout, logger: Logger) throws(SwitchError) {
        guard let user = config.general.user, !user.isEmpty, geteuid() == 0 else { return }
        // The daemons' own unix sockets too: connecting needs write permission on the file.
        var paths = [config.general.runDir, config.quarantine.path]
        for e in [config.scanner.address, config.sender.controlAddress] + config.receiver.address {
            if case .unix(let path) = e.location { paths.append(path) }
        }
        guard let pw = getpwnam(user) else { throw SwitchError(hint: "[General] User: no such user '\(user)'") }
        let uid = pw.pointee.pw_uid
        let gid = pw.pointee.pw_gid
        guard uid != 0 else { return }
        // What root created for this daemon (the directories on start, the keys) must be the
        // user's, or the daemon could no longer write its own spool.
        let owned = [layout.root] + SpoolSecret.files.map { layout.root + "/" + $0 }
            + SpoolState.allCases.map(layout.directory) + paths
        for path in owned {
            var st = stat()
            if lstat(path, &st) == 0 && st.st_uid == 0 && chown(path, uid, gid) != 0 {
                throw SwitchError(hint: "[General] User: cannot give \(path) to \(user): \(String(cString: strerror(errno)))")
            }
        }
        guard initgroups(user, gid) == 0, setgid(gid) == 0, setuid(uid) == 0 else {
            throw SwitchError(hint: "[General] User: cannot switch to \(user): \(String(cString: strerror(errno)))")
        }
        guard setuid(0) != 0 else { throw SwitchError(hint: "[General] User: root could be regained after switching to \(user)") }
        // The process already has threads (the runtime's, the main thread waiting in the async
        // main), and not every one of them is seen to take the new credentials. Executing
        // this program again leaves one thread, with this one's credentials; the sockets passed
        // in stay open across the exec (LISTEN_FDS has not been consumed yet).
        logger.info("switching to \(user)", metadata: ["uid": "\(uid)", "gid": "\(gid)"])
        let args = CommandLine.arguments.map { strdup($0) } + [nil]
        execv("/proc/self/exe", args)
        throw SwitchError(hint: "[General] User: cannot execute /proc/self/exe again: \(String(cString: strerror(errno)))")
    }
}
