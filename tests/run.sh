#!/usr/bin/env bash
# firn's whole test suite, from a fresh machine: installs what the tests need,
# runs every test, and leaves nothing running. README's test command; .ci/run
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

log "building"
cargo build --locked --all-targets

log "running every test"
# Each test runs in its own process (nextest), so tests that change the working
# directory, environment or privileges cannot disturb each other.
cargo nextest run --locked --no-fail-fast --failure-output final
