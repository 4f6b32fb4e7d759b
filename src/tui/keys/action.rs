//! Everything a key can ask for, and the contexts keys are read in.

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
    ExpandAll,
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
    Migrate,
    Bandwidth,
    History,
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
    pub const ALL: [KeyAction; 49] = [
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
        KeyAction::ExpandAll,
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
        KeyAction::Migrate,
        KeyAction::Bandwidth,
        KeyAction::History,
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
        &KeyAction::ALL[..40]
    }

    /// The actions read only in dialogs.
    pub fn dialog_only() -> &'static [KeyAction] {
        &KeyAction::ALL[40..]
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
            KeyAction::ExpandAll => "expand_all",
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
            KeyAction::Migrate => "migrate",
            KeyAction::Bandwidth => "bandwidth",
            KeyAction::History => "history",
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
            KeyAction::ExpandAll => "expand directory and all below",
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
            KeyAction::Migrate => "copy archives from the previous store (asks)",
            KeyAction::Bandwidth => "bandwidth limits for this run",
            KeyAction::History => "the set's last runs and how they ended",
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
            KeyAction::NextTier => "next tier, or the other bandwidth field",
            KeyAction::PrevTier => "previous tier, or the other bandwidth field",
            KeyAction::ClearText => "clear the folder or the bandwidth typed",
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
            KeyAction::Bandwidth => "bandwidth",
            KeyAction::History => "history",
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
    /// The migration dialog: a tier, then yes or no.
    Migration,
    /// The inventory view (store inventory vs catalog).
    Inventory,
    /// The bandwidth dialog (its printable keys type a limit).
    Bandwidth,
}

impl Context {
    pub const ALL: [Context; 6] = [
        Context::Panes,
        Context::Question,
        Context::Retrieval,
        Context::Migration,
        Context::Inventory,
        Context::Bandwidth,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Context::Panes => "the panes",
            Context::Question => "a question",
            Context::Retrieval => "the retrieval dialog",
            Context::Migration => "the migration dialog",
            Context::Inventory => "the inventory view",
            Context::Bandwidth => "the bandwidth dialog",
        }
    }

    /// The actions read in this context.
    pub fn actions(self) -> &'static [KeyAction] {
        use KeyAction as A;
        match self {
            Context::Panes => KeyAction::panes(),
            Context::Question => &[A::Confirm, A::Accept, A::Decline, A::Back],
            Context::Retrieval | Context::Bandwidth => {
                &[A::Accept, A::NextTier, A::PrevTier, A::ClearText, A::Back]
            }
            Context::Migration => &[
                A::Confirm,
                A::Accept,
                A::NextTier,
                A::PrevTier,
                A::Decline,
                A::Back,
            ],
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
