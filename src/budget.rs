//! Spending limits: a set's `budget` (a cap on its estimated monthly storage
//! charge, which a backup keeps under by leaving out what does not fit) and its
//! `confirm_above` (a charge for one run — retrieval, early deletion — above
//! which firn asks even when `--yes` was given, unless `--max-cost` allows it).
//!
//! ```toml
//! [sets.photos]
//! budget = "2 USD/month"      # the set's storage, estimated as `firn cost` does
//! confirm_above = "1 USD"     # per run: restore, migrate, delete, prune
//! ```
//!
//! The figures are the cost model's ([`crate::cost`]): every archive the set
//! keeps in its store (current and superseded versions, catalog snapshots) at
//! the set's prices, per-archive overhead and minimum billable size included.
//! Which files fit is decided here ([`Budget::fit`]); the engine applies it to
//! a backup's plan, and the front ends only show what it decided. Files that
//! go into packs ([`PackEstimate`]) share their pack's per-archive overhead:
//! a packed file adds its bytes, and a pack's overhead once per pack.

use serde::Serialize;

use crate::cost::{Prices, format_amount, format_money};

/// How far a figure may exceed another and still count as equal (sums of many
/// small monthly charges differ from one product in the last bits).
const EPSILON: f64 = 1e-9;

/// A set's cap on its estimated monthly storage charge: `budget = "2 USD/month"`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Budget {
    pub per_month: f64,
    pub currency: String,
}

/// An amount as written in the config or on the command line: a number and,
/// after it, maybe a currency and maybe `/month`.
#[derive(Debug, Clone, PartialEq)]
struct Written {
    amount: f64,
    currency: Option<String>,
    per_month: bool,
}

fn parse_written(text: &str) -> Result<Written, String> {
    let text = text.trim();
    let end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, rest) = text.split_at(end);
    let amount: f64 = number
        .parse()
        .map_err(|_| "it does not start with an amount".to_string())?;
    if !amount.is_finite() || amount < 0.0 {
        return Err("the amount must be a number of at least 0".into());
    }
    let rest = rest.trim();
    let (currency, period) = match rest.split_once('/') {
        Some((currency, period)) => (currency.trim(), Some(period.trim())),
        None => match rest.split_once(char::is_whitespace) {
            Some((currency, period)) => (
                currency.trim(),
                Some(period.trim().trim_start_matches("per ").trim()),
            ),
            None => (rest, None),
        },
    };
    let per_month = match period {
        None => false,
        Some(p) if ["month", "mo", "monthly"].contains(&p.to_ascii_lowercase().as_str()) => true,
        Some(p) => return Err(format!("{p:?} is not a period firn knows (month)")),
    };
    if !currency.chars().all(|c| c.is_ascii_alphabetic()) {
        return Err(format!("{currency:?} is not a currency code"));
    }
    Ok(Written {
        amount,
        currency: (!currency.is_empty()).then(|| currency.to_ascii_uppercase()),
        per_month,
    })
}

/// The currency of a written amount must be the prices' (none: the prices').
fn same_currency(written: Option<&str>, prices: &Prices) -> Result<(), String> {
    match written {
        Some(currency) if !currency.eq_ignore_ascii_case(&prices.currency) => Err(format!(
            "it is in {currency}, but the set's prices are in {}",
            prices.currency
        )),
        _ => Ok(()),
    }
}

impl Budget {
    /// `"2 USD/month"` (also `2 USD per month`, `2 USD/mo`) in the currency of
    /// `prices`. An amount without `/month` is refused: the budget caps a
    /// monthly charge, and `confirm_above` (a per-run amount) is written
    /// without one, so each key says its own unit. The error says why, for a
    /// message that names the key and an example.
    pub fn parse(text: &str, prices: &Prices) -> Result<Budget, String> {
        let written = parse_written(text)?;
        if written.currency.is_none() {
            return Err("it names no currency".into());
        }
        if !written.per_month {
            return Err("a budget is per month".into());
        }
        same_currency(written.currency.as_deref(), prices)?;
        Ok(Budget {
            per_month: written.amount,
            currency: prices.currency.clone(),
        })
    }

