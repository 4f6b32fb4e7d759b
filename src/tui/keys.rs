//! The key map (gitui style): one list of bindings per action, with defaults and a
//! vim-ish preset, overridable from the config file. The status-bar hints, the
//! dialogs' key lines and the help overlay are generated from it, so they never
//! disagree with what keys do.
//!
//! Keys are read in a [`Context`]: the panes, or one of the dialogs. A key means
//! one thing in each context; the same key may mean other things in another
//! (`n` searches again in the panes and says no in a question).

use std::collections::BTreeMap;
use std::fmt;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// Everything a key can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum KeyAction {
    Up,
    Down,
    PageUp,
    PageDown,
    HalfPageUp,
    HalfPageDown,
    Top,
    Bottom,
    Collapse,
    Expand,
    Open,
    Mark,
    ClearMarks,
    Upload,
    BackupAll,
    Retrieve,
    Delete,
    Prune,
    Cost,
    Reconcile,
    Search,
    SearchNext,
    SearchPrev,
    NextPending,
    PrevPending,
    Sort,
    View,
    FocusNext,
    CancelJob,
    RetryJob,
    ToggleDetails,
    ToggleLog,
    Rescan,
    Help,
    Back,
    Quit,
    // In dialogs.
    Confirm,
    Accept,
    Decline,
    NextTier,
    PrevTier,
    ClearText,
    NewInventory,
    Adopt,
    DeleteOrphans,
}

impl KeyAction {
    pub const ALL: [KeyAction; 45] = [
        KeyAction::Up,
        KeyAction::Down,
        KeyAction::PageUp,
        KeyAction::PageDown,
        KeyAction::HalfPageUp,
        KeyAction::HalfPageDown,
        KeyAction::Top,
        KeyAction::Bottom,
        KeyAction::Collapse,
        KeyAction::Expand,
        KeyAction::Open,
        KeyAction::Mark,
        KeyAction::ClearMarks,
        KeyAction::Upload,
        KeyAction::BackupAll,
        KeyAction::Retrieve,
        KeyAction::Delete,
        KeyAction::Prune,
        KeyAction::Cost,
        KeyAction::Reconcile,
        KeyAction::Search,
        KeyAction::SearchNext,
        KeyAction::SearchPrev,
        KeyAction::NextPending,
        KeyAction::PrevPending,
        KeyAction::Sort,
        KeyAction::View,
        KeyAction::FocusNext,
        KeyAction::CancelJob,
        KeyAction::RetryJob,
        KeyAction::ToggleDetails,
        KeyAction::ToggleLog,
        KeyAction::Rescan,
        KeyAction::Help,
        KeyAction::Back,
        KeyAction::Quit,
        KeyAction::Confirm,
        KeyAction::Accept,
        KeyAction::Decline,
        KeyAction::NextTier,
        KeyAction::PrevTier,
        KeyAction::ClearText,
        KeyAction::NewInventory,
        KeyAction::Adopt,
        KeyAction::DeleteOrphans,
    ];

