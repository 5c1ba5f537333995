# cairn: `make demo` and `make test` do all the set-up on a fresh Debian 12 (as root).
GO ?= go
BIN := bin/cairn
export PATH := /usr/local/go/bin:$(PATH)
export GOTOOLCHAIN ?= auto

.PHONY: build test soak demo bench deps clean

# How cairn is built (tags, static linking) is said once, in hack/build.
build:
	hack/build $(BIN)

deps:
	hack/install-deps

# The whole test suite, as CI runs it (installs packages, starts the test Docker engine and registry).
test:
	hack/test

# The soak for ten minutes (one in `make test`): eight processes doing a random, seeded mix of
# run, exec, commit, build, tag, rmi, prune, pull and push on one store (starts the test registry).
soak:
	hack/soak

# Builds cairn, makes a busybox image from Debian's busybox-static and runs it.
demo:
	hack/demo

# Benchmarks against the real peers (docker, runc), measured in the same run.
bench:
	hack/bench

clean:
	rm -rf bin