    /// `1.97 of 2.00 USD/month`.
    pub fn used_text(&self, used: f64) -> String {
        format!(
            "{} of {} {}/month",
            format_amount(used),
            format_amount(self.per_month),
            self.currency
        )
    }

    /// `budget 1.97/2.00 USD/mo`: the TUI's title bar.
    pub fn short_text(&self, used: f64) -> String {
        format!(
            "budget {}/{} {}/mo",
            format_amount(used),
            format_amount(self.per_month),
            self.currency
        )
    }

    /// Whether `used` is over the cap.
    pub fn exceeded_by(&self, used: f64) -> bool {
        used > self.per_month + EPSILON
    }

    /// Which of `sizes` (files a backup would store, stored as `packs` says)
    /// fit under the cap when the set's estimated monthly storage charge is
    /// `used` now: the smallest first, each while what it adds still fits (the
    /// largest number of files kept safe for the money; ties in the order
    /// given). What each file adds is [`Filling::add`]'s: a file of its own
    /// is an archive ([`Prices::monthly_of_archive`]); a packed file adds its
    /// bytes to the pack being filled, and the overhead of an archive only
    /// when it starts a pack. Returns, per size in the order given, whether
    /// it fits.
    pub fn fit(
        &self,
        used: f64,
        sizes: &[u64],
        packs: Option<PackEstimate>,
        prices: &Prices,
    ) -> Vec<bool> {
        let mut order: Vec<usize> = (0..sizes.len()).collect();
        order.sort_by_key(|&i| (sizes[i], i));
        let mut fits = vec![false; sizes.len()];
        let mut total = used;
        let mut filling = Filling::new(packs, prices);
        for i in order {
            let mut next = filling.clone();
            let adds = next.add(sizes[i]);
            if total + adds > self.per_month + EPSILON {
                // What a file adds only grows with its size (a packed file's
                // bytes, or a new pack's, come before any larger archive's):
                // no later one fits either.
                break;
            }
            total += adds;
            filling = next;
            fits[i] = true;
        }
        fits
    }
}

/// How a backup's files become archives, for the estimates: files up to
/// `threshold` bytes fill packs of about `size` bytes (one archive, and one
/// archive's overhead, per pack); larger files are archives of their own.
/// None where packing is off: an archive per file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackEstimate {
    pub threshold: u64,
    pub size: u64,
}

/// Files stored one after the other, as [`Budget::fit`] counts them: the
/// pack being filled, and what each file adds to a month of storage.
#[derive(Debug, Clone)]
pub struct Filling<'a> {
    packs: Option<PackEstimate>,
    prices: &'a Prices,
    /// Bytes in the pack being filled (none yet, or the last one is full).
    open: Option<u64>,
}

impl<'a> Filling<'a> {
    pub fn new(packs: Option<PackEstimate>, prices: &'a Prices) -> Filling<'a> {
        Filling {
            packs,
            prices,
            open: None,
        }
    }

    /// What storing one more file of `size` bytes adds to a month of storage.
    /// A pack is sealed once it holds `size` bytes or more, as a backup seals
    /// it; its index is left out (a few dozen bytes a file).
    pub fn add(&mut self, size: u64) -> f64 {
        let Some(packs) = self.packs.filter(|p| size <= p.threshold) else {
            return self.prices.monthly_of_archive(size);
        };
        match self.open {
            Some(open) if open < packs.size => {
                self.open = Some(open + size);
                self.prices.monthly_of_archive(open + size) - self.prices.monthly_of_archive(open)
            }
            _ => {
                self.open = Some(size);
                self.prices.monthly_of_archive(size)
            }
        }
    }
}

/// What storing files of `sizes` adds to a month of storage, the smallest
/// first (the order [`Budget::fit`] takes them in).
pub fn monthly_of_files(sizes: &[u64], packs: Option<PackEstimate>, prices: &Prices) -> f64 {
    let mut sorted = sizes.to_vec();
    sorted.sort_unstable();
    let mut filling = Filling::new(packs, prices);
    sorted.into_iter().map(|size| filling.add(size)).sum()
}

/// What a backup's budget did: the figures before and after, and what it left
/// out (`firn backup --json`'s `budget`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct BudgetOutcome {
    pub currency: String,
    /// The cap per month.
    pub limit: f64,
    /// The set's estimated monthly storage charge before the run.
    pub used_before: f64,
    /// And after it (a dry run: what it would be if everything that fits were
    /// uploaded).
    pub used: f64,
    /// Files left out because their archives would not fit, their bytes, and
    /// what they would add per month.
    pub refused_files: u64,
    pub refused_bytes: u64,
    pub refused_monthly: f64,
    /// Their paths.
    pub refused: Vec<String>,
    /// Superseded versions the set keeps in the store (what `firn prune` may
    /// free).
    pub superseded_archives: u64,
}

