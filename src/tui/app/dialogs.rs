//! The dialogs: what each one asks or shows, and which keys answer it.
//!
//! Each dialog lists its [`Choice`]s: an answer, the key-map actions whose keys
//! give it, and the words of its hint. Input reads keys through that list and the
//! view draws the key line from it, so what a dialog says and what it does come
//! from one place and follow the user's key map. Deleting and overwriting take
//! only `confirm` (`y`), never Enter.

use crossterm::event::{KeyCode, KeyModifiers};

use super::action::MigrationOffer;
use super::bandwidth::Direction;
use crate::cost::CostSummary;
use crate::engine::{DeletionPlan, Orphan, Reconciliation, RetrievalQuote};
use crate::history::RunSummary;
use crate::model::Tier;
use crate::tui::keys::{Context, Key, KeyAction, KeyMap};

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
        /// The engine's plan of it (archives, packs, bytes retrieved, each
        /// tier's cost) once worked out; until then the dialog shows an
        /// estimate by file.
        quote: Option<Box<RetrievalQuote>>,
    },
    /// Archives about to be deleted, with their ages and early-deletion charges.
    ConfirmDelete {
        plan: DeletionPlan,
        /// What the plan left out and why (a prune's early archives).
        note: Option<String>,
    },
    /// What the set's archives cost.
    Cost(Box<CostSummary>),
    /// The set's last runs, newest first.
    History(Vec<RunSummary>),
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
    /// A migration's plan: from where to where, what comes from local files,
    /// what is retrieved, and the cost and wait of the chosen tier.
    ConfirmMigration {
        offer: MigrationOffer,
        tier: Tier,
    },
    ConfirmQuit {
        running: usize,
    },
    /// This run's bandwidth limits: a rate or a timetable per direction, empty
    /// for the set's own.
    Bandwidth {
        upload: String,
        download: String,
        /// The field being typed in.
        field: Direction,
        /// What was wrong with the last answer.
        error: Option<String>,
    },
    Error {
        title: String,
        message: String,
    },
}

/// What a key did in a dialog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Go ahead with what the dialog asks.
    Yes,
    /// Close it; nothing happens.
    No,
    NextTier,
    PrevTier,
    /// Printable keys and Backspace edit the text field.
    Type,
    ClearText,
    NewInventory,
    Adopt,
    DeleteOrphans,
}

/// Where a choice's keys come from.
#[derive(Debug, Clone, Copy)]
pub enum Keys {
    /// The keys of these actions; the hint shows the first key of each of the
    /// first `shown`.
    Map {
        actions: &'static [KeyAction],
        shown: usize,
    },
    /// The dialog's text field: printable keys and Backspace (they win over
    /// the map in that dialog).
    Typing,
}

/// One way to answer a dialog.
#[derive(Debug, Clone, Copy)]
pub struct Choice {
    pub answer: Answer,
    pub keys: Keys,
    /// What the hint says it does; empty when the hint leaves it out.
    pub does: &'static str,
}

const fn map(
    answer: Answer,
    actions: &'static [KeyAction],
    shown: usize,
    does: &'static str,
) -> Choice {
    Choice {
        answer,
        keys: Keys::Map { actions, shown },
        does,
    }
}

/// Keys that work without a hint of their own.
const fn unsaid(answer: Answer, actions: &'static [KeyAction]) -> Choice {
    map(answer, actions, 0, "")
}

use KeyAction as A;

/// Yes and no, where yes destroys nothing.
const YES: &[KeyAction] = &[A::Confirm, A::Accept];
const NO: &[KeyAction] = &[A::Decline, A::Back];
/// Closing a dialog that only shows something: any yes or no.
const CLOSE: &[KeyAction] = &[A::Accept, A::Back, A::Confirm, A::Decline];

/// Whether `key` types into a text field.
fn types(key: &Key) -> bool {
    match key.code {
        KeyCode::Char(_) => !key.mods.contains(KeyModifiers::CONTROL),
        KeyCode::Backspace => true,
        _ => false,
    }
}

impl Dialog {
    /// Where its keys are read (the key map checks that no two of its actions
    /// share a key there).
    pub fn context(&self) -> Context {
        match self {
            Dialog::Retrieve { .. } => Context::Retrieval,
            Dialog::ConfirmMigration { .. } => Context::Migration,
            Dialog::Reconciliation => Context::Inventory,
            Dialog::Bandwidth { .. } => Context::Bandwidth,
            _ => Context::Question,
        }
    }