    /// The actions of the panes (the first of [`KeyAction::ALL`]); the rest are
    /// read only in dialogs.
    pub fn panes() -> &'static [KeyAction] {
        &KeyAction::ALL[..36]
    }

    /// The actions read only in dialogs.
    pub fn dialog_only() -> &'static [KeyAction] {
        &KeyAction::ALL[36..]
    }

    /// The name used in the config file (`[tui.keys] upload = ["u"]`).
    pub fn name(self) -> &'static str {
        match self {
            KeyAction::Up => "up",
            KeyAction::Down => "down",
            KeyAction::PageUp => "page_up",
            KeyAction::PageDown => "page_down",
            KeyAction::HalfPageUp => "half_page_up",
            KeyAction::HalfPageDown => "half_page_down",
            KeyAction::Top => "top",
            KeyAction::Bottom => "bottom",
            KeyAction::Collapse => "collapse",
            KeyAction::Expand => "expand",
            KeyAction::Open => "open",
            KeyAction::Mark => "mark",
            KeyAction::ClearMarks => "clear_marks",
            KeyAction::Upload => "upload",
            KeyAction::BackupAll => "backup_all",
            KeyAction::Search => "search",
            KeyAction::SearchNext => "search_next",
            KeyAction::SearchPrev => "search_prev",
            KeyAction::NextPending => "next_pending",
            KeyAction::PrevPending => "prev_pending",
            KeyAction::Sort => "sort",
            KeyAction::View => "view",
            KeyAction::FocusNext => "focus_next",
            KeyAction::Retrieve => "retrieve",
            KeyAction::Delete => "delete",
            KeyAction::Prune => "prune",
            KeyAction::Cost => "cost",
            KeyAction::Reconcile => "reconcile",
            KeyAction::CancelJob => "cancel_job",
            KeyAction::RetryJob => "retry_job",
            KeyAction::ToggleDetails => "toggle_details",
            KeyAction::ToggleLog => "toggle_log",
            KeyAction::Rescan => "rescan",
            KeyAction::Help => "help",
            KeyAction::Back => "back",
            KeyAction::Quit => "quit",
            KeyAction::Confirm => "confirm",
            KeyAction::Accept => "accept",
            KeyAction::Decline => "decline",
            KeyAction::NextTier => "next_tier",
            KeyAction::PrevTier => "prev_tier",
            KeyAction::ClearText => "clear_text",
            KeyAction::NewInventory => "new_inventory",
            KeyAction::Adopt => "adopt",
            KeyAction::DeleteOrphans => "delete_orphans",
        }
    }

    /// What the help overlay says it does.
    pub fn describe(self) -> &'static str {
        match self {
            KeyAction::Up => "move up",
            KeyAction::Down => "move down",
            KeyAction::PageUp => "page up",
            KeyAction::PageDown => "page down",
            KeyAction::HalfPageUp => "half a page up",
            KeyAction::HalfPageDown => "half a page down",
            KeyAction::Top => "first row",
            KeyAction::Bottom => "last row",
            KeyAction::Collapse => "collapse directory / go to parent",
            KeyAction::Expand => "expand directory",
            KeyAction::Open => "expand or collapse directory",
            KeyAction::Mark => "mark file or directory",
            KeyAction::ClearMarks => "clear all marks",
            KeyAction::Upload => "upload marked entries (or the selection)",
            KeyAction::BackupAll => "back up everything pending (asks first)",
            KeyAction::Search => "search names incrementally",
            KeyAction::SearchNext => "next search match",
            KeyAction::SearchPrev => "previous search match",
            KeyAction::NextPending => "next pending file",
            KeyAction::PrevPending => "previous pending file",
            KeyAction::Sort => "sort by name / size / mtime / status",
            KeyAction::View => "view all / pending / archived-only / problems",
            KeyAction::FocusNext => "switch between tree and jobs",
            KeyAction::Retrieve => "retrieve archived files (asks tier)",
            KeyAction::Delete => "delete archives of marked files (asks)",
            KeyAction::Prune => "delete old superseded versions (asks)",
            KeyAction::Cost => "what the archives cost",
            KeyAction::Reconcile => "store inventory vs catalog, orphans",
            KeyAction::CancelJob => "cancel the selected job",
            KeyAction::RetryJob => "retry the selected failed job",
            KeyAction::ToggleDetails => "show / hide details",
            KeyAction::ToggleLog => "show / hide log",
            KeyAction::Rescan => "scan the tree again",
            KeyAction::Help => "this help",
            KeyAction::Back => "close overlay / cancel search",
            KeyAction::Quit => "quit (asks while uploads run)",
            KeyAction::Confirm => "yes; the only key that deletes or overwrites",
            KeyAction::Accept => "yes where nothing is deleted; close",
            KeyAction::Decline => "no: close the question",
            KeyAction::NextTier => "retrieval: next tier",
            KeyAction::PrevTier => "retrieval: previous tier",
            KeyAction::ClearText => "retrieval: clear the folder",
            KeyAction::NewInventory => "inventory view: ask for a new inventory",
            KeyAction::Adopt => "inventory view: adopt the orphans",
            KeyAction::DeleteOrphans => "inventory view: delete the orphans (asks)",
        }
    }

    /// The shortest word for the status bar.
    pub fn hint(self) -> &'static str {
        match self {
            KeyAction::Mark => "mark",
            KeyAction::Upload => "upload",
            KeyAction::BackupAll => "back up all",
            KeyAction::Search => "search",
            KeyAction::NextPending => "next pending",
            KeyAction::Sort => "sort",
            KeyAction::View => "view",
            KeyAction::FocusNext => "jobs",
            KeyAction::Retrieve => "retrieve",
            KeyAction::Delete => "delete",
            KeyAction::Prune => "prune",
            KeyAction::Cost => "cost",
            KeyAction::Reconcile => "inventory",
            KeyAction::CancelJob => "cancel",
            KeyAction::RetryJob => "retry",
            KeyAction::ToggleLog => "log",
            KeyAction::Help => "help",
            KeyAction::Quit => "quit",
            KeyAction::Open => "open",
            other => other.name(),
        }
    }

    pub fn from_name(name: &str) -> Option<KeyAction> {
        KeyAction::ALL.into_iter().find(|a| a.name() == name)
    }
}

