//! Small formatting helpers shared by the panes.

use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

pub use crate::fmt::{count, duration, format_time, human_bytes, time_ns};

pub fn rate(bytes_per_sec: Option<f64>) -> String {
    match bytes_per_sec {
        Some(r) => format!("{}/s", human_bytes(r as u64)),
        None => "–".into(),
    }
}

/// `text` cut to `width` columns, with `…` when cut.
pub fn fit(text: &str, width: usize) -> String {
    if text.width() <= width {
        return text.to_string();
    }
    if width == 0 {
        return String::new();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let w = c.width().unwrap_or(0);
        if used + w > width - 1 {
            break;
        }
        out.push(c);
        used += w;
    }
    out.push('…');
    out
}

/// `text` cut from the left (keeps the end of a path).
pub fn fit_left(text: &str, width: usize) -> String {
    if text.width() <= width {
        return text.to_string();
    }
    if width == 0 {
        return String::new();
    }
    let mut kept: Vec<char> = Vec::new();
    let mut used = 0;
    for c in text.chars().rev() {
        let w = c.width().unwrap_or(0);
        if used + w > width - 1 {
            break;
        }
        kept.push(c);
        used += w;
    }
    let mut out = String::from("…");
    out.extend(kept.into_iter().rev());
    out
}

pub fn width(text: &str) -> usize {
    text.width()
}

/// A text gauge `█████░░░░░` of `cells` cells.
pub fn bar(ratio: f64, cells: usize) -> String {
    let full = ((ratio.clamp(0.0, 1.0) * cells as f64).round() as usize).min(cells);
    let mut s = "█".repeat(full);
    s.push_str(&"░".repeat(cells - full));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(fit("abcdef", 4), "abc…");
        assert_eq!(fit_left("abcdef", 4), "…def");
        assert_eq!(bar(0.5, 4), "██░░");
    }
}
