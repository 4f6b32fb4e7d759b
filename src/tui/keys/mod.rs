//! The key map (gitui style): one list of bindings per action, with defaults and a
//! vim-ish preset, overridable from the config file. The status-bar hints, the
//! dialogs' key lines and the help overlay are generated from it, so they never
//! disagree with what keys do.
//!
//! Keys are read in a [`Context`]: the panes, or one of the dialogs. A key means
//! one thing in each context; the same key may mean other things in another
//! (`n` searches again in the panes and says no in a question).

mod action;
mod key;

use std::collections::BTreeMap;

use crossterm::event::{KeyCode, KeyModifiers};

pub use action::{Context, KeyAction};
pub use key::{Binding, Key};

/// What a key press did with respect to the map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    Action(KeyAction),
    /// The first key of a sequence: wait for the next.
    Prefix,
    None,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyMap {
    pub bindings: BTreeMap<KeyAction, Vec<Binding>>,
}

fn b(keys: &[Key]) -> Binding {
    Binding(keys.to_vec())
}

impl Default for KeyMap {
    fn default() -> Self {
        use KeyAction as A;
        use KeyCode as C;
        let p = Key::plain;
        let c = Key::ch;
        let mut m = BTreeMap::new();
        m.insert(A::Up, vec![b(&[p(C::Up)]), b(&[c('k')])]);
        m.insert(A::Down, vec![b(&[p(C::Down)]), b(&[c('j')])]);
        m.insert(A::PageUp, vec![b(&[p(C::PageUp)])]);
        m.insert(A::PageDown, vec![b(&[p(C::PageDown)])]);
        m.insert(A::HalfPageUp, vec![b(&[Key::ctrl('u')])]);
        m.insert(A::HalfPageDown, vec![b(&[Key::ctrl('d')])]);
        m.insert(A::Top, vec![b(&[p(C::Home)]), b(&[c('g'), c('g')])]);
        m.insert(A::Bottom, vec![b(&[p(C::End)]), b(&[c('G')])]);
        m.insert(A::Collapse, vec![b(&[p(C::Left)]), b(&[c('h')])]);
        m.insert(A::Expand, vec![b(&[p(C::Right)]), b(&[c('l')])]);
        m.insert(A::ExpandAll, vec![b(&[c('*')])]);
        m.insert(A::Open, vec![b(&[p(C::Enter)])]);
        m.insert(A::Mark, vec![b(&[c(' ')])]);
        m.insert(A::ClearMarks, vec![b(&[c('M')])]);
        m.insert(A::Upload, vec![b(&[c('u')])]);
        m.insert(A::BackupAll, vec![b(&[c('U')])]);
        m.insert(A::Search, vec![b(&[c('/')])]);
        m.insert(A::SearchNext, vec![b(&[c('n')])]);
        m.insert(A::SearchPrev, vec![b(&[c('N')])]);
        m.insert(A::NextPending, vec![b(&[c(']')])]);
        m.insert(A::PrevPending, vec![b(&[c('[')])]);
        m.insert(A::Sort, vec![b(&[c('s')])]);
        m.insert(A::View, vec![b(&[c('v')])]);
        m.insert(
            A::FocusNext,
            vec![
                b(&[p(C::Tab)]),
                b(&[Key::new(C::BackTab, KeyModifiers::SHIFT)]),
            ],
        );
        m.insert(A::CancelJob, vec![b(&[c('x')])]);
        m.insert(A::Retrieve, vec![b(&[c('r')])]);
        m.insert(A::Delete, vec![b(&[c('d')])]);
        m.insert(A::Prune, vec![b(&[c('P')])]);
        m.insert(A::Cost, vec![b(&[c('$')])]);
        m.insert(A::Reconcile, vec![b(&[c('I')])]);
        m.insert(A::Migrate, vec![b(&[c('C')])]);
        m.insert(A::Bandwidth, vec![b(&[c('b')])]);
        m.insert(A::History, vec![b(&[c('H')])]);
        m.insert(A::RetryJob, vec![b(&[c('R')])]);
        m.insert(A::ToggleDetails, vec![b(&[c('i')])]);
        m.insert(A::ToggleLog, vec![b(&[c('L')])]);
        m.insert(A::Rescan, vec![b(&[Key::ctrl('r')]), b(&[p(C::F(5))])]);
        m.insert(A::Help, vec![b(&[c('?')]), b(&[p(C::F(1))])]);
        m.insert(A::Back, vec![b(&[p(C::Esc)])]);
        m.insert(A::Quit, vec![b(&[c('q')]), b(&[Key::ctrl('c')])]);
        // Dialogs. Only `confirm` deletes or overwrites; `accept` (Enter) says yes
        // only where nothing is destroyed.
        m.insert(A::Confirm, vec![b(&[c('y')])]);
        m.insert(A::Accept, vec![b(&[p(C::Enter)]), b(&[c('Y')])]);
        m.insert(A::Decline, vec![b(&[c('n')]), b(&[c('N')]), b(&[c('q')])]);
        m.insert(
            A::NextTier,
            vec![b(&[p(C::Tab)]), b(&[p(C::Right)]), b(&[p(C::Down)])],
        );
        m.insert(
            A::PrevTier,
            vec![
                b(&[Key::new(C::BackTab, KeyModifiers::SHIFT)]),
                b(&[p(C::Left)]),
                b(&[p(C::Up)]),
            ],
        );
        m.insert(A::ClearText, vec![b(&[Key::ctrl('u')])]);
        m.insert(A::NewInventory, vec![b(&[c('n')])]);
        m.insert(A::Adopt, vec![b(&[c('a')])]);
        m.insert(A::DeleteOrphans, vec![b(&[c('x')])]);
        KeyMap { bindings: m }
    }
}

