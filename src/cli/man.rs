//! `firn man`: manual pages made from the clap definitions (`clap_mangen`):
//! firn.1 on stdout, or with `--dir` one page per command and subcommand
//! (firn.1, firn-backup.1, firn-catalog-rebuild.1, …).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;

use crate::model::usage;

/// Print the manual page, or write every command's page into a directory.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Write firn.1 and a page per subcommand into DIR (e.g.
    /// ~/.local/share/man/man1) instead of printing firn.1.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

pub fn run(args: Args, command: clap::Command, verbose: bool) -> Result<ExitCode> {
    let Some(dir) = args.dir else {
        let mut out = std::io::stdout().lock();
        clap_mangen::Man::new(command).render(&mut out)?;
        return Ok(ExitCode::SUCCESS);
    };
    std::fs::create_dir_all(&dir)
        .map_err(|e| usage(format!("cannot create {}: {e}", dir.display())))?;
    let mut names = Vec::new();
    page_names(&command, "", &mut names);
    clap_mangen::generate_to(command, &dir).map_err(|e| {
        usage(format!(
            "cannot write the manual pages in {}: {e}; pick a directory you may write to",
            dir.display()
        ))
    })?;
    if verbose {
        for name in &names {
            outln!("{}", dir.join(name).display());
        }
    }
    outln!(
        "wrote {} manual pages in {}; `man firn` reads them when that directory is on the manual path",
        names.len(),
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// The pages `clap_mangen::generate_to` writes: the command's and, for each
/// subcommand that is not hidden (help aside), `parent-sub.1`.
fn page_names(command: &clap::Command, parent: &str, names: &mut Vec<String>) {
    let name = if parent.is_empty() {
        command.get_name().to_string()
    } else {
        format!("{parent}-{}", command.get_name())
    };
    for sub in command.get_subcommands() {
        if !sub.is_hide_set() && sub.get_name() != "help" {
            page_names(sub, &name, names);
        }
    }
    names.push(format!("{name}.1"));
}
