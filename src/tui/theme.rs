//! Colours by meaning. Every role maps to one of the terminal's own 16 colours by
//! default (so the user's palette applies); `NO_COLOR` turns colour off and leaves
//! the marks, which read without it; the config file can remap any role.

use std::collections::BTreeMap;

use ratatui::style::{Color, Modifier, Style};

use super::tree::Mark;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    New,
    Changed,
    Ok,
    ArchivedOnly,
    Ignored,
    Problem,
    Queued,
    Uploading,
    Selection,
    Marked,
    Border,
    Focus,
    Title,
    Dim,
    Key,
    Gauge,
}

impl Role {
    pub const ALL: [Role; 16] = [
        Role::New,
        Role::Changed,
        Role::Ok,
        Role::ArchivedOnly,
        Role::Ignored,
        Role::Problem,
        Role::Queued,
        Role::Uploading,
        Role::Selection,
        Role::Marked,
        Role::Border,
        Role::Focus,
        Role::Title,
        Role::Dim,
        Role::Key,
        Role::Gauge,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Role::New => "new",
            Role::Changed => "changed",
            Role::Ok => "ok",
            Role::ArchivedOnly => "archived_only",
            Role::Ignored => "ignored",
            Role::Problem => "problem",
            Role::Queued => "queued",
            Role::Uploading => "uploading",
            Role::Selection => "selection",
            Role::Marked => "marked",
            Role::Border => "border",
            Role::Focus => "focus",
            Role::Title => "title",
            Role::Dim => "dim",
            Role::Key => "key",
            Role::Gauge => "gauge",
        }
    }

    pub fn from_name(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.name() == name)
    }

    pub fn of_mark(mark: Mark) -> Role {
        match mark {
            Mark::New => Role::New,
            Mark::Changed => Role::Changed,
            Mark::UpToDate => Role::Ok,
            Mark::ArchivedOnly => Role::ArchivedOnly,
            Mark::Ignored | Mark::Empty => Role::Ignored,
            Mark::Unreadable | Mark::Failed | Mark::Skipped => Role::Problem,
            Mark::Queued => Role::Queued,
            Mark::Uploading => Role::Uploading,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Theme {
    colors: BTreeMap<Role, Color>,
    /// False under `NO_COLOR`: styles carry modifiers only.
    pub color: bool,
}

impl Default for Theme {
    fn default() -> Self {
        let mut colors = BTreeMap::new();
        for (role, color) in [
            (Role::New, Color::Green),
            (Role::Changed, Color::Yellow),
            (Role::Ok, Color::Reset),
            (Role::ArchivedOnly, Color::Magenta),
            (Role::Ignored, Color::DarkGray),
            (Role::Problem, Color::Red),
            (Role::Queued, Color::Cyan),
            (Role::Uploading, Color::LightCyan),
            (Role::Selection, Color::Blue),
            (Role::Marked, Color::LightYellow),
            (Role::Border, Color::DarkGray),
            (Role::Focus, Color::Blue),
            (Role::Title, Color::Cyan),
            (Role::Dim, Color::DarkGray),
            (Role::Key, Color::Cyan),
            (Role::Gauge, Color::Green),
        ] {
            colors.insert(role, color);
        }
        Theme {
            colors,
            color: true,
        }
    }
}

impl Theme {
    pub fn no_color() -> Theme {
        Theme {
            color: false,
            ..Theme::default()
        }
    }

    /// Default colours, or none when `NO_COLOR` is set to anything non-empty.
    pub fn from_env() -> Theme {
        if std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()) {
            Theme::no_color()
        } else {
            Theme::default()
        }
    }

    pub fn set(&mut self, role: Role, color: Color) {
        self.colors.insert(role, color);
    }

    pub fn color(&self, role: Role) -> Color {
        self.colors.get(&role).copied().unwrap_or(Color::Reset)
    }

    /// Foreground in the role's colour.
    pub fn fg(&self, role: Role) -> Style {
        if self.color {
            Style::new().fg(self.color(role))
        } else {
            match role {
                Role::Problem | Role::Title | Role::Key => {
                    Style::new().add_modifier(Modifier::BOLD)
                }
                _ => Style::new(),
            }
        }
    }

    pub fn mark(&self, mark: Mark) -> Style {
        self.fg(Role::of_mark(mark))
    }

    /// The selected row: reversed without colour.
    pub fn selection(&self, focused: bool) -> Style {
        if self.color {
            let style = Style::new().bg(self.color(Role::Selection));
            if focused {
                style.fg(Color::White).add_modifier(Modifier::BOLD)
            } else {
                style
            }
        } else if focused {
            Style::new().add_modifier(Modifier::REVERSED)
        } else {
            Style::new().add_modifier(Modifier::UNDERLINED)
        }
    }

    pub fn border(&self, focused: bool) -> Style {
        if focused {
            self.fg(Role::Focus).add_modifier(Modifier::BOLD)
        } else {
            self.fg(Role::Border)
        }
    }

    pub fn dim(&self) -> Style {
        if self.color {
            self.fg(Role::Dim)
        } else {
            Style::new()
        }
    }
}
