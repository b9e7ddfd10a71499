#!/usr/bin/env bash
# Fuzzes every parser that reads outside input with libFuzzer (Fuzz/README.md).
#
#   tools/fuzz.sh [--quick] [--build-only] [TARGET...]
#
# Builds Fuzz/ (the postern-fuzz binary, -sanitize=fuzzer,address, release) into
# $FUZZ_SCRATCH, then runs each target (all by default) for FUZZ_SECONDS, FUZZ_JOBS at a time.
# libFuzzer starts from Fuzz/Corpus/TARGET and Fuzz/Regressions/TARGET and keeps what it
# learns in $FUZZ_SCRATCH/corpus/TARGET (not in git). A crash, a broken invariant, a timeout
# or an allocation over the limits is saved in $FUZZ_SCRATCH/findings/TARGET/ and makes the
# exit status non-zero; turn it into Fuzz/Regressions/TARGET/NAME plus a fix and a unit test.
#
#   --quick       FUZZ_QUICK_SECONDS per target (default 8): the stage of `make test`. So
#                 that a CI machine's run can be repeated here, it starts from the
#                 repository's seeds and regressions only (not the corpus learnt here), with
#                 libFuzzer's seed taken from the commit (FUZZ_SEED overrides) and Swift's
#                 hashing made deterministic. The runs then agree for their first few
#                 hundred inputs and drift apart later (some of what the coverage sees is
#                 not repeatable, cause not found): the seed narrows the search, it does
#                 not replay it. A finding's input is printed, and that replays.
#   --build-only  build the binary and stop
#
# Environment: FUZZ_SECONDS (default 600), FUZZ_JOBS (default: the number of cores),
# FUZZ_NICE (default 10), FUZZ_SCRATCH (default .build-fuzz), FUZZ_ARGS (more libFuzzer
# options). Every run is appended to $FUZZ_SCRATCH/cpu-ledger.tsv (CPU seconds per target).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

seconds=${FUZZ_SECONDS:-600}
build_only=false
quick=false
targets=()
for arg in "$@"; do
    case $arg in
        --quick) seconds=${FUZZ_QUICK_SECONDS:-8}; quick=true ;;
        --build-only) build_only=true ;;
        -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        -*) echo "fuzz.sh: unknown option $arg" >&2; exit 2 ;;
        *) targets+=("$arg") ;;
    esac
