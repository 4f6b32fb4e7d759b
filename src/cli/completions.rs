//! `firn completions SHELL`: the shell's completion script for firn, made from
//! the same clap definitions the commands parse with (`clap_complete`).

use std::process::ExitCode;

use anyhow::Result;
use clap_complete::Shell;

/// Print the completion script for a shell, e.g. `firn completions bash >
/// ~/.local/share/bash-completion/completions/firn`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// bash, zsh, fish, elvish or powershell.
    shell: Shell,
}

pub fn run(args: Args, mut command: clap::Command) -> Result<ExitCode> {
    let name = command.get_name().to_string();
    let mut out = std::io::stdout().lock();
    clap_complete::generate(args.shell, &mut command, name, &mut out);
    Ok(ExitCode::SUCCESS)
}
