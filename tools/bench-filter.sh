#!/usr/bin/env bash
# FILTER_CMD for ../shared/bench/peers.sh (see `make bench`): runs Postern in
# callback mode on $BENCH_LISTEN_HOST:$BENCH_LISTEN_PORT, returning mail to
# the bench's sink on 127.0.0.1:$BENCH_FORWARD_PORT (the sink listens on
# loopback, so inet:PORT@CLIENT-IP reaches it).
#
# POSTERN_CLAMD=peers scans every message with ClamAV before the queue, on
# the clamd that peers.sh started for ClamSMTP (the newest live
# peers-bench.*/clamav/clamd.sock); POSTERN_CLAMD=local:/path names another.
#
# posternctl is exec'd, so the bench measures and stops Postern itself.
# Its config and spool live in ${TMPDIR:-/tmp}/postern-bench.*; a directory
# whose owner (the PID recorded in it) is gone is removed by the next run.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${POSTERN_BIN:-$HERE/.build/release}/posternctl
: "${BENCH_LISTEN_HOST:=127.0.0.1}" "${BENCH_LISTEN_PORT:?}" "${BENCH_FORWARD_PORT:?}"
[[ -x $BIN ]] || { echo "bench-filter: $BIN missing (make release)" >&2; exit 1; }

base=${TMPDIR:-/tmp}
for old in "$base"/postern-bench.*; do
    [[ -d $old && -f $old/owner.pid ]] || continue
    kill -0 "$(cat "$old/owner.pid")" 2>/dev/null || rm -rf "$old"
done
dir=$(mktemp -d "$base/postern-bench.XXXXXX")
chmod 755 "$dir"
mkdir -p "$dir/spool" "$dir/run"
echo $$ > "$dir/owner.pid"      # exec keeps the PID

scanning=""
case ${POSTERN_CLAMD:-} in
    "") ;;
    peers)
        sock=""
        for ((i = 0; i < 600; i++)); do   # peers.sh starts clamd before the filter; be patient anyway
            sock=$(ls -t "${BENCH_TMPDIR:-$base}"/peers-bench.*/clamav/clamd.sock 2>/dev/null | head -1 || true)
            [[ -S $sock ]] && break
            sleep 0.1
        done
        [[ -S $sock ]] || { echo "bench-filter: no peers.sh clamd socket (PATHS must include clamsmtp)" >&2; exit 1; }
        scanning="local:$sock" ;;
    *) scanning=$POSTERN_CLAMD ;;
esac
if [[ -n $scanning ]]; then
    scanning="[Scanner]
BeforeQueueFilters = ClamAV
[ClamAV]
Address = $scanning"
fi

cat > "$dir/postern.conf" <<CONF
; Written by tools/bench-filter.sh for one benchmark run.
[General]
Hostname = bench-filter.example.test
SpoolDir = $dir/spool
RunDir = $dir/run

[Receiver]
Address = inet:$BENCH_LISTEN_PORT@$BENCH_LISTEN_HOST
ProtectedNetworks = 127.0.0.0/8

[Sender]
Address = inet:$BENCH_FORWARD_PORT@127.0.0.1
SecureHash = bench-not-a-secret

[Notifier]
FilterMail = root@localhost

$scanning

[Rules]
!(from:"" || from:"root@localhost") cont SenderAddress = inet:$BENCH_FORWARD_PORT@CLIENT-IP
CONF

cd "$dir"
exec "$BIN" run --config "$dir/postern.conf"