/// Where keys are read: the actions of one context never share a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    /// The tree, the jobs pane, the help overlay.
    Panes,
    /// A yes / no question, or a dialog that only shows something.
    Question,
    /// The retrieval dialog (its printable keys type the folder).
    Retrieval,
    /// The inventory view (store inventory vs catalog).
    Inventory,
}

impl Context {
    pub const ALL: [Context; 4] = [
        Context::Panes,
        Context::Question,
        Context::Retrieval,
        Context::Inventory,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Context::Panes => "the panes",
            Context::Question => "a question",
            Context::Retrieval => "the retrieval dialog",
            Context::Inventory => "the inventory view",
        }
    }

    /// The actions read in this context.
    pub fn actions(self) -> &'static [KeyAction] {
        use KeyAction as A;
        match self {
            Context::Panes => KeyAction::panes(),
            Context::Question => &[A::Confirm, A::Accept, A::Decline, A::Back],
            Context::Retrieval => &[A::Accept, A::NextTier, A::PrevTier, A::ClearText, A::Back],
            Context::Inventory => &[
                A::NewInventory,
                A::Adopt,
                A::DeleteOrphans,
                A::Back,
                A::Accept,
                A::Quit,
            ],
        }
    }
}

/// One key press (code + modifiers), comparable with crossterm's events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    pub code: KeyCode,
    pub mods: KeyModifiers,
}

impl Key {
    pub const fn new(code: KeyCode, mods: KeyModifiers) -> Key {
        Key { code, mods }
    }

    pub const fn plain(code: KeyCode) -> Key {
        Key::new(code, KeyModifiers::NONE)
    }

    pub const fn ch(c: char) -> Key {
        Key::plain(KeyCode::Char(c))
    }

    pub const fn ctrl(c: char) -> Key {
        Key::new(KeyCode::Char(c), KeyModifiers::CONTROL)
    }

    /// A crossterm event, normalised (shift is implied by an upper-case char).
    pub fn from_event(event: &KeyEvent) -> Key {
        let mut mods = event.modifiers & (KeyModifiers::CONTROL | KeyModifiers::ALT);
        if !matches!(event.code, KeyCode::Char(_)) {
            mods |= event.modifiers & KeyModifiers::SHIFT;
        }
        let code = event.code;
        Key { code, mods }
    }

