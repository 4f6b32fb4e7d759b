//! `firn init`: create what a set needs (the store, the catalog), after showing
//! the plan and asking.

use std::process::ExitCode;

use anyhow::Result;

use super::prompt;
use super::set_args::SetArgs;
use crate::backend::ProvisionOptions;
use crate::config::RootUse;
use crate::engine::Engine;

/// Create what a backup set needs: the embedded store's directories, an S3
/// bucket (with a lifecycle rule that aborts abandoned multipart uploads), a
/// Glacier vault, a DynamoDB table (on-demand billing, firn's key schema,
/// point-in-time recovery on). Says where the set's objects go in a bucket,
/// refuses a prefix another set uses, and shows the plan and asks first.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The set's root directory.
    root: Option<std::path::PathBuf>,
    #[command(flatten)]
    set: SetArgs,
    /// Create without asking (for scripts).
    #[arg(long)]
    yes: bool,
    /// Leave a DynamoDB catalog's point-in-time recovery as it is (by default
    /// init turns it on: the table is the only copy of the catalog).
    #[arg(long)]
    no_point_in_time_recovery: bool,
}

pub async fn run(args: Args) -> Result<ExitCode> {
    let set = &args.set.resolve(args.root, RootUse::MayBeMissing)?;
    let yes = args.yes;
    outln!("{}", set.describe());
    let options = ProvisionOptions {
        point_in_time_recovery: !args.no_point_in_time_recovery,
    };
    let plan = Engine::provisioning(set, options).await?;
    for what in &plan.existing {
        outln!("exists: {what}");
    }
    for note in &plan.notes {
        outln!("{note}");
    }
    if plan.is_empty() {
        outln!("nothing to create for set {}", set.id);
        return Ok(ExitCode::SUCCESS);
    }
    outln!("firn init will:");
    for step in plan.steps() {
        outln!("  - {step}");
    }
    if !yes && !prompt::confirm("Create?", "run again with --yes to create", false)? {
        outln!("nothing created");
        return Ok(ExitCode::SUCCESS);
    }
    for line in plan.apply().await? {
        outln!("{line}");
    }
    Ok(ExitCode::SUCCESS)
}