impl BudgetOutcome {
    fn budget(&self) -> Budget {
        Budget {
            per_month: self.limit,
            currency: self.currency.clone(),
        }
    }

    /// Files were left out.
    pub fn refused_any(&self) -> bool {
        self.refused_files > 0
    }

    /// `budget: 1.97 of 2.00 USD/month used`.
    pub fn used_line(&self) -> String {
        format!("budget: {} used", self.budget().used_text(self.used))
    }

    /// What was left out and what to change, in one line (both front ends say
    /// it so): `budget: 1.97 of 2.00 USD/month used; 312 files (4.1 GiB, +0.02
    /// USD/month) not backed up — raise `budget` in CONFIG or run `firn prune``.
    /// None when nothing was left out.
    pub fn refusal(&self, config: &str) -> Option<String> {
        if !self.refused_any() {
            return None;
        }
        let prune = if self.superseded_archives > 0 {
            format!(
                " or run `firn prune` ({} kept)",
                crate::fmt::plural(self.superseded_archives, "superseded version")
            )
        } else {
            " or delete archives you no longer need (`firn delete`)".to_string()
        };
        Some(format!(
            "{}; {} ({}, +{}/month) not backed up — raise `budget` in {config}{prune}",
            self.used_line(),
            crate::fmt::plural(self.refused_files, "file"),
            crate::fmt::human_bytes(self.refused_bytes),
            format_money(self.refused_monthly, &self.currency),
        ))
    }
}

/// A charge one run would make (retrieval, early deletion) against the set's
/// `confirm_above` and the run's `--max-cost`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ChargeLimit {
    /// Above this, ask even when `--yes` was given.
    pub confirm_above: Option<f64>,
    /// `--max-cost`: up to this, no need to ask.
    pub max_cost: Option<f64>,
}

impl ChargeLimit {
    /// Whether `charge` is above `confirm_above` (whatever `--max-cost` says).
    pub fn over(&self, charge: f64) -> bool {
        self.confirm_above
            .is_some_and(|limit| charge > limit + EPSILON)
    }

    /// Whether a person must say yes to `charge`, `--yes` or not: it is above
    /// `confirm_above` and `--max-cost` does not allow it.
    pub fn must_ask(&self, charge: f64) -> bool {
        self.over(charge) && !self.max_cost.is_some_and(|max| charge <= max + EPSILON)
    }
}

/// `confirm_above = "1 USD"`: an amount per run, in the prices' currency (no
/// `/month`: that is the budget's unit).
pub fn parse_confirm_above(text: &str, prices: &Prices) -> Result<f64, String> {
    let written = parse_written(text)?;
    if written.currency.is_none() {
        return Err("it names no currency".into());
    }
    if written.per_month {
        return Err("it is a charge per run, not per month".into());
    }
    same_currency(written.currency.as_deref(), prices)?;
    Ok(written.amount)
}

/// `--max-cost 2.50` or `--max-cost "2.50 USD"`: the most one run may be
/// charged without asking, in the set's currency when none is written.
#[derive(Debug, Clone, PartialEq)]
pub struct MaxCost {
    pub amount: f64,
    pub currency: Option<String>,
}

impl std::str::FromStr for MaxCost {
    type Err = String;