    /// Its answers, in the order keys are matched and hints are shown.
    /// `reconciliation`: the last one, which the inventory view shows.
    pub fn choices(&self, reconciliation: Option<&Reconciliation>) -> Vec<Choice> {
        let question = |yes: &'static [KeyAction], does_yes, does_no| {
            vec![
                map(Answer::Yes, yes, yes.len(), does_yes),
                map(Answer::No, NO, 2, does_no),
            ]
        };
        match self {
            Dialog::ConfirmBackupAll { .. } => question(YES, "back up", "cancel"),
            Dialog::ConfirmQuit { .. } => question(YES, "cancel them and quit", "keep running"),
            Dialog::ConfirmDelete { .. } | Dialog::ConfirmDeleteOrphans { .. } => {
                question(&[A::Confirm], "delete", "keep them")
            }
            Dialog::ConfirmOverwrite { .. } => {
                question(&[A::Confirm], "replace them", "keep the local files")
            }
            Dialog::Cost(_) | Dialog::History(_) | Dialog::Error { .. } => {
                vec![map(Answer::No, CLOSE, 2, "close")]
            }
            Dialog::ConfirmMigration { offer, .. } => {
                // The tier matters only for retrievals still to request.
                let plan = &offer.plan;
                let tiers = usize::from(plan.retrievals.files > plan.jobs_requested);
                vec![
                    map(Answer::Yes, YES, YES.len(), "copy"),
                    map(Answer::NextTier, &[A::NextTier], tiers, "tier"),
                    unsaid(Answer::PrevTier, &[A::PrevTier]),
                    map(Answer::No, NO, 2, "cancel"),
                ]
            }
            Dialog::Retrieve { .. } => vec![
                map(Answer::Yes, &[A::Accept], 1, "request"),
                map(Answer::NextTier, &[A::NextTier], 1, "tier"),
                unsaid(Answer::PrevTier, &[A::PrevTier]),
                Choice {
                    answer: Answer::Type,
                    keys: Keys::Typing,
                    does: "folder",
                },
                unsaid(Answer::ClearText, &[A::ClearText]),
                map(Answer::No, &[A::Back], 1, "cancel"),
            ],
            Dialog::Bandwidth { .. } => vec![
                map(Answer::Yes, &[A::Accept], 1, "apply"),
                map(Answer::NextTier, &[A::NextTier], 1, "other"),
                unsaid(Answer::PrevTier, &[A::PrevTier]),
                Choice {
                    answer: Answer::Type,
                    keys: Keys::Typing,
                    does: "",
                },
                map(Answer::ClearText, &[A::ClearText], 1, "clear"),
                map(Answer::No, &[A::Back], 1, "cancel"),
            ],
            Dialog::Reconciliation => {
                let orphans = reconciliation.is_some_and(|r| !r.orphans.is_empty());
                let shown = usize::from(orphans);
                let mut choices = vec![
                    map(Answer::Adopt, &[A::Adopt], shown, "adopt"),
                    map(Answer::DeleteOrphans, &[A::DeleteOrphans], shown, "delete"),
                    map(
                        Answer::NewInventory,
                        &[A::NewInventory],
                        1,
                        if reconciliation.is_some() {
                            "new inventory"
                        } else {
                            "request an inventory"
                        },
                    ),
                    map(Answer::No, &[A::Back, A::Accept, A::Quit], 1, "close"),
                ];
                if !orphans {
                    choices.retain(|c| c.answer != Answer::DeleteOrphans);
                }
                choices
            }
        }
    }

    /// What `key` answers, if anything.
    pub fn answer(
        &self,
        keys: &KeyMap,
        key: &Key,
        reconciliation: Option<&Reconciliation>,
    ) -> Option<Answer> {
        let choices = self.choices(reconciliation);
        let typing = choices.iter().any(|c| matches!(c.keys, Keys::Typing));
        if typing && types(key) {
            return Some(Answer::Type);
        }
        choices.into_iter().find_map(|c| match c.keys {
            Keys::Map { actions, .. } if actions.iter().any(|&a| keys.binds(a, *key)) => {
                Some(c.answer)
            }
            _ => None,
        })
    }

    /// The key line: each shown choice's keys (from `keys`) and what it does.
    pub fn hints(
        &self,
        keys: &KeyMap,
        reconciliation: Option<&Reconciliation>,
    ) -> Vec<(String, &'static str)> {
        let choices = self.choices(reconciliation);
        let typing = choices.iter().any(|c| matches!(c.keys, Keys::Typing));
        choices
            .iter()
            .filter(|c| !c.does.is_empty())
            .filter_map(|c| {
                let text = match c.keys {
                    Keys::Typing => "type".to_string(),
                    Keys::Map { actions, shown } => {
                        // The first key of each action that the dialog reads.
                        let shown: Vec<String> = actions[..shown]
                            .iter()
                            .filter_map(|&a| keys.single_keys(a).find(|k| !(typing && types(k))))
                            .map(|k| k.to_string())
                            .collect();
                        if shown.is_empty() {
                            return None;
                        }
                        shown.join(" / ")
                    }
                };
                Some((text, c.does))
            })
            .collect()
    }

    /// Why a yes cannot go ahead yet (the retrieval dialog without a folder).
    pub fn not_ready(&self) -> Option<&'static str> {
        match self {
            Dialog::Retrieve { destination, .. } if destination.trim().is_empty() => {
                Some("type the directory to restore into")
            }
            _ => None,
        }
    }

    /// Edits the retrieval dialog: its tier (among those the store offers), its
    /// folder; or the migration dialog's tier (among those the previous store
    /// offers).
    pub fn edit(&mut self, answer: Answer, key: &Key, tiers: &[Tier]) {
        if let Dialog::ConfirmMigration { offer, tier } = self {
            let offered: Vec<Tier> = offer.plan.quotes.iter().map(|q| q.tier).collect();
            cycle(tier, &offered, answer);
            return;
        }
        if let Dialog::Bandwidth {
            upload,
            download,
            field,
            error,
        } = self
        {
            let text = match field {
                Direction::Up => upload,
                Direction::Down => download,
            };
            match answer {
                Answer::NextTier | Answer::PrevTier => *field = field.other(),
                Answer::ClearText => text.clear(),
                Answer::Type => type_into(text, key),
                _ => {}
            }
            *error = None;
            return;
        }
        let Dialog::Retrieve {
            tier, destination, ..
        } = self
        else {
            return;
        };
        match answer {
            Answer::NextTier | Answer::PrevTier => cycle(tier, tiers, answer),
            Answer::ClearText => destination.clear(),
            Answer::Type => type_into(destination, key),
            _ => {}
        }
    }
}

