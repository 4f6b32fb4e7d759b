//! The one way the CLI asks before doing something that cannot be undone.

use std::io::{IsTerminal, Write};

use anyhow::Result;

use crate::model::usage;

/// Asks `question` on the terminal and returns whether the answer was yes
/// (`y` or `yes`, any case). Without a terminal nobody can answer: that is a usage
/// error naming the flag that confirms instead. The question goes to stderr when
/// stdout carries a JSON document.
pub fn confirm(question: &str, flag_hint: &str, on_stderr: bool) -> Result<bool> {
    if !std::io::stdin().is_terminal() {
        return Err(usage(format!(
            "cannot ask for confirmation without a terminal; {flag_hint}"
        )));
    }
    if on_stderr {
        eprint!("{question} [y/N] ");
        std::io::stderr().flush()?;
    } else {
        print!("{question} [y/N] ");
        std::io::stdout().flush()?;
    }
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(is_yes(&answer))
}

fn is_yes(answer: &str) -> bool {
    matches!(answer.trim().to_lowercase().as_str(), "y" | "yes")
}

#[cfg(test)]
mod tests {
    #[test]
    fn yes_in_any_case() {
        for yes in ["y", "Y", "yes", "Yes", "YES\n"] {
            assert!(super::is_yes(yes), "{yes}");
        }
        for no in ["", "n", "no", "yess", "sure"] {
            assert!(!super::is_yes(no), "{no}");
        }
    }
}
