#!/usr/bin/env bash
# `make test`: every test (`cargo test --all-targets`: unit tests, the integration tests in
# tests/, the load tool's self-check), then one line saying what passed. Exits as cargo did.
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p target
LOG=target/make-test.log
"${CARGO:-cargo}" test --all-targets "$@" 2>&1 | tee "$LOG"
status=${PIPESTATUS[0]}
awk -v status="$status" '
    /^test result:/ { passed += $4; failed += $6; ignored += $8; suites++ }
    /^load: self-check passed/ { load = ", load tool self-check passed" }
    END {
        if (status == 0 && failed == 0)
            printf "make test: all %d tests passed in %d test binaries (%d ignored)%s\n", passed, suites, ignored, load
        else
            printf "make test: FAILED (exit %d): %d failed, %d passed so far; see the failures above\n", status, failed, passed
    }' "$LOG"
exit "$status"
