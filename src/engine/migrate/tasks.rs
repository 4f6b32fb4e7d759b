//! A migration plan's copies as a front end lists them before they start (the
//! TUI's jobs pane shows a row for each): the task ids were allocated when the
//! plan was made, and the migration reports under them.

use super::MigrationPlan;
use crate::engine::TaskId;

/// One archive a migration copies, as its progress events name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationTask {
    /// The task id of its events ([`crate::engine::Engine::migrate`] reports
    /// under it).
    pub id: TaskId,
    pub key: String,
    pub bytes: u64,
    /// Copied from the unchanged local file (else retrieved from the previous
    /// store; a file whose bytes turn out not to be the archived ones is
    /// retrieved under the same id).
    pub from_local: bool,
}

impl MigrationPlan {
    /// Every archive the migration copies, in the order it goes at them: from
    /// local files first, then retrievals. Each task's id comes from the
    /// engine's allocator ([`crate::engine::Engine::task_ids`]) when the plan
    /// is made.
    pub fn tasks(&self) -> Vec<MigrationTask> {
        let local = self.local.iter().map(|item| MigrationTask {
            id: item.id,
            key: item.key.clone(),
            bytes: item.size,
            from_local: true,
        });
        let retrieve = self.retrieve.iter().map(|(id, record)| MigrationTask {
            id: *id,
            key: record.key.clone(),
            bytes: record.size,
            from_local: false,
        });
        local.chain(retrieve).collect()
    }
}
