#!/usr/bin/env bash
# CI for "on the box": armv7 build, glibc floor, qemu smoke, firmware tarball (.ci/run calls this).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/armv7.sh deps         # apt: qemu-user, libc6-armhf-cross, binutils-arm-linux-gnueabihf;
                                   # rustup target, ziglang (pip), cargo-zigbuild (without Docker)
make armv7                         # stripped release binary, size printed
bash scripts/armv7.sh check-glibc  # fails if any symbol needs a glibc newer than the one we state
make armv7-smoke                   # qemu-arm: join, send, receive, SIGTERM -> close 1001, exit 0
bash scripts/armv7.sh stack        # qemu-arm: deepest connection stack <= half the minimum
make package                       # target/package/messenger-<version>-armv7.tar.gz, listed
