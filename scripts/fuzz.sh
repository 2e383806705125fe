#!/usr/bin/env bash
# Runs each fuzz target in fuzz/ for a bounded time (FUZZ_SECONDS, default 60) with cargo-fuzz
# on the nightly toolchain, installing what is missing. Seeds come from fuzz/seeds/<target>
# (and a dictionary from fuzz/<target>.dict when there is one);
# the growing corpus stays in fuzz/corpus/ (ignored by git). A crash fails the script and
# leaves its input in fuzz/artifacts/<target>/.
#   FUZZ_SECONDS=300 make fuzz          # longer
#   FUZZ_TARGETS=origin make fuzz       # one target
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${FUZZ_SECONDS:-60}"
targets="${FUZZ_TARGETS:-frames model origin request}"

if ! rustup toolchain list | grep -q '^nightly'; then
    rustup toolchain install nightly --profile minimal
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

for target in $targets; do
    corpus="fuzz/corpus/$target"
    mkdir -p "$corpus"
    log="fuzz/$target.log"
    echo "== fuzzing $target for ${seconds}s (log: $log)"
    dict=()
    [ -f "fuzz/$target.dict" ] && dict=(-dict="$target.dict")
    if ! (cd fuzz && cargo +nightly fuzz run "$target" "corpus/$target" "seeds/$target" -- \
        -max_total_time="$seconds" -max_len=4096 -timeout=10 -print_final_stats=1 \
        ${dict[@]+"${dict[@]}"}) >"$log" 2>&1; then
        tail -n 60 "$log" >&2
        echo "fuzz target $target failed; the input is in fuzz/artifacts/$target/" >&2
        exit 1
    fi
    grep -E '^(Done [0-9]+ runs|stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb|new_units_added))' "$log" || true
    echo "corpus: $(find "$corpus" -type f | wc -l) inputs"
done
echo "fuzzing done: no crash in $targets"
