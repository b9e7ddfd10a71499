#define _GNU_SOURCE
#include "CPosternShims.h"
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_ENV 512

pid_t postern_spawn_with_fds(const char *path, char *const argv[], char *const envp[],
                             const int *fds, int nfds) {
    /* Everything the child touches is built before fork: after fork in a multi-threaded
       parent only async-signal-safe functions may be called. */
    char *env[MAX_ENV + 2];
    int n = 0;
    while (envp[n] && n < MAX_ENV) { env[n] = envp[n]; n++; }
    char pidvar[32] = "LISTEN_PID=";
    env[n] = pidvar;
    env[n + 1] = NULL;

    pid_t pid = fork();
    if (pid != 0) return pid;

    /* child */
    sigset_t all;
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
    for (int s = 1; s < 32; s++) if (s != SIGKILL && s != SIGSTOP) signal(s, SIG_DFL);

    /* Write our pid into LISTEN_PID= by hand (snprintf is not async-signal-safe). */
    pid_t me = getpid();
    char digits[16];
    int d = 0;
    do { digits[d++] = (char)('0' + me % 10); me /= 10; } while (me > 0 && d < 15);
    int off = 11;
    while (d > 0) pidvar[off++] = digits[--d];
    pidvar[off] = 0;

    /* Move the fds out of the way first, then into place at 3, 4, … */
    int tmp[64];
    if (nfds > 64) _exit(127);
    for (int i = 0; i < nfds; i++) {
        tmp[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 3 + nfds);
        if (tmp[i] < 0) _exit(127);
    }
    for (int i = 0; i < nfds; i++) {
        if (dup2(tmp[i], 3 + i) < 0) _exit(127);   /* dup2 clears FD_CLOEXEC on the copy */
        close(tmp[i]);
    }
    execve(path, argv, env);
    _exit(127);
}

int postern_fsync_dir(const char *path) {
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

int postern_syncfs(int fd) {
    return syncfs(fd);
}

#include <stdlib.h>
#include <syslog.h>

void postern_syslog(const char *ident, int priority, const char *message) {
    static char *kept = NULL;
    if (kept == NULL || strcmp(kept, ident) != 0) {
        char *copy = strdup(ident);
        if (copy == NULL) return;
        openlog(copy, LOG_PID, LOG_MAIL);
        free(kept);   /* after openlog: syslog no longer points at it */
        kept = copy;
    }
    syslog(priority, "%s", message);
}

int postern_start_writeback(int fd, off_t offset, off_t length) {
    return sync_file_range(fd, offset, length, SYNC_FILE_RANGE_WRITE);
}

int postern_memfd(const char *name) {
    return memfd_create(name, MFD_CLOEXEC);
}

ssize_t postern_send_fd(int sock, int fd) {
    char byte = 0;
    struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
    union { struct cmsghdr header; char space[CMSG_SPACE(sizeof(int))]; } control;
    memset(&control, 0, sizeof control);
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.space, .msg_controllen = sizeof control.space };
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof(int));
    return sendmsg(sock, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
}

int postern_name_thread(const char *name) {
    char shortened[16];
    strncpy(shortened, name, sizeof shortened - 1);
    shortened[sizeof shortened - 1] = 0;
    return pthread_setname_np(pthread_self(), shortened);
}
