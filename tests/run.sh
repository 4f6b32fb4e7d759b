#!/usr/bin/env bash
# firn's whole test suite, from a fresh machine: installs what the tests need,
# runs every test, and leaves nothing running (each test that needs a local AWS
# server starts its own on a free port and kills it when done). README's test
# command; .ci/run calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '==> %s\n' "$*"; }

# Wall time of each phase, printed at the end whether the run passed or not.
now() { echo "$EPOCHREALTIME"; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
RUN_START=$(now)
declare -A PHASE
phase() { PHASE[$1]=$(printf '%-12s %6.1f s  %s' "$1" "$2" "${3:-}"); }
# Set-up that runs in the background: name -> pid, and where its output goes.
declare -A JOB_PID JOB_OUT
kill_tree() {
    local child
    for child in $(pgrep -P "$1" 2>/dev/null || true); do kill_tree "$child"; done
    kill -TERM "$1" 2>/dev/null || true
}
report() {
    local status=$? name
    # A run stopped early stops the set-up still under way too.
    for name in "${!JOB_PID[@]}"; do kill_tree "${JOB_PID[$name]}"; done
    if [ "${#PHASE[@]}" -gt 0 ]; then
        echo "==> wall time by phase ($(nproc) cores; load average now $(cut -d' ' -f1-3 /proc/loadavg))"
        for name in stand-in moto "firn build" tests; do
            if [ -n "${PHASE[$name]:-}" ]; then printf '    %s\n' "${PHASE[$name]}"; fi
        done
        printf '    %-12s %6.1f s\n' "total" "$(since "$RUN_START")"
    fi
    exit "$status"
}
trap report EXIT

# Runs "$@" in the background as set-up job $1; its output is shown when it ends.
background() {
    local name=$1 out
    shift
    out=$(mktemp)
    "$@" > "$out" 2>&1 &
    JOB_PID[$name]=$!
    JOB_OUT[$name]=$out
}
# Waits for job $1; the job's last line of output is "seconds note".
finish() {
    local name=$1 status=0 secs note
    wait "${JOB_PID[$name]}" || status=$?
    unset "JOB_PID[$name]"
    if [ "$status" -ne 0 ]; then
        cat "${JOB_OUT[$name]}"
        log "$name failed"
        exit 1
    fi
    sed '$d' "${JOB_OUT[$name]}"
    read -r secs note < <(tail -n 1 "${JOB_OUT[$name]}")
    phase "$name" "$secs" "$note"
    rm -f "${JOB_OUT[$name]}"
}

# setpriv (util-linux) runs the unreadable-file test as an unprivileged user,
# since root reads through chmod 000; chown comes with coreutils. python3-venv
# gives moto its own environment.
if ! command -v setpriv >/dev/null 2>&1 || ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    log "installing util-linux (setpriv) and python3-venv"
    apt-get update -qq && apt-get install -y -qq util-linux python3-venv
fi

# tests/schedule.rs checks what `firn schedule` and `firn man` write with the
# real tools: systemd-analyze (systemd) verifies the units, crontab -n (Debian's
# cron) checks the crontab line, man (man-db) and groff render the pages.
if ! command -v systemd-analyze >/dev/null 2>&1 || ! command -v crontab >/dev/null 2>&1 \
    || ! command -v man >/dev/null 2>&1 || ! command -v groff >/dev/null 2>&1; then
    log "installing systemd, cron, man-db and groff-base (for tests/schedule.rs)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends systemd cron man-db groff-base
fi

if ! cargo nextest --version >/dev/null 2>&1; then
    log "installing cargo-nextest"
    cargo install cargo-nextest --locked
fi

# What the tests need is built or installed once per machine, kept here keyed by
# what it was made from, and reused by later runs (and by other clones).
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/firn"
mkdir -p "$CACHE"

# The Amazon tests need a local AWS-compatible server: firn-standin
# (tests/standin/), fakecloud's Glacier, DynamoDB and S3 and nothing else, a
# separate AGPL program run as a process and never linked into firn. Built once
# for each version of its sources; an executable FAKECLOUD_BIN (a full fakecloud,
# say) is used instead when set.
STANDIN_KEY=$( (cd tests/standin && find Cargo.toml Cargo.lock src -type f | LC_ALL=C sort | xargs sha256sum) \
    | sha256sum | cut -c1-16)
STANDIN_BIN="$CACHE/standin-$STANDIN_KEY/firn-standin"
build_standin() {
    local start
    start=$(now)
    # One target directory for every version, so a change to the stand-in
    # rebuilds only what changed.
    cargo build --locked --profile standin --manifest-path tests/standin/Cargo.toml \
        --target-dir "$CACHE/standin-target"
    mkdir -p "$(dirname "$STANDIN_BIN")"
    cp "$CACHE/standin-target/standin/firn-standin" "$STANDIN_BIN.tmp.$$"
    mv "$STANDIN_BIN.tmp.$$" "$STANDIN_BIN"
    echo "$(since "$start") built: $STANDIN_BIN"
}
if [ -n "${FAKECLOUD_BIN:-}" ] && [ -x "$FAKECLOUD_BIN" ]; then
    phase stand-in 0 "from the environment: $FAKECLOUD_BIN"
elif [ -x "$STANDIN_BIN" ]; then
    export FAKECLOUD_BIN="$STANDIN_BIN"
    phase stand-in 0 "cached: $STANDIN_BIN"
else
    log "building the AWS stand-in beside firn (once per machine; a few minutes on 2 cores)"
    background stand-in build_standin
    export FAKECLOUD_BIN="$STANDIN_BIN"
fi

# moto, for S3 storage classes and restores that take time, in its own virtual
# environment: one per moto version and Python version. The .ready marker is
# written last, so an interrupted install is redone rather than half-used.
# firn-moto-server is tests/moto/server.py: moto's server with restores timed
# from RestoreObject.
# Every package is pinned (tests/moto/requirements.txt), so the environment is
# the same on every machine; it is keyed by that file.
MOTO_VERSION=5.2.5
MOTO_KEY=$(sha256sum tests/moto/requirements.txt | cut -c1-12)
MOTO_VENV="$CACHE/moto-$MOTO_VERSION-$MOTO_KEY-py$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
install_moto() {
    local start
    start=$(now)
    rm -rf "$MOTO_VENV"
    python3 -m venv "$MOTO_VENV"
    # moto's S3 and its server (flask); not moto[server], which brings every
    # service's dependencies and takes twice as long to install.
    "$MOTO_VENV/bin/pip" install --quiet --disable-pip-version-check \
        -r tests/moto/requirements.txt
    touch "$MOTO_VENV/.ready"
    echo "$(since "$start") installed: $MOTO_VENV"
}
if [ -f "$MOTO_VENV/.ready" ]; then
    phase moto 0 "cached: $MOTO_VENV"
else
    log "installing moto $MOTO_VERSION (once per machine)"
    background moto install_moto
fi
export FIRN_MOTO_BIN="$MOTO_VENV/bin/firn-moto-server"

# firn builds while the set-up above runs: on 2 cores the two builds fill each
# other's gaps (a first run took 10.6 minutes side by side, 12.8 one after the
# other, on the same busy machine).
log "building"
start=$(now)
cargo build --locked --all-targets
phase "firn build" "$(since "$start")"

for name in stand-in moto; do
    if [ -n "${JOB_PID[$name]:-}" ]; then finish "$name"; fi
done
{ echo "#!$MOTO_VENV/bin/python"; cat tests/moto/server.py; } > "$FIRN_MOTO_BIN.tmp.$$"
chmod +x "$FIRN_MOTO_BIN.tmp.$$"
mv "$FIRN_MOTO_BIN.tmp.$$" "$FIRN_MOTO_BIN"
log "FAKECLOUD_BIN=$FAKECLOUD_BIN"
log "FIRN_MOTO_BIN=$FIRN_MOTO_BIN"
log "(export both to run cargo nextest by hand)"

log "running every test"
# Each test runs in its own process (nextest), so tests that change the working
# directory, environment or privileges cannot disturb each other.
start=$(now)
status=0
cargo nextest run --locked --no-fail-fast --failure-output final || status=$?
phase tests "$(since "$start")"
exit "$status"