    fn from_str(text: &str) -> Result<MaxCost, String> {
        let written = parse_written(text)
            .map_err(|why| format!("{why}; give an amount such as 2.50 or \"2.50 USD\""))?;
        if written.per_month {
            return Err(
                "it is the most one run may be charged, not an amount per month; give e.g. 2.50"
                    .into(),
            );
        }
        Ok(MaxCost {
            amount: written.amount,
            currency: written.currency,
        })
    }
}

impl MaxCost {
    /// The amount in the currency of `prices`, or why not.
    pub fn in_prices(&self, prices: &Prices) -> Result<f64, String> {
        same_currency(self.currency.as_deref(), prices)
            .map_err(|why| format!("--max-cost {}: {why}", format_amount(self.amount)))?;
        Ok(self.amount)
    }
}

/// `--max-cost AMOUNT` that would allow `charge`: the charge rounded up to the
/// cent, so the suggestion allows it.
pub fn max_cost_for(charge: f64) -> String {
    format!("{:.2}", (charge * 100.0 - EPSILON).ceil().max(0.0) / 100.0)
}

/// A charge above `confirm_above` that nobody confirmed and `--max-cost` did
/// not allow: nothing of it was done (exit status 5, like a backup's budget).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct OverLimit(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    fn usd() -> Prices {
        Prices::default()
    }

    #[test]
    fn budgets_are_amounts_per_month_in_the_prices_currency() {
        let b = Budget::parse("2 USD/month", &usd()).unwrap();
        assert_eq!((b.per_month, b.currency.as_str()), (2.0, "USD"));
        for same in [
            "2 usd / month",
            "2USD/mo",
            "2 USD per month",
            " 2.00 USD/Month ",
        ] {
            assert_eq!(
                Budget::parse(same, &usd()).unwrap().per_month,
                2.0,
                "{same}"
            );
        }
        for (bad, why) in [
            ("2 USD", "per month"),
            ("2", "currency"),
            ("two USD/month", "amount"),
            ("2 EUR/month", "EUR"),
            ("2 USD/year", "period"),
            ("-2 USD/month", "amount"),
        ] {
            let err = Budget::parse(bad, &usd()).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn confirm_above_is_per_run() {
        assert_eq!(parse_confirm_above("1 USD", &usd()), Ok(1.0));
        assert!(parse_confirm_above("1 USD/month", &usd()).is_err());
        assert!(parse_confirm_above("1", &usd()).is_err());
        let max: MaxCost = "2.5".parse().unwrap();
        assert_eq!(max.in_prices(&usd()), Ok(2.5));
        let max: MaxCost = "2.5 usd".parse().unwrap();
        assert_eq!(max.in_prices(&usd()), Ok(2.5));
        let euros: MaxCost = "2.5 EUR".parse().unwrap();
        assert!(euros.in_prices(&usd()).unwrap_err().contains("EUR"));
        assert!("lots".parse::<MaxCost>().is_err());
        assert!("2 USD/month".parse::<MaxCost>().is_err());
        assert_eq!(max_cost_for(2.9999), "3.00");
        assert_eq!(max_cost_for(3.0), "3.00");
        assert_eq!(max_cost_for(0.0293), "0.03");
    }

    #[test]
    fn what_fits_is_the_smallest_first() {
        // 1 USD per GiB-month, no overhead: 1 GiB adds 1 USD.
        let prices = Prices {
            storage_per_gb_month: 1.0,
            ..Prices::free()
        };
        let budget = Budget {
            per_month: 5.0,
            currency: "USD".into(),
        };
        let gib = 1u64 << 30;
        // 1.5 used: 3.5 left; 1 + 2 fit, then 4 and 8 do not.
        let sizes = [8 * gib, gib, 4 * gib, 2 * gib];
        assert_eq!(
            budget.fit(1.5, &sizes, None, &prices),
            [false, true, false, true]
        );
        // Exactly at the cap still fits; over it nothing does.
        assert_eq!(budget.fit(3.0, &[2 * gib], None, &prices), [true]);
        assert_eq!(budget.fit(5.5, &[0, 1], None, &prices), [false, false]);
        // Free prices: everything fits.
        assert_eq!(budget.fit(0.0, &sizes, None, &Prices::free()), [true; 4]);
    }

    #[test]
    fn per_archive_overhead_counts() {
        // S3 DEEP_ARCHIVE: an empty object still costs 32 KiB at its rate and
        // 8 KiB at STANDARD's.
        let prices = Prices::defaults_for(crate::cost::PriceProfile::S3(
            crate::store::s3::StorageClass::DeepArchive,
        ));
        let one = prices.monthly_of_archive(0);
        let expected = 32.0 * 1024.0 / crate::cost::BYTES_PER_GB * 0.00099
            + 8.0 * 1024.0 / crate::cost::BYTES_PER_GB * 0.023;
        assert!((one - expected).abs() < 1e-15, "{one} {expected}");
        let budget = Budget {
            per_month: one * 10.0,
            currency: "USD".into(),
        };
        // Ten empty files fit, the eleventh does not.
        let fits = budget.fit(0.0, &[0; 11], None, &prices);
        assert_eq!(fits.iter().filter(|f| **f).count(), 10);
    }

    #[test]
    fn packed_files_share_their_packs_overhead() {
        let prices = Prices::defaults_for(crate::cost::PriceProfile::S3(
            crate::store::s3::StorageClass::DeepArchive,
        ));
        // Packs of three 100-byte files; 1 MiB files go alone.
        let packs = Some(PackEstimate {
            threshold: 1000,
            size: 300,
        });
        let pack = |bytes: u64| prices.monthly_of_archive(bytes);
        let twelve = [100u64; 12];
        let all = monthly_of_files(&twelve, packs, &prices);
        assert!((all - 4.0 * pack(300)).abs() < 1e-15, "{all}");
        let alone = monthly_of_files(&twelve, None, &prices);
        assert!((alone - 12.0 * pack(100)).abs() < 1e-15, "{alone}");
        // Room for two packs and a bit: six files, the seventh would start a
        // third pack.
        let budget = Budget {
            per_month: 2.0 * pack(300) + pack(100) / 2.0,
            currency: "USD".into(),
        };
        let fits = budget.fit(0.0, &twelve, packs, &prices);
        assert_eq!(fits.iter().filter(|f| **f).count(), 6);
        // One archive per file: two files and a half's overhead.
        let fits = budget.fit(0.0, &twelve, None, &prices);
        let expected = (budget.per_month / pack(100)).floor() as usize;
        assert_eq!(fits.iter().filter(|f| **f).count(), expected);
        assert!(expected < 6);
        // A file above the threshold is an archive of its own, packs or not.
        let big = [1 << 20];
        assert_eq!(
            monthly_of_files(&big, packs, &prices),
            monthly_of_files(&big, None, &prices)
        );
    }

    #[test]
    fn a_charge_over_the_limit_needs_a_yes_unless_max_cost_allows_it() {
        let limit = ChargeLimit {
            confirm_above: Some(1.0),
            max_cost: None,
        };
        assert!(!limit.must_ask(0.5));
        assert!(!limit.must_ask(1.0));
        assert!(limit.must_ask(1.5));
        let allowed = ChargeLimit {
            max_cost: Some(2.0),
            ..limit
        };
        assert!(allowed.over(1.5) && !allowed.must_ask(1.5));
        assert!(allowed.must_ask(2.5));
        assert!(!ChargeLimit::default().must_ask(1e9));
    }

    #[test]
    fn the_refusal_says_what_was_left_out_and_what_to_change() {
        let outcome = BudgetOutcome {
            currency: "USD".into(),
            limit: 2.0,
            used_before: 1.9,
            used: 1.97,
            refused_files: 312,
            refused_bytes: 4_400_000_000,
            refused_monthly: 0.02,
            refused: Vec::new(),
            superseded_archives: 3,
        };
        let line = outcome.refusal("/etc/firn.toml").unwrap();
        assert!(
            line.starts_with("budget: 1.97 of 2.00 USD/month used; 312 files (4.1 GiB, +0.0200 USD/month) not backed up — raise `budget` in /etc/firn.toml or run `firn prune`"),
            "{line}"
        );
        assert_eq!(
            BudgetOutcome {
                refused_files: 0,
                ..outcome
            }
            .refusal("x"),
            None
        );
    }
}
