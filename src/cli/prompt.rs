//! The one way the CLI asks before doing something that cannot be undone.

use std::io::{IsTerminal, Write};

use anyhow::Result;

use crate::budget::{ChargeLimit, MaxCost, OverLimit, max_cost_for};
use crate::config::ResolvedSet;
use crate::model::usage;

/// A charge one run would make, checked against the set's `confirm_above`.
pub struct Charge<'a> {
    /// What it pays for, for people: `the early-deletion charge`.
    pub what: &'a str,
    pub amount: f64,
    /// What is not done if it is refused: `nothing deleted`.
    pub otherwise: &'a str,
}

/// The set's `confirm_above` with the run's `--max-cost` (in the set's currency).
pub fn charge_limit(set: &ResolvedSet, max_cost: Option<&MaxCost>) -> Result<ChargeLimit> {
    let max_cost = max_cost
        .map(|max| max.in_prices(&set.prices))
        .transpose()
        .map_err(usage)?;
    Ok(ChargeLimit {
        confirm_above: set.confirm_above,
        max_cost,
    })
}

/// Asks about a charge above the set's `confirm_above` that `--max-cost` does
/// not allow — `--yes` or not, which is the point of the setting. Returns
/// None when there is nothing to ask (the command goes on as it would), else
/// whether the person said yes. Without a terminal nobody can: that is
/// [`OverLimit`] (exit 5), one line naming the charge, the limit and the flag.
pub fn confirm_charge(
    limit: ChargeLimit,
    charge: &Charge<'_>,
    set: &ResolvedSet,
    on_stderr: bool,
) -> Result<Option<bool>> {
    if !limit.must_ask(charge.amount) {
        return Ok(None);
    }
    let prices = &set.prices;
    let over = format!(
        "{} ≈ {} is over confirm_above = {} of {}",
        charge.what,
        prices.format(charge.amount),
        prices.format(limit.confirm_above.unwrap_or_default()),
        set.describe()
    );
    let allow = format!("--max-cost {}", max_cost_for(charge.amount));
    if !std::io::stdin().is_terminal() {
        let beyond = match limit.max_cost {
            Some(max) => format!(" and --max-cost {}", prices.format(max)),
            None => String::new(),
        };
        return Err(OverLimit(format!(
            "{over}{beyond}; {}: pass {allow} to allow it, or run it on a terminal to be asked",
            charge.otherwise
        ))
        .into());
    }
    let question = format!("{over} (asked even with --yes; {allow} allows it). Go ahead?");
    let hint = format!("{}: pass {allow} to allow it", charge.otherwise);
    confirm(&question, &hint, on_stderr).map(Some)
}

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