/// A printable key or Backspace, into a text field.
fn type_into(text: &mut String, key: &Key) {
    match key.code {
        KeyCode::Backspace => {
            text.pop();
        }
        KeyCode::Char(c) => text.push(c),
        _ => {}
    }
}

/// Moves `tier` to the next or previous of `tiers`, round.
fn cycle(tier: &mut Tier, tiers: &[Tier], answer: Answer) {
    let n = tiers.len().max(1);
    let index = tiers.iter().position(|t| t == tier).unwrap_or(0);
    let next = match answer {
        Answer::NextTier => tiers.get((index + 1) % n),
        Answer::PrevTier => tiers.get((index + n - 1) % n),
        _ => None,
    };
    if let Some(next) = next {
        *tier = *next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cost::Prices;
    use crate::engine::TaskIds;

    fn every_dialog() -> Vec<Dialog> {
        let prices = Prices::free();
        vec![
            Dialog::ConfirmBackupAll { files: 1, bytes: 1 },
            Dialog::Retrieve {
                keys: vec![],
                bytes: 0,
                tier: Tier::Standard,
                destination: String::new(),
                quote: None,
            },
            Dialog::ConfirmDelete {
                plan: DeletionPlan::new(Vec::new(), &prices, 0, &TaskIds::default()),
                note: None,
            },
            Dialog::Cost(Box::new(CostSummary::of([], &prices, 0))),
            Dialog::History(Vec::new()),
            Dialog::Reconciliation,
            Dialog::ConfirmDeleteOrphans { orphans: vec![] },
            Dialog::ConfirmOverwrite {
                keys: vec![],
                tier: Tier::Bulk,
                destination: String::new(),
            },
            Dialog::ConfirmQuit { running: 1 },
            Dialog::Bandwidth {
                upload: String::new(),
                download: String::new(),
                field: Direction::Up,
                error: None,
            },
            Dialog::Error {
                title: String::new(),
                message: String::new(),
            },
        ]
    }

    /// The key map checks conflicts per context: a dialog may read only the
    /// actions of its own.
    #[test]
    fn dialogs_read_only_the_actions_of_their_context() {
        let with_orphans = Reconciliation {
            orphans: vec![Orphan {
                archive_id: "a".into(),
                size: 1,
                tree_hash: "00".into(),
                created_at: 0,
                description_text: String::new(),
                description: None,
                refused: None,
                pack: None,
            }],
            ..Default::default()
        };
        for dialog in every_dialog() {
            for reconciliation in [None, Some(&with_orphans)] {
                for choice in dialog.choices(reconciliation) {
                    if let Keys::Map { actions, shown } = choice.keys {
                        assert!(shown <= actions.len());
                        for action in actions {
                            assert!(
                                dialog.context().actions().contains(action),
                                "{dialog:?} reads {} outside {}",
                                action.name(),
                                dialog.context().name()
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn only_confirm_deletes_or_overwrites() {
        let keys = KeyMap::default();
        for dialog in every_dialog() {
            let enter = dialog.answer(&keys, &Key::plain(KeyCode::Enter), None);
            let y = dialog.answer(&keys, &Key::ch('y'), None);
            match dialog {
                Dialog::ConfirmDelete { .. }
                | Dialog::ConfirmDeleteOrphans { .. }
                | Dialog::ConfirmOverwrite { .. } => {
                    assert_eq!(enter, None, "{dialog:?}");
                    assert_eq!(y, Some(Answer::Yes), "{dialog:?}");
                }
                Dialog::ConfirmBackupAll { .. } | Dialog::ConfirmQuit { .. } => {
                    assert_eq!(enter, Some(Answer::Yes), "{dialog:?}");
                    assert_eq!(y, Some(Answer::Yes), "{dialog:?}");
                }
                _ => {}
            }
        }
    }
}
