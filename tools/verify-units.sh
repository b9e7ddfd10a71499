#!/usr/bin/env bash
# Checks the systemd units in systemd/ with `systemd-analyze verify`.
#
# systemd-analyze exits 0 on unknown keys and bad values and only says so on
# stderr, and exits 1 whenever ExecStart= names a missing binary; so each
# unit is verified from a temp copy whose ExecStart= points at a binary that
# exists (the built daemon in .build/debug, else /bin/true), and any output
# at all counts as a failure.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BIN_DIR=${POSTERN_BIN:-$PWD/.build/debug}
command -v systemd-analyze >/dev/null || { echo "verify-units: systemd-analyze not found" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/postern-units.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

shopt -s nullglob
units=(systemd/*.service systemd/*.socket systemd/*.target)
(( ${#units[@]} )) || { echo "verify-units: no units in systemd/" >&2; exit 1; }
for u in "${units[@]}"; do
    name=$(basename "$u")
    # ExecStart=/usr/lib/postern/DAEMON ... -> the built DAEMON, or /bin/true.
    daemon=$(sed -n 's|^ExecStart=/usr/lib/postern/\([^ ]*\).*|\1|p' "$u")
    target=/bin/true
    [[ -n $daemon && -x $BIN_DIR/$daemon ]] && target=$BIN_DIR/$daemon
    sed "s|^ExecStart=/usr/lib/postern/[^ ]*|ExecStart=$target|" "$u" > "$tmp/$name"
done

# One run over the whole set (a .socket needs its .service, the target names
# the rest); each line of output is charged to the unit it names.
out=$(cd "$tmp" && systemd-analyze verify --man=no "${units[@]/#systemd\//$tmp/}" 2>&1)
rc=$?
passed=0 failed=0 charged=""
for u in "${units[@]}"; do
    name=$(basename "$u")
    mine=$(grep -F -e "/$name:" -e "$name:" -e "$name " <<<"$out")
    if [[ -z $mine ]]; then
        passed=$((passed + 1)); echo "ok    $name"
    else
        failed=$((failed + 1)); echo "FAIL  $name"; sed 's/^/      /' <<<"$mine"
        charged+="$mine"$'\n'
    fi
done
# Output that names none of the units, or a failing exit code without any
# output, still fails the check.
other=$(grep -vxF -f <(printf '%s' "$charged" | sed '/^$/d') <<<"$out" | sed '/^$/d')
[[ -z $charged ]] && other=$out
if [[ -n $other ]]; then
    echo "FAIL  (not tied to one unit)"; sed 's/^/      /' <<<"$other"
fi
echo "units: $passed passed, $failed failed"
[[ $rc -eq 0 && -z $out ]] || { echo "systemd-analyze verify: exit $rc${out:+, with output}"; exit 1; }
