//! The `[tui]` table of the config file: key map and colours.
//!
//! ```toml
//! [tui]
//! keys_preset = "vim"               # default | vim
//!
//! [tui.keys]                        # action = [keys]; replaces that action's keys
//! upload = ["u", "ctrl-u"]
//! top = ["home", "gg"]
//! confirm = ["o"]                   # dialogs too: confirm, accept, decline, ...
//!
//! [tui.colors]                      # role = colour name, 0-255, or #rrggbb
//! new = "lightgreen"
//! selection = "magenta"
//! ```
//!
//! Read here, not in `config.rs`, so the TUI's settings stay with the TUI; the
//! shared parser only accepts the table's presence.

use std::path::Path;

use anyhow::Result;
use ratatui::style::Color;

use super::keys::{Binding, KeyAction, KeyMap};
use super::theme::{Role, Theme};
use crate::model::usage;
#[derive(Debug, Clone)]
pub struct Settings {
    pub keys: KeyMap,
    pub theme: Theme,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            keys: KeyMap::default(),
            theme: Theme::from_env(),
        }
    }
}

impl Settings {
    /// Reads `[tui]` from the config file `--config` / `FIRN_CONFIG` / the platform
    /// default names (a missing default file is fine).
    pub fn load(config_flag: Option<&Path>) -> Result<Settings> {
        let explicit = config_flag.is_some() || std::env::var_os("FIRN_CONFIG").is_some();
        let Some(path) = crate::config::config_path(config_flag) else {
            return Ok(Settings::default());
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => {
                return Ok(Settings::default());
            }
            Err(e) => {
                return Err(usage(format!(
                    "cannot read config file {}: {e}",
                    path.display()
                )));
            }
        };
        Settings::from_toml(&text, Theme::from_env())
            .map_err(|e| usage(format!("invalid [tui] settings in {}: {e}", path.display())))
    }

    /// Parses a whole config file's text, using its `[tui]` table if any.
    pub fn from_toml(text: &str, base_theme: Theme) -> Result<Settings, String> {
        let doc: toml::Table = toml::from_str(text).map_err(|e| e.message().to_string())?;
        let mut settings = Settings {
            keys: KeyMap::default(),
            theme: base_theme,
        };
        let Some(tui) = doc.get("tui") else {
            return Ok(settings);
        };
        let tui = tui.as_table().ok_or("`tui` must be a table")?;
        for (name, value) in tui {
            match name.as_str() {
                "keys_preset" => {
                    let preset = value.as_str().ok_or("keys_preset must be a string")?;
                    settings.keys = KeyMap::preset(preset)?;
                }
                "keys" | "colors" => {}
                other => {
                    return Err(format!(
                        "unknown setting tui.{other} (known: keys_preset, keys, colors)"
                    ));
                }
            }
        }
        if let Some(keys) = tui.get("keys") {
            let keys = keys.as_table().ok_or("tui.keys must be a table")?;
            for (name, value) in keys {
                let action = KeyAction::from_name(name).ok_or_else(|| {
                    format!(
                        "unknown action tui.keys.{name} (known: {})",
                        KeyAction::ALL.map(KeyAction::name).join(", ")
                    )
                })?;
                let list: Vec<&str> = match value {
                    toml::Value::String(s) => vec![s.as_str()],
                    toml::Value::Array(items) => items
                        .iter()
                        .map(|v| v.as_str().ok_or("keys must be strings"))
                        .collect::<Result<_, _>>()?,
                    _ => return Err(format!("tui.keys.{name} must be a key or a list of keys")),
                };
                let bindings = list
                    .into_iter()
                    .map(Binding::parse)
                    .collect::<Result<Vec<_>, _>>()?;
                settings.keys.set(action, bindings);
            }
            let problems = settings.keys.problems();
            if !problems.is_empty() {
                return Err(problems.join("; "));
            }
        }
        if let Some(colors) = tui.get("colors") {
            let colors = colors.as_table().ok_or("tui.colors must be a table")?;
            for (name, value) in colors {
                let role = Role::from_name(name).ok_or_else(|| {
                    format!(
                        "unknown colour role tui.colors.{name} (known: {})",
                        Role::ALL.map(Role::name).join(", ")
                    )
                })?;
                let text = value
                    .as_str()
                    .ok_or_else(|| format!("tui.colors.{name} must be a string"))?;
                let color: Color = text
                    .parse()
                    .map_err(|_| format!("tui.colors.{name}: unknown colour {text:?}"))?;
                settings.theme.set(role, color);
            }
        }
        Ok(settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::keys::Key;

    #[test]
    fn reads_keys_and_colors() {
        let s = Settings::from_toml(
            "[tui]\nkeys_preset = \"vim\"\n[tui.keys]\nupload = [\"ctrl-u\", \"u\"]\nhalf_page_up = []\n[tui.colors]\nnew = \"lightgreen\"\n",
            Theme::default(),
        )
        .unwrap();
        assert_eq!(
            s.keys.first(KeyAction::Upload),
            Some(&Binding(vec![Key::ctrl('u')]))
        );
        assert_eq!(s.theme.color(Role::New), Color::LightGreen);
        assert!(s.keys.keys(KeyAction::PageDown).len() > 1);
    }

    #[test]
    fn refuses_bad_settings() {
        for bad in [
            "[tui]\nfoo = 1\n",
            "[tui.keys]\nlaunch = [\"x\"]\n",
            "[tui.keys]\nupload = [\"q\"]\n",
            "[tui.colors]\nnew = \"ultraviolet\"\n",
        ] {
            assert!(Settings::from_toml(bad, Theme::default()).is_err(), "{bad}");
        }
    }
}
