# cairn: `make demo` and `make test` do all the set-up on a fresh Debian 12 (as root).
GO ?= go
BIN := bin/cairn
export PATH := /usr/local/go/bin:$(PATH)
export GOTOOLCHAIN ?= auto

.PHONY: build test demo bench deps clean

# How cairn is built (tags, static linking) is said once, in hack/build.
build:
	hack/build $(BIN)

deps:
	hack/install-deps

# The whole test suite, as CI runs it (installs packages, starts the test Docker engine and registry).
test:
	hack/test

# Builds cairn, makes a busybox image from Debian's busybox-static and runs it.
demo:
	hack/demo

# Benchmarks against the real peers (docker, runc), measured in the same run.
bench:
	hack/bench

clean:
	rm -rf bin
