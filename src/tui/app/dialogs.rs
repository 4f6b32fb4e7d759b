//! The dialogs: what each one asks or shows.

use crate::cost::CostSummary;
use crate::engine::{DeletionPlan, Orphan};
use crate::model::Tier;

#[derive(Debug, Clone, PartialEq)]
pub enum Dialog {
    ConfirmBackupAll {
        files: u64,
        bytes: u64,
    },
    /// Choose the tier and the destination of a retrieval.
    Retrieve {
        keys: Vec<String>,
        bytes: u64,
        tier: Tier,
        destination: String,
    },
    /// Archives about to be deleted, with their ages and early-deletion charges.
    ConfirmDelete {
        plan: DeletionPlan,
        /// What the plan left out and why (a prune's early archives).
        note: Option<String>,
    },
    /// What the set's archives cost.
    Cost(Box<CostSummary>),
    /// The last comparison of the store's inventory with the catalog, and what
    /// can be done about its orphans.
    Reconciliation,
    /// Delete the orphans from the store?
    ConfirmDeleteOrphans {
        orphans: Vec<Orphan>,
    },
    /// Files a retrieval found in place with other content: replace them?
    ConfirmOverwrite {
        keys: Vec<String>,
        tier: Tier,
        destination: String,
    },
    ConfirmQuit {
        running: usize,
    },
    Error {
        title: String,
        message: String,
    },
}
