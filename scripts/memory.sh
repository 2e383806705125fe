#!/usr/bin/env bash
# Memory figures: idle RSS, RSS per idle connection, and RSS after connection churn,
# natively (release build) and under qemu-arm (armv7 build), with and without a
# bound on glibc's cache of freed thread stacks.
#
#   scripts/memory.sh [native|qemu|all]     (default all)
#   CONNS=200 CHURN=500 STACK_CACHE=1048576 scripts/memory.sh
set -euo pipefail
cd "$(dirname "$0")/.."

CONNS=${CONNS:-200}
CHURN=${CHURN:-500}
STACK_CACHE=${STACK_CACHE:-1048576}
SYSROOT=/usr/arm-linux-gnueabihf
WHICH=${1:-all}

# Enough descriptors for the client side of every connection.
ulimit -n 4096 2>/dev/null || true

run() { # label, then the server command
    local label=$1
    shift
    python3 scripts/memory.py --conns "$CONNS" --churn "$CHURN" --label "$label" -- "$@"
}

if [ "$WHICH" = native ] || [ "$WHICH" = all ]; then
    cargo build --release --quiet
    BIN=target/release/messenger
    run "native, glibc defaults" env -u GLIBC_TUNABLES "$BIN" --listen 127.0.0.1:0
    run "native, stack_cache_size=$STACK_CACHE" \
        env GLIBC_TUNABLES=glibc.pthread.stack_cache_size="$STACK_CACHE" "$BIN" --listen 127.0.0.1:0
fi

if [ "$WHICH" = qemu ] || [ "$WHICH" = all ]; then
    bash scripts/armv7.sh build
    ARM=$(bash scripts/armv7.sh path)
    [ -e "$SYSROOT/lib/ld-linux-armhf.so.3" ] || bash scripts/armv7.sh deps
    # qemu-arm passes its own environment to the guest; -E sets a guest variable.
    run "qemu-arm, glibc defaults" qemu-arm -L "$SYSROOT" "$ARM" --listen 127.0.0.1:0
    run "qemu-arm, stack_cache_size=$STACK_CACHE" qemu-arm -L "$SYSROOT" \
        -E GLIBC_TUNABLES=glibc.pthread.stack_cache_size="$STACK_CACHE" "$ARM" --listen 127.0.0.1:0
fi