impl KeyMap {
    /// The default map plus vim's paging keys and `zc`/`zo`-style folding.
    pub fn vim() -> KeyMap {
        use KeyAction as A;
        let mut map = KeyMap::default();
        let add = |map: &mut KeyMap, action, binding: Binding| {
            map.bindings.entry(action).or_default().push(binding);
        };
        add(&mut map, A::PageDown, b(&[Key::ctrl('f')]));
        add(&mut map, A::PageUp, b(&[Key::ctrl('b')]));
        add(&mut map, A::Collapse, b(&[Key::ch('z'), Key::ch('c')]));
        add(&mut map, A::Expand, b(&[Key::ch('z'), Key::ch('o')]));
        add(&mut map, A::Open, b(&[Key::ch('z'), Key::ch('a')]));
        add(&mut map, A::ExpandAll, b(&[Key::ch('z'), Key::ch('R')]));
        add(&mut map, A::Quit, b(&[Key::ch('Z'), Key::ch('Z')]));
        map
    }

    pub fn preset(name: &str) -> Result<KeyMap, String> {
        match name {
            "default" => Ok(KeyMap::default()),
            "vim" => Ok(KeyMap::vim()),
            other => Err(format!(
                "unknown key preset {other:?} (known: default, vim)"
            )),
        }
    }

    /// Replaces the bindings of one action.
    pub fn set(&mut self, action: KeyAction, bindings: Vec<Binding>) {
        self.bindings.insert(action, bindings);
    }

    pub fn keys(&self, action: KeyAction) -> &[Binding] {
        self.bindings.get(&action).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The first binding of an action, for hints (`?`).
    pub fn first(&self, action: KeyAction) -> Option<&Binding> {
        self.keys(action).first()
    }

    /// What `key` does in the panes, given the key pressed before it (if it
    /// began a sequence).
    pub fn lookup(&self, prefix: Option<Key>, key: Key) -> Lookup {
        let wanted: Vec<Key> = prefix.into_iter().chain([key]).collect();
        let panes = KeyAction::panes();
        for &action in panes {
            if self.keys(action).iter().any(|b| b.0 == wanted) {
                return Lookup::Action(action);
            }
        }
        if prefix.is_none()
            && panes
                .iter()
                .flat_map(|&a| self.keys(a))
                .any(|b| b.0.len() == 2 && b.0[0] == key)
        {
            return Lookup::Prefix;
        }
        Lookup::None
    }

    /// Whether `key` alone is one of `action`'s bindings (dialogs read single
    /// keys, never sequences).
    pub fn binds(&self, action: KeyAction, key: Key) -> bool {
        self.keys(action).iter().any(|b| b.0 == [key])
    }

    /// The single keys of `action`, in order (what dialogs read and show).
    pub fn single_keys(&self, action: KeyAction) -> impl Iterator<Item = Key> + '_ {
        self.keys(action)
            .iter()
            .filter(|b| b.0.len() == 1)
            .map(|b| b.0[0])
    }

