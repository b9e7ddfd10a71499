#!/usr/bin/env bash
# Boots a real systemd as PID 1 in a throw-away container whose root is this machine's own
# file system under a copy-on-write overlay (../shared/notes/systemd-pid1.md), for tests that
# need what only systemd as PID 1 shows: User=, the sandbox, the watchdog, restarts, stop timing.
#
#   tools/systemd-pid1.sh WORKDIR [--bind-ro=SRC:DST]...
#
# Runs in the foreground until the container powers off (`systemctl poweroff` inside, or
# SIGKILL to its PID 1); Tests/e2e/test_deb_systemd.py drives it. Must run as root.
#
# - Everything runs in a private mount namespace (unshare), so every mount below vanishes
#   with this process, even after a SIGKILL; the container's writes land in a tmpfs.
# - /opt/swift (the Swift toolchain) is an empty tmpfs inside: what is installed there must
#   run without it.
# - The container boots its own target (postern-test-boot.target: sysinit.target only), so
#   none of the host's enabled services (postfix, clamd, ...) start in it; it has its own
#   loopback and no other network (--private-network).
# - It writes WORKDIR/ready once systemd is up, with the host PID of the container's PID 1 in
#   WORKDIR/pid1 (for nsenter --target PID --all).
# - If the process that started it dies (a test killed by its timeout), the container is
#   killed too.
set -euo pipefail
[[ $# -ge 1 ]] || { echo "usage: $0 WORKDIR [--bind-ro=SRC:DST]..." >&2; exit 2; }
W=$(realpath "$1"); shift
[[ $(id -u) -eq 0 ]] || { echo "systemd-pid1: must run as root" >&2; exit 1; }
for t in unshare systemd-nspawn systemd-id128; do
    command -v "$t" >/dev/null || { echo "systemd-pid1: $t not found (package systemd-container)" >&2; exit 1; }
done

if [[ -z ${POSTERN_PID1_UNSHARED:-} ]]; then
    export POSTERN_PID1_UNSHARED=1 POSTERN_PID1_PARENT=$PPID
    exec unshare --mount --propagation private -- "$0" "$W" "$@"
fi

# nspawn puts the container's cgroups below the one it runs in: give it one of its own in
# each hierarchy systemd uses (name=systemd and unified on a v1 hybrid, or the v2 root),
# and remove them when it is done.
name=postern-pid1.$$
cgroups=()
for h in /sys/fs/cgroup/systemd /sys/fs/cgroup/unified /sys/fs/cgroup; do
    [[ -e $h/cgroup.procs ]] || continue
    [[ $h == /sys/fs/cgroup && -d /sys/fs/cgroup/systemd ]] && continue   # v1: not a hierarchy
    mkdir "$h/$name" && echo $$ > "$h/$name/cgroup.procs" && cgroups+=("$h")
done
cleanup() {
    local h d
    [[ -z ${watcher:-} ]] || kill "$watcher" 2>/dev/null || true
    for h in "${cgroups[@]}"; do echo $$ > "$h/cgroup.procs" 2>/dev/null || true; done
    # Depth first: nspawn leaves payload/ and supervisor/ below ours. After a SIGKILL the
    # container's processes take a moment to go, and a cgroup with processes stays.
    for _ in $(seq 50); do
        for h in "${cgroups[@]}"; do
            while IFS= read -r d; do rmdir "$d" 2>/dev/null || true; done \
                < <(find "$h/$name" -depth -type d 2>/dev/null)
        done
        local left=0
        for h in "${cgroups[@]}"; do [[ -d $h/$name ]] && left=1; done
        (( left )) || return 0
        sleep 0.1
    done
    echo "systemd-pid1: could not remove the cgroups $name" >&2
}
trap cleanup EXIT

mkdir -p "$W/t"
mount -t tmpfs -o mode=0755,size=4g postern-pid1 "$W/t"
mkdir "$W/t/upper" "$W/t/work" "$W/t/root"
mount -t overlay -o "lowerdir=/,upperdir=$W/t/upper,workdir=$W/t/work" postern-pid1 "$W/t/root"
# nspawn's runtime state stays in this namespace, never in the host's /run.
mount -t tmpfs -o mode=0755 postern-pid1-run /run
ROOT=$W/t/root

# With the host's machine id nspawn refuses to link journals.
systemd-id128 new > "$ROOT/etc/machine-id"
cat > "$ROOT/etc/systemd/system/postern-test-boot.target" <<'EOF'
[Unit]
Description=Postern test boot (sysinit.target only, no host services)
Requires=sysinit.target
After=sysinit.target
AllowIsolate=yes
EOF
# Left over from a package installation on the host, it would stop units from starting.
rm -f "$ROOT/usr/sbin/policy-rc.d"
rm -f "$W/ready" "$W/pid1"

# Report the container's PID 1 once its systemd has finished booting.
(
    for _ in $(seq 600); do
        sleep 0.1
        # The container's PID 1: below nspawn, the process that is PID 1 in its own namespace.
        todo=$(pgrep -P $$ -x systemd-nspawn || true)
        while [[ -n $todo && ! -s $W/pid1 ]]; do
            next=
            for p in $todo; do
                if [[ $(awk '/^NSpid:/ {print $NF}' "/proc/$p/status" 2>/dev/null) == 1 ]]; then
                    echo "$p" > "$W/pid1"
                fi
                next+=" $(pgrep -P "$p" || true)"
            done
            todo=$next
        done
        [[ -s $W/pid1 ]] || continue
        state=$(nsenter --target "$(cat "$W/pid1")" --all systemctl is-system-running 2>/dev/null || true)
        case $state in running|degraded) echo "$state" > "$W/ready"; break ;; esac
    done
    [[ -e $W/ready ]] || echo "systemd-pid1: the container did not finish booting within 60 s" >&2
    # Whoever started us (the test) died without powering the container off: end it.
    while kill -0 "$POSTERN_PID1_PARENT" 2>/dev/null; do sleep 1; done
    [[ -s $W/pid1 ]] && kill -KILL "$(cat "$W/pid1")" 2>/dev/null
) &
watcher=$!

systemd-nspawn -D "$ROOT" --register=no --keep-unit --private-network --console=read-only \
    --tmpfs=/opt/swift:mode=0755 "$@" --boot -- systemd.unit=postern-test-boot.target