    /// Parses `u`, `U`, `ctrl-r`, `space`, `pgdn`, `f5`, ...
    pub fn parse(text: &str) -> Result<Key, String> {
        let mut mods = KeyModifiers::NONE;
        let mut rest = text;
        loop {
            let lower = rest.to_ascii_lowercase();
            if let Some(r) = lower.strip_prefix("ctrl-").or(lower.strip_prefix("c-")) {
                mods |= KeyModifiers::CONTROL;
                rest = &rest[rest.len() - r.len()..];
            } else if let Some(r) = lower.strip_prefix("alt-").or(lower.strip_prefix("m-")) {
                mods |= KeyModifiers::ALT;
                rest = &rest[rest.len() - r.len()..];
            } else if let Some(r) = lower.strip_prefix("shift-") {
                mods |= KeyModifiers::SHIFT;
                rest = &rest[rest.len() - r.len()..];
            } else {
                break;
            }
        }
        let mut chars = rest.chars();
        let code = match (chars.next(), chars.next()) {
            (Some(c), None) => {
                if mods.contains(KeyModifiers::SHIFT) && c.is_ascii_alphabetic() {
                    mods.remove(KeyModifiers::SHIFT);
                    KeyCode::Char(c.to_ascii_uppercase())
                } else {
                    KeyCode::Char(c)
                }
            }
            _ => match rest.to_ascii_lowercase().as_str() {
                "space" => KeyCode::Char(' '),
                "enter" | "return" => KeyCode::Enter,
                "esc" | "escape" => KeyCode::Esc,
                "tab" => KeyCode::Tab,
                "backtab" => KeyCode::BackTab,
                "up" => KeyCode::Up,
                "down" => KeyCode::Down,
                "left" => KeyCode::Left,
                "right" => KeyCode::Right,
                "pgup" | "pageup" => KeyCode::PageUp,
                "pgdn" | "pagedown" => KeyCode::PageDown,
                "home" => KeyCode::Home,
                "end" => KeyCode::End,
                "backspace" => KeyCode::Backspace,
                "delete" | "del" => KeyCode::Delete,
                "insert" => KeyCode::Insert,
                f if f.starts_with('f') && f[1..].parse::<u8>().is_ok() => {
                    KeyCode::F(f[1..].parse().unwrap_or(1))
                }
                _ => return Err(format!("unknown key {text:?}")),
            },
        };
        if let KeyCode::Char(c) = code
            && mods.contains(KeyModifiers::CONTROL)
        {
            return Ok(Key::new(
                KeyCode::Char(c.to_ascii_lowercase()),
                mods - KeyModifiers::SHIFT,
            ));
        }
        Ok(Key { code, mods })
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.mods.contains(KeyModifiers::CONTROL) {
            f.write_str("ctrl-")?;
        }
        if self.mods.contains(KeyModifiers::ALT) {
            f.write_str("alt-")?;
        }
        if self.mods.contains(KeyModifiers::SHIFT) && self.code != KeyCode::BackTab {
            f.write_str("shift-")?;
        }
        match self.code {
            KeyCode::Char(' ') => f.write_str("space"),
            KeyCode::Char(c) => write!(f, "{c}"),
            KeyCode::Enter => f.write_str("enter"),
            KeyCode::Esc => f.write_str("esc"),
            KeyCode::Tab => f.write_str("tab"),
            KeyCode::BackTab => f.write_str("shift-tab"),
            KeyCode::Up => f.write_str("↑"),
            KeyCode::Down => f.write_str("↓"),
            KeyCode::Left => f.write_str("←"),
            KeyCode::Right => f.write_str("→"),
            KeyCode::PageUp => f.write_str("pgup"),
            KeyCode::PageDown => f.write_str("pgdn"),
            KeyCode::Home => f.write_str("home"),
            KeyCode::End => f.write_str("end"),
            KeyCode::Backspace => f.write_str("backspace"),
            KeyCode::Delete => f.write_str("del"),
            KeyCode::F(n) => write!(f, "f{n}"),
            other => write!(f, "{other:?}"),
        }
    }
}

/// One or two keys pressed in sequence (`gg`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Binding(pub Vec<Key>);

impl Binding {
    pub fn parse(text: &str) -> Result<Binding, String> {
        let keys: Vec<Key> = if text.chars().count() == 2
            && text.chars().all(|c| c.is_ascii_alphabetic())
            && !text.contains('-')
        {
            // "gg": two plain keys in a row.
            text.chars().map(Key::ch).collect()
        } else {
            text.split_whitespace()
                .map(Key::parse)
                .collect::<Result<_, _>>()?
        };
        if keys.is_empty() || keys.len() > 2 {
            return Err(format!(
                "key binding {text:?} must be one key or two in a row"
            ));
        }
        Ok(Binding(keys))
    }
}

impl fmt::Display for Binding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for key in &self.0 {
            write!(f, "{key}")?;
        }
        Ok(())
    }
}

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
