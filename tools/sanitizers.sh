#!/usr/bin/env bash
# Builds and runs the unit tests (swift test) under the sanitizers, each in its own build
# directory so that the ordinary debug build stays as it is:
#
#   tools/sanitizers.sh [address] [thread]       (both by default)
#
# address: AddressSanitizer, .build-asan (use after free, overflows in the unsafe-pointer code:
#          DataDecoder, MIMEWalk, EightBitScan, the C shims, zlib calls)
# thread:  ThreadSanitizer, .build-tsan (data races: the spool's group commit, plug-in threads,
#          NIO event loops, the config store)
# tools/tsan.supp lists the reports shown to be false positives, each with why.
# Exit status non-zero if a build fails, a test fails or a sanitizer reports. SANITIZER_NICE
# (default 0) runs both at a lower priority on a shared machine.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
kinds=("$@")
(( ${#kinds[@]} )) || kinds=(address thread)
nice=${SANITIZER_NICE:-0}
failed=()
for kind in "${kinds[@]}"; do
    case $kind in
        address) dir=.build-asan ;;
        thread) dir=.build-tsan ;;
        *) echo "sanitizers.sh: unknown sanitizer $kind" >&2; exit 2 ;;
    esac
    start=$SECONDS
    echo "==> sanitizers: building the tests with -sanitize=$kind in $dir"
    if ! nice -n "$nice" swift build --build-tests --sanitize="$kind" --scratch-path "$dir"; then
        failed+=("$kind-build"); continue
    fi
    built=$SECONDS
    echo "==> sanitizers: running the tests under $kind"
    # The sanitizer, not the Swift backtracer, reports a crash; halt_on_error=0 lists every
    # report of a run, and the exit status still says there was one.
    if ! env SWIFT_BACKTRACE=enable=no \
            ASAN_OPTIONS=detect_leaks=0:halt_on_error=1:strict_string_checks=1 \
            TSAN_OPTIONS=halt_on_error=0:second_deadlock_stack=1:suppressions="$PWD/tools/tsan.supp" \
            nice -n "$nice" swift test --skip-build --sanitize="$kind" --scratch-path "$dir"; then
        failed+=("$kind")
    fi
    echo "==> sanitizers: $kind took $((built - start)) s to build, $((SECONDS - built)) s to run"
done
if (( ${#failed[@]} )); then echo "==> sanitizers: FAILED: ${failed[*]}"; exit 1; fi
echo "==> sanitizers: clean"