    /// What cannot work (reported as a config error): the same key bound to
    /// two actions of one context, a sequence bound to a dialog's action.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut reported = Vec::new();
        for context in Context::ALL {
            let mut seen: BTreeMap<String, KeyAction> = BTreeMap::new();
            for &action in context.actions() {
                for binding in self.keys(action) {
                    let text = binding.to_string();
                    if let Some(other) = seen.insert(text.clone(), action)
                        && other != action
                        && !reported.contains(&(text.clone(), other, action))
                    {
                        out.push(format!(
                            "{text:?} is bound to both {} and {} in {}",
                            other.name(),
                            action.name(),
                            context.name()
                        ));
                        reported.push((text, other, action));
                    }
                }
            }
        }
        for &action in KeyAction::dialog_only() {
            for binding in self.keys(action).iter().filter(|b| b.0.len() > 1) {
                out.push(format!(
                    "{} = {:?}: dialogs read single keys, not sequences",
                    action.name(),
                    binding.to_string()
                ));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_keys() {
        assert_eq!(Key::parse("u").unwrap(), Key::ch('u'));
        assert_eq!(Key::parse("U").unwrap(), Key::ch('U'));
        assert_eq!(Key::parse("shift-u").unwrap(), Key::ch('U'));
        assert_eq!(Key::parse("ctrl-R").unwrap(), Key::ctrl('r'));
        assert_eq!(Key::parse("space").unwrap(), Key::ch(' '));
        assert_eq!(Key::parse("pgdn").unwrap(), Key::plain(KeyCode::PageDown));
        assert_eq!(Key::parse("f5").unwrap(), Key::plain(KeyCode::F(5)));
        assert!(Key::parse("hyper-x").is_err());
        assert_eq!(
            Binding::parse("gg").unwrap(),
            Binding(vec![Key::ch('g'), Key::ch('g')])
        );
        assert_eq!(
            Binding::parse("z c").unwrap(),
            Binding(vec![Key::ch('z'), Key::ch('c')])
        );
    }

    #[test]
    fn sequences_and_defaults_have_no_conflicts() {
        let map = KeyMap::default();
        assert!(map.problems().is_empty(), "{:?}", map.problems());
        assert!(KeyMap::vim().problems().is_empty());
        assert_eq!(map.lookup(None, Key::ch('g')), Lookup::Prefix);
        assert_eq!(
            map.lookup(Some(Key::ch('g')), Key::ch('g')),
            Lookup::Action(KeyAction::Top)
        );
        assert_eq!(
            map.lookup(None, Key::ch('G')),
            Lookup::Action(KeyAction::Bottom)
        );
        assert_eq!(map.lookup(None, Key::ch('Q')), Lookup::None);
        // Dialog keys are not read in the panes.
        assert_eq!(map.lookup(None, Key::ch('y')), Lookup::None);
        assert_eq!(
            map.lookup(None, Key::ch('n')),
            Lookup::Action(KeyAction::SearchNext)
        );
    }

    #[test]
    fn one_key_means_one_thing_per_context() {
        let mut map = KeyMap::default();
        // `n` is "search again" in the panes and "no" in a question: fine.
        assert!(map.binds(KeyAction::Decline, Key::ch('n')));
        // Two answers to one question on the same key: refused.
        map.set(KeyAction::Confirm, vec![Binding::parse("n").unwrap()]);
        let problems = map.problems();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("in a question"), "{problems:?}");
        // Dialogs read single keys.
        let mut map = KeyMap::default();
        map.set(KeyAction::Confirm, vec![Binding::parse("yy").unwrap()]);
        assert!(map.problems()[0].contains("single keys"));
    }

    #[test]
    fn every_action_is_read_somewhere() {
        for action in KeyAction::ALL {
            assert!(
                Context::ALL.iter().any(|c| c.actions().contains(&action)),
                "{} is read in no context",
                action.name()
            );
        }
        assert_eq!(
            KeyAction::panes().len() + KeyAction::dialog_only().len(),
            KeyAction::ALL.len()
        );
    }
}
