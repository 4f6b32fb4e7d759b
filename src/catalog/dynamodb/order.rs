//! Heads handed on in key order while a Query returns them in sort-key order.

use anyhow::Result;

use super::items::LONG_PREFIX;
use crate::catalog::CurrentSummary;

/// The two orders differ only for hashed long keys, all in the `#long/` block:
/// the heads up to the end of that block (few: sort keys before it start with a
/// character below `#`, or with `#` and one below `long/`) are held, sorted, and
/// merged into the rest as it streams by, so no more than those few are ever held.
#[derive(Default)]
pub(super) struct KeyOrder {
    /// Held heads, largest key first (the next to hand on is last).
    held: Vec<CurrentSummary>,
    /// Past the `#long/` block: heads now come in key order.
    streaming: bool,
}

impl KeyOrder {
    /// One head, whose sort key is `sort_key`.
    pub(super) fn push(
        &mut self,
        sort_key: &str,
        summary: CurrentSummary,
        visit: &mut (dyn FnMut(CurrentSummary) + Send),
    ) {
        if !self.streaming {
            if sort_key <= LONG_PREFIX || sort_key.starts_with(LONG_PREFIX) {
                self.held.push(summary);
                return;
            }
            self.streaming = true;
            self.held.sort_by(|a, b| b.key.cmp(&a.key));
        }
        while self.held.last().is_some_and(|h| h.key < summary.key) {
            if let Some(held) = self.held.pop() {
                visit(held);
            }
        }
        visit(summary);
    }

    /// Hands on what is still held (the end of the Query).
    pub(super) fn finish(mut self, visit: &mut (dyn FnMut(CurrentSummary) + Send)) -> Result<()> {
        if !self.streaming {
            self.held.sort_by(|a, b| b.key.cmp(&a.key));
        }
        while let Some(held) = self.held.pop() {
            visit(held);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(key: &str) -> CurrentSummary {
        CurrentSummary {
            key: key.to_owned(),
            raw: None,
            size: 0,
            mtime_ns: 0,
            sha1: [0; 20],
            target: String::new(),
        }
    }

    fn order(heads: &[(&str, &str)]) -> Vec<String> {
        let mut out = Vec::new();
        let mut order = KeyOrder::default();
        let mut visit = |s: CurrentSummary| out.push(s.key);
        for (sort_key, key) in heads {
            order.push(sort_key, summary(key), &mut visit);
        }
        order.finish(&mut visit).unwrap();
        out
    }

    #[test]
    fn hashed_long_keys_are_merged_into_key_order() {
        // Sort-key order as DynamoDB returns it: "!a", then the hashed block, then the rest.
        let heads = [
            ("!a", "!a"),
            ("#long/00", "zz-long"),
            ("#long/11", "b-long"),
            ("#long/22", "!b-long"),
            ("a", "a"),
            ("c", "c"),
            ("y", "y"),
        ];
        assert_eq!(
            order(&heads),
            ["!a", "!b-long", "a", "b-long", "c", "y", "zz-long"]
        );
    }

    #[test]
    fn only_heads_before_the_block_or_in_it() {
        assert_eq!(order(&[("#long/1", "q"), ("#long/2", "b")]), ["b", "q"]);
        assert_eq!(order(&[("a", "a"), ("b", "b")]), ["a", "b"]);
        assert!(order(&[]).is_empty());
    }
}
