//! `firn init`: create what a set needs (the store, the catalog), after showing
//! the plan and asking.

use std::process::ExitCode;

use anyhow::Result;

use super::prompt;
use crate::backend::ProvisionOptions;
use crate::config::ResolvedSet;
use crate::engine::Engine;

pub async fn run(set: &ResolvedSet, yes: bool, point_in_time_recovery: bool) -> Result<ExitCode> {
    println!("{}", set.describe());
    let options = ProvisionOptions {
        point_in_time_recovery,
    };
    let plan = Engine::provisioning(set, options).await?;
    for what in &plan.existing {
        println!("exists: {what}");
    }
    for note in &plan.notes {
        println!("{note}");
    }
    if plan.is_empty() {
        println!("nothing to create for set {}", set.id);
        return Ok(ExitCode::SUCCESS);
    }
    println!("firn init will:");
    for step in plan.steps() {
        println!("  - {step}");
    }
    if !yes && !prompt::confirm("Create?", "run again with --yes to create", false)? {
        println!("nothing created");
        return Ok(ExitCode::SUCCESS);
    }
    for line in plan.apply().await? {
        println!("{line}");
    }
    Ok(ExitCode::SUCCESS)
}
