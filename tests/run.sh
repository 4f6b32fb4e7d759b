#!/usr/bin/env bash
# firn's whole test suite, from a fresh machine: installs what the tests need,
# runs every test, and leaves nothing running (each test that needs a local AWS
# server starts its own on a free port and kills it when done). README's test
# command; .ci/run calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '==> %s\n' "$*"; }

# Wall time of each phase, printed at the end whether the run passed or not.
PHASES=()
phase() { PHASES+=("$(printf '%-16s %6.1f s  %s' "$1" "$2" "${3:-}")"); }
now() { echo "$EPOCHREALTIME"; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
RUN_START=$(now)
report() {
    local status=$?
    # Stop a moto install still under way if the run stopped early.
    if [ -n "${MOTO_PID:-}" ]; then kill "$MOTO_PID" 2>/dev/null || true; fi
    if [ "${#PHASES[@]}" -gt 0 ]; then
        echo "==> wall time by phase ($(nproc) cores, load average now $(cut -d' ' -f1-3 /proc/loadavg))"
        printf '    %s\n' "${PHASES[@]}"
        printf '    %-16s %6.1f s\n' "total" "$(since "$RUN_START")"
    fi
    exit "$status"
}
trap report EXIT

# setpriv (util-linux) runs the unreadable-file test as an unprivileged user,
# since root reads through chmod 000; chown comes with coreutils. python3-venv
# gives moto its own environment.
if ! command -v setpriv >/dev/null 2>&1 || ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    log "installing util-linux (setpriv) and python3-venv"
    apt-get update -qq && apt-get install -y -qq util-linux python3-venv
fi

if ! cargo nextest --version >/dev/null 2>&1; then
    log "installing cargo-nextest"
    cargo install cargo-nextest --locked
fi

# Everything built or installed for the tests is kept per machine, keyed by what
# it was made from, and reused by later runs (and by other clones).
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/firn"
mkdir -p "$CACHE"

# The Amazon tests need a local AWS-compatible server: firn-standin
# (tests/standin/), fakecloud's Glacier, DynamoDB and S3 and nothing else: a
# separate AGPL program run as a process, never linked into firn. Built once per
# machine for each version of its sources; an executable FAKECLOUD_BIN (a full
# fakecloud, say) is used instead when set.
build_standin() {
    local key dir start
    key=$( (cd tests/standin && find Cargo.toml Cargo.lock src -type f | LC_ALL=C sort | xargs sha256sum) \
        | sha256sum | cut -c1-16)
    dir="$CACHE/standin-$key"
    STANDIN_BIN="$dir/firn-standin"
    if [ -x "$STANDIN_BIN" ]; then
        phase "stand-in" 0 "cached: $STANDIN_BIN"
        return
    fi
    log "building the AWS stand-in (once per machine; ~2 minutes on 2 cores)"
    start=$(now)
    # One target directory for every version, so a change to the stand-in
    # rebuilds only what changed.
    cargo build --locked --profile standin --manifest-path tests/standin/Cargo.toml \
        --target-dir "$CACHE/standin-target"
    mkdir -p "$dir"
    cp "$CACHE/standin-target/standin/firn-standin" "$STANDIN_BIN.tmp.$$"
    mv "$STANDIN_BIN.tmp.$$" "$STANDIN_BIN"
    phase "stand-in" "$(since "$start")" "built: $STANDIN_BIN"
}

# moto, for S3 storage classes and timed restores, in its own virtual
# environment: one per moto version and Python version. The .ready marker is
# written last, so an interrupted install is redone rather than half-used.
# tests/moto/server.py is moto's server with restores timed from RestoreObject.
MOTO_VERSION=5.2.5
install_moto() { # writes "seconds note" then the server's path to $1
    local venv start py note
    py=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    venv="$CACHE/moto-$MOTO_VERSION-py$py"
    start=$(now)
    if [ -f "$venv/.ready" ]; then
        note="cached: $venv"
    else
        log "installing moto $MOTO_VERSION (once per machine)"
        rm -rf "$venv"
        python3 -m venv "$venv"
        # moto's S3 and its server (flask); not moto[server], which brings every
        # service's dependencies and takes twice as long to install.
        "$venv/bin/pip" install --quiet --disable-pip-version-check \
            "moto[s3]==$MOTO_VERSION" flask flask-cors
        touch "$venv/.ready"
        note="installed: $venv"
    fi
    { echo "#!$venv/bin/python"; cat tests/moto/server.py; } > "$venv/bin/firn-moto-server.tmp.$$"
    chmod +x "$venv/bin/firn-moto-server.tmp.$$"
    mv "$venv/bin/firn-moto-server.tmp.$$" "$venv/bin/firn-moto-server"
    printf '%s %s\n%s\n' "$(since "$start")" "$note" "$venv/bin/firn-moto-server" > "$1"
}

# moto installs (mostly downloading) while the stand-in builds.
MOTO_OUT=$(mktemp)
MOTO_LOG=$(mktemp)
install_moto "$MOTO_OUT" > "$MOTO_LOG" 2>&1 &
MOTO_PID=$!

if [ -n "${FAKECLOUD_BIN:-}" ] && [ -x "$FAKECLOUD_BIN" ]; then
    phase "stand-in" 0 "from the environment: $FAKECLOUD_BIN"
else
    build_standin
    export FAKECLOUD_BIN="$STANDIN_BIN"
fi

moto_status=0
wait "$MOTO_PID" || moto_status=$?
MOTO_PID=
cat "$MOTO_LOG"
if [ "$moto_status" -ne 0 ]; then
    log "installing moto failed"
    exit 1
fi
{ read -r secs note; read -r FIRN_MOTO_BIN; } < "$MOTO_OUT"
phase "moto" "$secs" "$note"
export FIRN_MOTO_BIN
rm -f "$MOTO_OUT" "$MOTO_LOG"
log "FAKECLOUD_BIN=$FAKECLOUD_BIN"
log "FIRN_MOTO_BIN=$FIRN_MOTO_BIN"
log "(export both to run cargo nextest by hand)"

log "building"
start=$(now)
cargo build --locked --all-targets
phase "firn build" "$(since "$start")"

log "running every test"
# Each test runs in its own process (nextest), so tests that change the working
# directory, environment or privileges cannot disturb each other.
start=$(now)
status=0
cargo nextest run --locked --no-fail-fast --failure-output final || status=$?
phase "tests" "$(since "$start")"
exit "$status"
