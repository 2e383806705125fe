#!/usr/bin/env bash
# The soak test against the release binary: SOAK_CLIENTS clients (default 50) join, send,
# leave and drop connections in SOAK_ROOMS rooms (5) for SOAK_SECONDS (60), then delivery,
# rooms, memberships, threads and memory are checked (tests/soak.rs). Not part of `make test`.
#   SOAK_SECONDS=600 SOAK_CLIENTS=200 make soak
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo test --release --test soak -- --ignored --nocapture --test-threads 1