done
jobs=${FUZZ_JOBS:-$(nproc)}
nice=${FUZZ_NICE:-10}
scratch=${FUZZ_SCRATCH:-.build-fuzz}
[[ $scratch = /* ]] || scratch=$ROOT/$scratch

# The whole dependency graph is instrumented (-Xswiftc applies to every module), so libFuzzer
# sees coverage in Shared. lld: gold cannot link the instrumented binary.
echo "==> fuzz: building postern-fuzz in $scratch"
start=$SECONDS
(cd Fuzz && nice -n "$nice" swift build -c release --scratch-path "$scratch" \
    -Xswiftc -sanitize=fuzzer,address -Xswiftc -use-ld=lld)
echo "==> fuzz: built in $((SECONDS - start)) s"
bin=$scratch/release/postern-fuzz
$build_only && exit 0

if (( ${#targets[@]} == 0 )); then mapfile -t targets < <("$bin" list); fi
mkdir -p "$scratch/logs"
ledger=$scratch/cpu-ledger.tsv
[[ -f $ledger ]] || printf 'date\ttarget\twall_s\tcpu_s\truns\tresult\n' > "$ledger"

# One target: libFuzzer with the repository's seeds and regressions; its CPU time from time(1).
run() {
    local target=$1 log=$scratch/logs/$1.log
    local work=$scratch/corpus/$target findings=$scratch/findings/$target
    $quick && work=$quick_corpus/$target
    mkdir -p "$work" "$findings"
    local dirs=("$work" "Fuzz/Corpus/$target")
    [[ -d Fuzz/Regressions/$target ]] && dirs+=("Fuzz/Regressions/$target")
    local dict=() words
    case $target in
        smtp-command|line-framer) words=smtp ;;
        reply-decoder) words=reply ;;
        mime|mime-header|eight-bit|message-header) words=mime ;;
        config|rules) words=config ;;
        *) words=$target ;;
    esac
    [[ -f Fuzz/Dictionaries/$words.dict ]] && dict=("-dict=Fuzz/Dictionaries/$words.dict")
    local rc=0
    # SWIFT_BACKTRACE=enable=no: libFuzzer, not the Swift backtracer, handles a trap (the
    # backtracer would keep the process alive for its interactive timeout).
    /usr/bin/time -f '%U %S' -o "$scratch/logs/$target.time" \
        nice -n "$nice" env SWIFT_BACKTRACE=enable=no SWIFT_DETERMINISTIC_HASHING=1 ASAN_OPTIONS=detect_leaks=0:handle_abort=1 \
        "$bin" "$target" -max_total_time="$seconds" "${seed[@]}" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=256 \
        -print_final_stats=1 -artifact_prefix="$findings/" "${dict[@]}" ${FUZZ_ARGS:-} "${dirs[@]}" \
        > "$log" 2>&1 || rc=$?
    local cpu runs result=ok
    cpu=$(tail -1 "$scratch/logs/$target.time" 2>/dev/null | awk '{ printf "%.0f", $1 + $2 }')
    runs=$(awk '/stat::number_of_executed_units/ { print $2 }' "$log" | tail -1)
    (( rc == 0 )) || result="FINDING(rc=$rc)"
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$(date -Is)" "$target" "$seconds" "$cpu" "${runs:-0}" "$result" >> "$ledger"
    printf '  %-18s %-16s %10s runs %6s s CPU  %s\n' "$target" "$result" "${runs:-0}" "$cpu" "$log"
    (( rc == 0 ))
}

seed=()
if $quick; then
    # The commit's first 7 hex digits (under 2^31), else FUZZ_SEED, else 1.
    commit=$(git rev-parse --short=7 HEAD 2>/dev/null || true)
    n=${FUZZ_SEED:-$(( ${commit:+16#$commit} + 0 ))}
    (( n > 0 )) || n=1
    seed=("-seed=$n")
    quick_corpus=$scratch/quick-corpus
    rm -rf "$quick_corpus"
    echo "==> fuzz: quick run, libFuzzer seed $n${commit:+ (commit $commit)}; again with FUZZ_SEED=$n tools/fuzz.sh --quick"
fi
echo "==> fuzz: ${#targets[@]} targets, $seconds s each, $jobs at a time"
stamp=$scratch/logs/.started
touch "$stamp"
running=0
for target in "${targets[@]}"; do
    if (( running >= jobs )); then
        wait -n || true
        running=$((running - 1))
    fi
    run "$target" &
    running=$((running + 1))
done
wait || true
# Each run's result is its last line in the ledger.
failed=()
for target in "${targets[@]}"; do
    [[ $(awk -F'\t' -v t="$target" '$2 == t { r = $6 } END { print r }' "$ledger") = ok ]] || failed+=("$target")
done
if (( ${#failed[@]} )); then
    # What each finding is, here and not only in the logs: a CI run may keep nothing else.
    for target in "${failed[@]}"; do
        echo "==> fuzz: $target: $scratch/logs/$target.log says:"
        grep -E -m 12 'INFO: Seed:|ERROR|Fatal error|SUMMARY|Test unit written|^Base64|==[0-9]+==.*(ERROR|WARNING)|deadly signal|out-of-memory|malloc\(|timeout' \
            "$scratch/logs/$target.log" | cut -c 1-300 || true
        for f in "$scratch/findings/$target"/*; do
            [[ -f $f && $f -nt $stamp ]] && (( $(stat -c %s "$f") <= 512 )) && echo "  $(basename "$f") (base64): $(base64 -w0 "$f")"
        done
    done
    echo "==> fuzz: FINDINGS in ${failed[*]} (inputs in $scratch/findings/, logs in $scratch/logs/)"
    exit 1
fi
echo "==> fuzz: no findings"
