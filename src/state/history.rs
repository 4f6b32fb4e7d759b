//! The set's run history: a row per run, kept for `firn log`, `firn status`
//! and the terminal UI. The rows are plain here (the summary is JSON text);
//! what a summary holds is the `history` module's.

use anyhow::Result;
use rusqlite::{OptionalExtension, params};

use super::LocalState;

/// Runs kept per set: the newest, the older ones deleted as new ones come (a
/// nightly run for close to three years).
pub const RUNS_KEPT: i64 = 1000;

/// One run as the history keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRow {
    /// Assigned when it is added (0 before).
    pub id: i64,
    pub command: String,
    /// Unix seconds.
    pub started_at: i64,
    pub duration_ms: i64,
    pub exit_code: u8,
    /// The exit code's word (`ok`, `problems`, `usage`, `busy`, `failed`).
    pub outcome: String,
    /// The run's summary, JSON.
    pub summary: String,
}

const COLUMNS: &str = "id, command, started_at, duration_ms, exit_code, outcome, summary";

fn read_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<RunRow> {
    Ok(RunRow {
        id: row.get(0)?,
        command: row.get(1)?,
        started_at: row.get(2)?,
        duration_ms: row.get(3)?,
        exit_code: row.get(4)?,
        outcome: row.get(5)?,
        summary: row.get(6)?,
    })
}

impl LocalState {
    /// Adds a run (its id is assigned and returned) and forgets the oldest
    /// beyond [`RUNS_KEPT`], in one transaction.
    pub fn add_run(&self, run: &RunRow) -> Result<i64> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute(
            "INSERT INTO run (command, started_at, duration_ms, exit_code, outcome, summary)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                run.command,
                run.started_at,
                run.duration_ms,
                run.exit_code,
                run.outcome,
                run.summary
            ],
        )?;
        let id = tx.last_insert_rowid();
        tx.execute(
            "DELETE FROM run WHERE id <= (SELECT id FROM run ORDER BY id DESC LIMIT 1 OFFSET ?1)",
            [RUNS_KEPT],
        )?;
        tx.commit()?;
        Ok(id)
    }

    /// Replaces the summary of run `id` (what its hook did is added once it ran).
    pub fn update_run_summary(&self, id: i64, summary: &str) -> Result<()> {
        self.conn().execute(
            "UPDATE run SET summary = ?2 WHERE id = ?1",
            params![id, summary],
        )?;
        Ok(())
    }

    /// The newest `limit` runs, newest first.
    pub fn runs(&self, limit: usize) -> Result<Vec<RunRow>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {COLUMNS} FROM run ORDER BY id DESC LIMIT ?1"
        ))?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = stmt
            .query_map([limit], read_row)?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    /// The newest `limit` runs of `command`, newest first.
    pub fn runs_of(&self, command: &str, limit: usize) -> Result<Vec<RunRow>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {COLUMNS} FROM run WHERE command = ?1 ORDER BY id DESC LIMIT ?2"
        ))?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = stmt
            .query_map(params![command, limit], read_row)?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    /// Run `id`, if the history still keeps it.
    pub fn run(&self, id: i64) -> Result<Option<RunRow>> {
        let conn = self.conn();
        Ok(conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM run WHERE id = ?1"),
                [id],
                read_row,
            )
            .optional()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(command: &str, started_at: i64, exit_code: u8) -> RunRow {
        RunRow {
            id: 0,
            command: command.into(),
            started_at,
            duration_ms: 1500,
            exit_code,
            outcome: crate::exit::Outcome::of_code(exit_code).as_str().into(),
            summary: format!("{{\"started_at_unix\":{started_at}}}"),
        }
    }

    #[test]
    fn runs_come_back_newest_first_all_or_of_one_command() {
        let dir = tempfile::tempdir().unwrap();
        let state = LocalState::open(&dir.path().join("state.sqlite")).unwrap();
        assert!(state.runs(10).unwrap().is_empty());
        let a = state.add_run(&run("backup", 100, 0)).unwrap();
        let b = state.add_run(&run("restore", 200, 1)).unwrap();
        let c = state.add_run(&run("backup", 300, 4)).unwrap();
        assert!(a < b && b < c);
        let all = state.runs(10).unwrap();
        assert_eq!(all.iter().map(|r| r.id).collect::<Vec<_>>(), vec![c, b, a]);
        assert_eq!(
            all[2],
            RunRow {
                id: a,
                ..run("backup", 100, 0)
            }
        );
        assert_eq!(state.runs(1).unwrap()[0].id, c);
        let backups: Vec<_> = state.runs_of("backup", 10).unwrap();
        assert_eq!(backups.iter().map(|r| r.id).collect::<Vec<_>>(), vec![c, a]);
        assert_eq!(state.runs_of("backup", 1).unwrap()[0].id, c);
        assert!(state.runs_of("prune", 10).unwrap().is_empty());
        state.update_run_summary(b, "{\"hook\":{}}").unwrap();
        assert_eq!(state.run(b).unwrap().unwrap().summary, "{\"hook\":{}}");
        // An outcome outside the five words is refused.
        let bad = RunRow {
            outcome: "fine".into(),
            ..run("backup", 1, 0)
        };
        assert!(state.add_run(&bad).is_err());
    }

    #[test]
    fn only_the_newest_runs_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let state = LocalState::open(&dir.path().join("state.sqlite")).unwrap();
        let mut last = 0;
        for i in 0..RUNS_KEPT + 5 {
            last = state.add_run(&run("backup", i, 0)).unwrap();
        }
        let kept = state.runs(usize::MAX).unwrap();
        assert_eq!(kept.len() as i64, RUNS_KEPT);
        assert_eq!(kept[0].id, last);
        assert_eq!(kept.last().unwrap().started_at, 5, "the five oldest went");
    }
}
