#!/usr/bin/env bash
# firn's whole test suite, from a fresh machine: installs what the tests need,
# runs every test, and leaves nothing running (each test that needs the AWS
# stand-in starts its own on a free port and kills it when done). README's test command; .ci/run
# calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '==> %s\n' "$*"; }

# setpriv (util-linux) runs the unreadable-file test as an unprivileged user,
# since root reads through chmod 000; chown comes with coreutils.
if ! command -v setpriv >/dev/null 2>&1; then
    log "installing util-linux (setpriv)"
    apt-get update -qq && apt-get install -y -qq util-linux
fi

if ! cargo nextest --version >/dev/null 2>&1; then
    log "installing cargo-nextest"
    cargo install cargo-nextest --locked
fi

# The Amazon tests need a local AWS-compatible server. fakecloud (crates.io, a
# separate AGPL program run as a process, never linked) implements Glacier
# multipart with tree-hash, alignment and Content-Range checks and pages DynamoDB
# Query at 1 MB like AWS. Building it takes ~40 minutes on 2 cores, so it is
# installed once per machine and reused; each test starts its own instance on a
# free port and stops it.
FAKECLOUD_VERSION=0.51.0
if [ -n "${FAKECLOUD_BIN:-}" ] && [ -x "$FAKECLOUD_BIN" ]; then
    :
elif command -v fakecloud >/dev/null 2>&1 && fakecloud --version 2>/dev/null | grep -q "$FAKECLOUD_VERSION"; then
    export FAKECLOUD_BIN="$(command -v fakecloud)"
elif [ -x "$HOME/.cargo/bin/fakecloud" ] && "$HOME/.cargo/bin/fakecloud" --version 2>/dev/null | grep -q "$FAKECLOUD_VERSION"; then
    export FAKECLOUD_BIN="$HOME/.cargo/bin/fakecloud"
else
    log "installing fakecloud $FAKECLOUD_VERSION (once per machine; ~40 minutes on 2 cores)"
    cargo install fakecloud --version "$FAKECLOUD_VERSION" --locked
    export FAKECLOUD_BIN="$HOME/.cargo/bin/fakecloud"
fi
log "using $FAKECLOUD_BIN"

log "building"
cargo build --locked --all-targets

log "running every test"
# Each test runs in its own process (nextest), so tests that change the working
# directory, environment or privileges cannot disturb each other.
cargo nextest run --locked --no-fail-fast --failure-output final
