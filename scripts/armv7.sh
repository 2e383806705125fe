#!/usr/bin/env bash
# armv7 release build (cross with a Docker engine, cargo-zigbuild without), glibc check, qemu smoke.
#
#   scripts/armv7.sh build        stripped release binary for armv7-unknown-linux-gnueabihf
#   scripts/armv7.sh check-glibc  fail if the binary needs a glibc symbol newer than $ARMV7_GLIBC
#   scripts/armv7.sh smoke        run it under qemu-arm: join, send, receive, SIGTERM
#   scripts/armv7.sh stack        under qemu-arm: the deepest stack a connection thread touches
#                                 (scripts/stack_probe.py --touched); fails over half the minimum
#   scripts/armv7.sh deps         install every tool the steps above need (CI does this first)
#   scripts/armv7.sh path         print where the binary is
#
# ARMV7_BUILDER=cross|zigbuild forces a build path (default: cross when `docker info` works).
# ARMV7_GLIBC is the glibc the zigbuild path links against, and the newest symbol version
# check-glibc accepts (cross's armv7 image has glibc 2.23: check-glibc tells if a
# cross build needs more; ARMV7_GLIBC=2.23 scripts/armv7.sh check-glibc accepts it).
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET=armv7-unknown-linux-gnueabihf
ARMV7_GLIBC=${ARMV7_GLIBC:-2.17}
BIN=target/$TARGET/release/messenger
SYSROOT=/usr/arm-linux-gnueabihf

log() { printf '== %s\n' "$*" >&2; }

# Install Debian packages that are not installed yet (as root, or through sudo).
apt_install() {
    local missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    local sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    log "apt-get install ${missing[*]}"
    # Other jobs on the machine may hold the dpkg lock: wait for it rather than fail.
    "${sudo[@]}" apt-get -o DPkg::Lock::Timeout=600 update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get -o DPkg::Lock::Timeout=600 \
        install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

have_docker() { command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; }

ensure_rust_target() {
    rustup target list --installed | grep -qx "$TARGET" || rustup target add "$TARGET"
}

build_cross() {
    command -v cross >/dev/null 2>&1 || cargo install --locked cross
    log "cross build --release --target $TARGET (image from Cross.toml)"
    cross build --release --target "$TARGET"
}

# cargo-zigbuild finds zig on PATH or as the `ziglang` Python package.
ensure_zig() {
    if ! command -v zig >/dev/null 2>&1 && ! python3 -m ziglang version >/dev/null 2>&1; then
        log "pip install ziglang"
        python3 -m pip install --quiet ziglang
    fi
}

build_zigbuild() {
    ensure_rust_target
    ensure_zig
    command -v cargo-zigbuild >/dev/null 2>&1 || cargo install --locked cargo-zigbuild
    log "cargo zigbuild --release --target $TARGET.$ARMV7_GLIBC"
    cargo zigbuild --release --target "$TARGET.$ARMV7_GLIBC"
}

cmd_build() {
    local builder=${ARMV7_BUILDER:-}
    if [ -z "$builder" ]; then
        if have_docker; then builder=cross; else builder=zigbuild; fi
    fi
    case $builder in
        cross) build_cross ;;
        zigbuild) build_zigbuild ;;
        *) echo "ARMV7_BUILDER must be cross or zigbuild, not '$builder'" >&2; exit 2 ;;
    esac
    [ -x "$BIN" ] || { echo "no binary at $BIN" >&2; exit 1; }
    local bytes
    bytes=$(stat -c %s "$BIN")
    log "$BIN: $bytes bytes ($((bytes / 1024)) KiB), built with $builder"
    file_info "$BIN"
}

file_info() {
    if command -v file >/dev/null 2>&1; then file "$1" >&2; fi
}

readelf_cmd() {
    if command -v arm-linux-gnueabihf-readelf >/dev/null 2>&1; then
        echo arm-linux-gnueabihf-readelf
    else
        apt_install binutils-arm-linux-gnueabihf
        echo arm-linux-gnueabihf-readelf
    fi
}

cmd_check_glibc() {
    [ -x "$BIN" ] || cmd_build
    local readelf versions newest
    readelf=$(readelf_cmd)
    # Every GLIBC_x.y the binary asks for: its version-needs section plus the
    # versions attached to its dynamic symbols (objdump -T shows the same).
    versions=$({ "$readelf" -W -V "$BIN"; "$readelf" -W --dyn-syms "$BIN"; } |
        grep -o 'GLIBC_[0-9][0-9.]*[0-9]' | sed 's/^GLIBC_//' | sort -u -V)
    [ -n "$versions" ] || { echo "no GLIBC versions found in $BIN (not a glibc binary?)" >&2; exit 1; }
    newest=$(printf '%s\n' "$versions" | tail -n 1)
    log "glibc versions needed: $(printf '%s' "$versions" | tr '\n' ' ')"
    if [ "$(printf '%s\n%s\n' "$newest" "$ARMV7_GLIBC" | sort -V | tail -n 1)" != "$ARMV7_GLIBC" ]; then
        echo "FAIL: $BIN needs GLIBC_$newest, newer than $ARMV7_GLIBC:" >&2
        "$readelf" -W --dyn-syms "$BIN" | grep "GLIBC_$newest" >&2 || true
        exit 1
    fi
    echo "glibc check: ok (newest symbol version GLIBC_$newest <= $ARMV7_GLIBC)"
}

cmd_smoke() {
    cmd_build
    apt_install qemu-user libc6-armhf-cross
    [ -e "$SYSROOT/lib/ld-linux-armhf.so.3" ] || { echo "no armhf loader under $SYSROOT" >&2; exit 1; }
    log "smoke: qemu-arm -L $SYSROOT $BIN --listen 127.0.0.1:0"
    python3 scripts/wsclient.py smoke -- \
        qemu-arm -L "$SYSROOT" "$BIN" --listen 127.0.0.1:0
}

cmd_stack() {
    cmd_build
    apt_install qemu-user libc6-armhf-cross
    local dir status=0
    dir=$(mktemp -d)
    log "stack: scripts/stack_probe.py --touched -- qemu-arm -L $SYSROOT $BIN"
    python3 scripts/stack_probe.py --touched -- \
        qemu-arm -L "$SYSROOT" "$BIN" --key-file "$dir/key" --listen 127.0.0.1:0 |
        grep -v '^server: ' || status=$?
    rm -rf "$dir"
    return "$status"
}

cmd_deps() {
    apt_install qemu-user libc6-armhf-cross binutils-arm-linux-gnueabihf file
    if ! have_docker; then
        ensure_rust_target
        ensure_zig
        command -v cargo-zigbuild >/dev/null 2>&1 || cargo install --locked cargo-zigbuild
    fi
}

case ${1:-build} in
    deps) cmd_deps ;;
    build) cmd_build ;;
    check-glibc) cmd_check_glibc ;;
    smoke) cmd_smoke ;;
    stack) cmd_stack ;;
    path) echo "$BIN" ;;
    *) echo "usage: $0 deps|build|check-glibc|smoke|stack|path" >&2; exit 2 ;;
esac
