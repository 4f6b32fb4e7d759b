//! What `firn init` creates for a set. Each backend says whether its resource
//! exists and, if not, what creating it means (shown in the plan first) and how to
//! create it (run only after the plan is accepted).

use futures_util::future::BoxFuture;

pub enum Readiness {
    /// The resource is there and usable: what it is, for the plan.
    Exists(String),
    /// Missing: the plan's line, and the creation to run once it is accepted
    /// (it resolves to a line saying what was created).
    Missing {
        plan: String,
        create: BoxFuture<'static, anyhow::Result<String>>,
    },
}
