//! firn keeps a local directory tree backed up, file by file, in cold storage, and
//! says honestly what is and is not safely archived. This page is the design a
//! contributor needs: what firn promises, and how the code is laid out to keep
//! those promises. (`cargo doc --open` renders it.)
//!
//! # Invariants
//!
//! These are what people trust firn with; comments elsewhere cite them by number.
//!
//! 1. **Record only what the store confirmed.** The catalog records an archive only
//!    after the store has confirmed it, with the tree hash the store reported equal
//!    to the one computed locally, and made it durable. Uploads are recorded a batch
//!    at a time (group commit, `engine/commit.rs`): the store makes the batch
//!    durable (the embedded store: one filesystem sync), local state journals its
//!    archive ids, the catalog records it, the journal closes — each step for the
//!    whole batch, in that order. A pack of small files is one archive: it is
//!    journaled with all its files before it is sent, and its files are recorded
//!    together once the store confirmed the pack.
//! 2. **Upload, record, then remove.** A new version is uploaded first, recorded
//!    second, and the version it superseded is removed last, and only by the
//!    retention policy (early deletion is billed: 90 days on Glacier, 180 on S3
//!    Deep Archive). No run, crash or kill at any instant leaves a file with neither
//!    its old nor its new archive.
//! 3. **Every archive is accounted for.** Each archive in the store is a current or
//!    superseded version in the catalog (a pack: the versions it holds), or an
//!    interrupted upload the next run resumes or adopts; `firn inventory` finds
//!    and reports orphans. A pack goes when its last version is deleted.
//! 4. **Hash what you send.** Every byte sent is hashed in the same read that sends
//!    it; a file that changes while it is read (size, mtime or ctime move) is not
//!    recorded as backed up.
//! 5. **Restore verifies before rename.** A restore writes to a temporary file inside
//!    the destination, verifies the tree hash (and SHA-1) before renaming it into
//!    place, never writes outside the destination, and never replaces an existing
//!    file without consent.
//! 6. **Bad input changes nothing.** A bad regex, a missing root, vault, bucket or
//!    table, wrong credentials, an unreachable endpoint, an unreadable file, a name
//!    that is not UTF-8, a path too long for a key, a special file or a symlink loop
//!    gets one clear line that names the problem and the fix, and nothing is lost
//!    or half-written.
//! 7. **No secrets.** Credentials come only from the AWS default chain: never on the
//!    command line, in files firn writes, or in logs.
//! 8. **Bounded memory.** Part buffers are at most part size × parts in flight; the
//!    in-memory tree costs a small, fixed number of bytes per entry; nothing loads a
//!    whole file. The scan is a stream in key order (`scan.rs`: depth first, one
//!    directory listed at a time on a thread of its own) that status compares with
//!    the catalog as it comes, so only the terminal UI, which shows the whole
//!    tree, holds every entry. A backup's plan is a bounded stream (`engine/planned.rs`: spilled
//!    to an unlinked temporary file while status runs, read back a window at a
//!    time), and the CLI's progress table forgets each file once it is settled;
//!    only a dry run's list and a budgeted set's plan are held whole.
//! 9. **Safe only against the store in use.** A file is up to date only against the
//!    store its set uses now; an archive in another store never makes it look safe.
//!    `firn migrate` (`engine/migrate.rs`) copies archives into the store in use —
//!    from the unchanged local file or a persisted retrieval job, verified by tree
//!    hash and SHA-1 — and records the copy as current; the original is kept as a
//!    superseded version and never deleted by the migration. A pack of the old
//!    store is retrieved once for all its files copied (one journal row per
//!    file, keyed by pack id and offset, sharing the pack's job).
//! 10. **Losing the catalog loses nothing.** After every run that changed it, the
//!     set's catalog (every version, raw names, paths of any length, states,
//!     times) is stored in the set's own store as a verified catalog snapshot; and
//!     each archive carries a self-describing record (path, mtime, size, SHA-1;
//!     a pack, an index of every file in it).
//!     `firn catalog rebuild` starts from the newest snapshot, adds what was stored
//!     after it from the descriptions (a pack's files from its index, read as
//!     one range through a retrieval job), and leaves out what the store no
//!     longer holds. On a store that reads its archives at once (the embedded
//!     store: `Store::reads_at_once`) the snapshot does not repeat what packs'
//!     indexes hold: it names each pack once, with the members still live and,
//!     per member, only what changed since (an mtime, a state, a time), and a
//!     rebuild reads those indexes back (format 3, `engine::snapshot_packs`).
//!     Remote stores' snapshots hold every record whole (format 2): reading
//!     every pack's index there would cost a retrieval per pack and hours.
//! 11. **Re-read nothing unchanged.** A file whose size, mtime, ctime and inode match
//!     the fingerprint cache is not read again.
//! 12. **A shared store is safe.** A store (vault, bucket, disk) and a DynamoDB
//!     table may be shared by several sets and hosts: every archive names its set
//!     (a file's `firn2` description carries the set's short id; snapshots and
//!     claims name their set), and nothing one set does — inventory, orphan
//!     deletion, rebuild, recovery's or a migration's adoption of strays, prune,
//!     retention, aborting abandoned uploads — reads another set's archive as its
//!     own or deletes it (`engine/owners.rs`). An archive that names no set
//!     (written by firn 0.1 or mt-aws-glacier) in a store another set uses is
//!     left alone until a set claims it (`engine/claim.rs`). On S3 each set keeps
//!     to a prefix of its own.
//!
//! # The flow, and the modules along it
//!
//! Data flows one way, and so do imports (no module imports one above it):
//!
//! ```text
//!  config (file + flags + env) ──► a resolved set (plain data)
//!    │
//!  scan ──► entries (path, size, mtime, ctime, inode)
//!    │        fingerprint cache (state): re-hash only what changed
//!  status ◄── catalog (what is archived) ──► per-file status, rolled up per directory
//!    │
//!  engine: the only door ── backup · restore · delete · inventory · snapshot · rebuild · migrate
//!    │      uploads to the store, records in the catalog, typed progress events
//!    ▼
//!  front ends: cli (one file per command) · tui (state, update, view)
//! ```
//!
//! - [`model`]: the shared vocabulary (digests, fingerprints, entries, statuses,
//!   retention, tiers, the usage error); imports nothing above it.
//! - [`fmt`]: sizes, counts, plurals, local times and one-line errors, for both
//!   front ends.
//! - [`config`]: the config file and flags resolved into one [`config::ResolvedSet`];
//!   finds the set a command means from the paths it names or where it is run.
//! - [`scan`], [`hash`], [`status`], [`pathkey`], [`description`]: walking the tree,
//!   SHA-1 and the Glacier tree hash in one read, the comparison with the catalog,
//!   keys for names (NFC, raw bytes kept), the self-describing archive record
//!   (which names the set that wrote it).
//! - [`pack`]: the format of a pack of small files (their bytes, then an index
//!   of their records, then a trailer); a packed file's catalog record names the
//!   pack and its place in it ([`catalog::PackSlot`]).
//! - [`state`]: a set's local state (fingerprint cache, upload journal, multipart
//!   uploads, retrieval jobs, migration jobs, deletion journal, inventory job and
//!   reports, run history), in SQLite in the data directory, one file per concern.
//! - [`db`]: the SQLite files firn keeps (local state, the embedded catalog):
//!   each schema versioned with `PRAGMA user_version` and migrated forward in
//!   one transaction; a file a newer firn wrote is refused and left untouched.
//! - [`store`] and [`catalog`]: the two traits and their implementations (the
//!   embedded directory store and SQLite catalog; Glacier and DynamoDB). The
//!   Amazon stores count the requests billed per request where they send them
//!   (`store::requests`: uploads, retrievals); the engine notes each job's in
//!   the run history, at the set's prices.
//! - [`backend`]: the one factory from a set's settings to a store and a catalog (and
//!   to the provisioning plan of `firn init`, and to the store a set used before,
//!   which a migration copies from). A new backend is a variant there plus its own
//!   file.
//! - [`engine`]: every workflow as a whole job (it takes the set's lock,
//!   finishes what an interrupted run left, runs, and stores the catalog
//!   snapshot when the catalog changed), and the only door to store, catalog
//!   and local state; it reads whose each listed archive is (`owners`) before acting on
//!   any, and claims a set's archives from before they named their set. Jobs
//!   take a [`engine::Progress`] (events + cancellation) and report
//!   [`engine::Event`]s under engine-assigned task ids; [`engine::TaskTable`] is
//!   the one reducer both front ends use to show them.
//! - [`history`]: the run history — a summary of every run that changes a set
//!   (when, how long, what moved, what failed, what it cost, its exit code),
//!   noted as it goes (the config names the set, each engine job its report)
//!   and recorded once it ends, even when it ended before the engine opened
//!   the set — and the `on_success` / `on_failure` hooks that read it. Besides
//!   the engine, the one module that touches local state (its `run` table
//!   only), so that `firn log` works with the store unreachable.
//! - [`exit`]: the exit codes and the rule that gives a failure its code, one
//!   place for the CLI, the terminal UI's runs and the history.
//! - [`cli`] and [`tui`]: thin front ends that call the engine and print or draw what
//!   it reports.
//! - [`limit`]: bandwidth limits (a rate or an rclone-style timetable per
//!   direction) and the fair, shared rate limiter every transfer to and from a
//!   store draws from; the engine holds one pair per run, the stores send and
//!   read under it, the TUI changes it for the run.
//! - [`cost`], [`lock`], [`provision`]: price estimates, one process per set,
//!   what `init` creates.
//! - [`aws`]: what the Amazon backends share, above all one retry policy for
//!   every call (reads tried 12 times, writes 10, an unreachable endpoint 3;
//!   exponential backoff with full jitter; a dropped connection or a cut-short
//!   answer is transient, never a refusal; throttling feeds the uploads' AIMD).
//! - [`budget`]: spending limits on the cost model: a set's monthly `budget`,
//!   which a backup keeps under by leaving out what does not fit (the engine
//!   decides, exit status 5), and `confirm_above`, the charge of one run above
//!   which the front ends ask even with `--yes` unless `--max-cost` allows it.
//! - [`schedule`]: running a set's backup every night: the systemd timer and
//!   service `firn schedule` writes (or the crontab line where systemd does not
//!   run), with a busy set (exit 3, its lock held) counted as success; it writes
//!   the unit files and runs `systemctl`, and prints nothing.

pub mod aws;
pub mod backend;
pub mod budget;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod cost;
pub mod db;
pub mod description;
pub mod engine;
pub mod exit;
pub mod fmt;
pub mod hash;
pub mod history;
pub mod limit;
pub mod lock;
pub mod model;
pub mod pack;
pub mod pathkey;
pub mod provision;
pub mod scan;
pub mod schedule;
pub mod state;
pub mod status;
pub mod store;
pub mod tui;
