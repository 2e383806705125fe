#!/usr/bin/env bash
# make callgrind: instructions the server executes per delivery, counted by valgrind's
# callgrind, for messenger (the release binary) and the load tool's baseline broadcast server.
# For machines where `perf stat -e instructions` says `<not supported>` (most virtual
# machines): a count moves far less with machine noise than time does.
#
# Each server runs under `valgrind --tool=callgrind` and gets a fixed fan-out load (10 clients
# in one room, one sender, 64 in flight, MESSAGES messages, so 10 x MESSAGES deliveries); its
# total instruction count (Ir, start-up, the clients' connections and shutdown included)
# divided by the deliveries is the figure. Those fixed costs are small beside 20,000 messages
# (MESSAGES=10 gives them: about 1.9 M Ir for messenger, 0.9 M for the baseline). Only the
# server's own instructions are counted, not the kernel's work in its system calls (which
# `perf stat` and the CPU time in `make bench` include). The count is repeatable to a few
# per cent, not exactly: how many frames one batch carries depends on thread timing.
# RUNS=N runs each server N times (default 2); BASELINE=0 skips the baseline; MESSAGES=N
# changes the load; BIN=PATH counts another build of the server (an earlier commit's, say).
# Details go to artifacts/callgrind.log.
#
# The baseline may lose the first few messages for a client it has not yet listed when they
# are broadcast (under valgrind the list lags the handshake); the figure divides by the
# deliveries made, and the lost column shows how many.
set -euo pipefail
cd "$(dirname "$0")/.."

MESSAGES=${MESSAGES:-20000}
RUNS=${RUNS:-2}
BASELINE=${BASELINE:-1}
BIN=${BIN:-target/release/messenger}
command -v valgrind >/dev/null 2>&1 || { echo "callgrind: valgrind is not installed" >&2; exit 1; }
mkdir -p artifacts
LOG=artifacts/callgrind.log
: >"$LOG"

echo "building the release binary and the load tool..." >&2
cargo build --release >>"$LOG" 2>&1 || { cat "$LOG" >&2; exit 1; }
LOAD=$(cargo bench --bench load --no-run 2>&1 | tee -a "$LOG" |
    sed -n 's/.*Executable .*(\(.*\)).*/\1/p' | tail -n 1)
[ -x "$LOAD" ] || { echo "callgrind: load tool not found" >&2; exit 1; }

TMP=$(mktemp -d)
SERVER_PID=
cleanup() {
    [ -z "$SERVER_PID" ] || kill "$SERVER_PID" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT

# measure NAME PATH SERVER...: one server under callgrind, one load; prints
# "NAME Ir deliveries Ir/delivery".
measure() {
    local name=$1 path=$2 addr="" result delivered lost ir
    shift 2
    : >"$TMP/out"
    valgrind --tool=callgrind --callgrind-out-file="$TMP/callgrind.out" \
        "$@" --listen 127.0.0.1:0 >"$TMP/out" 2>>"$LOG" &
    SERVER_PID=$!
    for _ in $(seq 600); do
        addr=$(sed -n 's/^listening on //p' "$TMP/out")
        [ -n "$addr" ] && break
        sleep 0.1
    done
    [ -n "$addr" ] || { echo "callgrind: $name did not start" >&2; exit 1; }
    echo "== $name" >>"$LOG"
    result=$("$LOAD" traffic --url "ws://$addr$path" "${BASELINE_FLAG[@]}" --clients 10 \
        --rooms 1 --senders 1 --inflight 64 --messages "$MESSAGES" --drain 120 2>>"$LOG" |
        tee -a "$LOG" | grep '^RESULT')
    kill -TERM "$SERVER_PID"
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
    delivered=$(sed -n 's/.* delivered=\([0-9]*\).*/\1/p' <<<"$result")
    lost=$(sed -n 's/.* lost=\([0-9]*\).*/\1/p' <<<"$result")
    ir=$(sed -n 's/^totals: *\([0-9]*\).*/\1/p' "$TMP/callgrind.out")
    [ -n "$ir" ] && [ "${delivered:-0}" -gt 0 ] ||
        { echo "callgrind: $name: no count (delivered ${delivered:-?})" >&2; exit 1; }
    printf '%-10s %14s %12s %6s %12s\n' "$name" "$ir" "$delivered" "$lost" "$((ir / delivered))"
}

echo "fan-out 1 -> 10, 64 in flight, $MESSAGES messages, each server under callgrind..." >&2
printf '%-10s %14s %12s %6s %12s\n' server Ir deliveries lost Ir/delivery
for _ in $(seq "$RUNS"); do
    BASELINE_FLAG=()
    measure messenger /jsonrpc "$BIN" --key-file "$TMP/key" --max-messages-per-second 1e9
    if [ "$BASELINE" != 0 ]; then
        BASELINE_FLAG=(--baseline)
        measure baseline / "$LOAD" serve
    fi
done
echo "details: $LOG" >&2
