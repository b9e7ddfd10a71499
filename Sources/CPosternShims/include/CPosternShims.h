#pragma once
#include <sys/types.h>

/// Forks and execs `path` with `argv`/`envp`, moving `fds[0..<nfds]` to descriptors 3, 4, …
/// and adding `LISTEN_PID=<child pid>` to the environment, as systemd socket activation does.
/// Everything the child needs is prepared by the caller; between fork and exec the child only
/// makes async-signal-safe calls. Returns the child's pid, or -1 with errno set.
pid_t postern_spawn_with_fds(const char *path, char *const argv[], char *const envp[],
                             const int *fds, int nfds);

/// fsync(2) of a directory by path, so a rename or link in it is durable.
int postern_fsync_dir(const char *path);

/// syncfs(2): writes back every dirty page and inode of the file system holding `fd` and
/// flushes the device cache (hidden behind _GNU_SOURCE in Swift's Glibc module).
int postern_syncfs(int fd);

/// sync_file_range(2) with SYNC_FILE_RANGE_WRITE: starts writing back the dirty pages of
/// `length` octets at `offset` without waiting for them (hidden behind _GNU_SOURCE too).
int postern_start_writeback(int fd, off_t offset, off_t length);

/// openlog(3) with `ident` (copied: syslog keeps the pointer), LOG_PID, facility LOG_MAIL,
/// as Postfix's tools log; then syslog(3) of one message at `priority` (no format string).
void postern_syslog(const char *ident, int priority, const char *message);

/// memfd_create(2) with MFD_CLOEXEC: an anonymous file in memory (hidden behind _GNU_SOURCE).
int postern_memfd(const char *name);

/// Names the calling thread (15 octets are kept), as `top -H` and `ps -L` show it.
int postern_name_thread(const char *name);

/// Sends `fd` over the unix socket `sock` (SCM_RIGHTS, with one NUL octet of data, as clamd's
/// FILDES wants it), MSG_NOSIGNAL | MSG_DONTWAIT. Returns what sendmsg(2) returns.
ssize_t postern_send_fd(int sock, int fd);
