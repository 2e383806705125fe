# One Makefile: what a person runs is what CI runs (.ci/run calls these targets).
CARGO ?= cargo
ARGS ?=

.PHONY: run test docs check fmt clippy fuzz-check build release armv7 armv7-smoke package bench callgrind fuzz soak e2e clean

## Start the server on 127.0.0.1:9998 with built-in defaults (no config file needed). Its
## signing key lives in target/, so nothing is written outside the checkout.
run:
	$(CARGO) run --release -- --key-file $(CURDIR)/target/messenger-key $(ARGS)

## Every test: unit tests and the integration tests in tests/ (real binary, real sockets),
## ending with one line that says what passed.
test:
	CARGO=$(CARGO) bash scripts/test.sh

## Regenerate docs/configuration.md from the settings table (make test checks it is current).
docs:
	$(CARGO) run --quiet -- --help-markdown > docs/configuration.md

## The static checks CI runs before the tests (the fuzz targets are built too, on stable, so a
## change to the library cannot leave them broken until someone runs `make fuzz`).
check: fmt clippy fuzz-check

fuzz-check:
	$(CARGO) check --quiet --manifest-path fuzz/Cargo.toml --bins

fmt:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --all-targets -- -D warnings

build:
	$(CARGO) build

release:
	$(CARGO) build --release

## Stripped release binary for armv7-unknown-linux-gnueabihf (cross with Docker, cargo-zigbuild without).
armv7:
	bash scripts/armv7.sh build

## Run the armv7 binary under qemu-arm: connect, join, send, receive, SIGTERM.
armv7-smoke:
	bash scripts/armv7.sh smoke

## Tarball laid out as it goes onto the firmware.
package:
	bash scripts/package.sh

## Benchmarks: the load tool against the release binary and an in-bench baseline.
bench:
	bash scripts/bench.sh

## Instructions per delivery under valgrind (messenger and the baseline), where perf cannot count them.
callgrind:
	bash scripts/callgrind.sh

## Fuzz targets, each for a bounded time (nightly + cargo-fuzz).
fuzz:
	bash scripts/fuzz.sh

## Soak test: many clients joining, sending, leaving and dropping for a bounded time.
soak:
	bash scripts/soak.sh

## End-to-end test of the chat page in headless Chromium.
e2e:
	bash scripts/e2e.sh

clean:
	$(CARGO) clean
