//! Words and numbers as people read them, shared by both front ends: sizes,
//! counts, plurals, durations, local dates and times, one-line errors.

/// `1 file`, `2 files`, `20,000 files`.
pub fn plural(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{} {noun}s", count(n))
    }
}

/// `1 upload is`, `2 uploads are` (with the verb that agrees).
pub fn plural_with(n: u64, noun: &str, singular_verb: &str, plural_verb: &str) -> String {
    let verb = if n == 1 { singular_verb } else { plural_verb };
    format!("{} {verb}", plural(n, noun))
}

pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Unix seconds as `YYYY-MM-DD HH:MM` in local time (the time zone of the
/// machine, `TZ` included), as people read times everywhere else.
pub fn format_time(secs: i64) -> String {
    let (y, m, d, hour, minute) = local_civil(secs);
    format!("{y:04}-{m:02}-{d:02} {hour:02}:{minute:02}")
}

/// Year, month, day, hour and minute of `secs` in local time; UTC when the C
/// library cannot say.
fn local_civil(secs: i64) -> (i64, i64, i64, i64, i64) {
    #[cfg(unix)]
    {
        let time = secs as libc::time_t;
        // SAFETY: localtime_r only writes the tm it is given.
        let mut tm: libc::tm = unsafe { std::mem::zeroed() };
        if !unsafe { libc::localtime_r(&time, &mut tm) }.is_null() {
            return (
                i64::from(tm.tm_year) + 1900,
                i64::from(tm.tm_mon) + 1,
                i64::from(tm.tm_mday),
                i64::from(tm.tm_hour),
                i64::from(tm.tm_min),
            );
        }
    }
    utc_civil(secs)
}

/// Unix seconds as `YYYYMMDDTHHMMSSZ` (UTC, sorts as text), for names.
pub fn format_time_utc_compact(secs: i64) -> String {
    let (y, m, d, hour, minute) = utc_civil(secs);
    format!(
        "{y:04}{m:02}{d:02}T{hour:02}{minute:02}{:02}Z",
        secs.rem_euclid(60)
    )
}

fn utc_civil(secs: i64) -> (i64, i64, i64, i64, i64) {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Inverse of days_from_civil (Howard Hinnant).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d, rem / 3600, rem % 3600 / 60)
}

/// `1234567` → `1,234,567`.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Nanoseconds since the epoch as `YYYY-MM-DD HH:MM` local time.
pub fn time_ns(ns: i64) -> String {
    format_time(ns.div_euclid(1_000_000_000))
}

/// Seconds as `42s`, `3m12s`, `2h05m`, `3d04h`.
pub fn duration(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{:02}s", s / 60, s % 60),
        s if s < 86_400 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        s => format!("{}d{:02}h", s / 86_400, s % 86_400 / 3600),
    }
}

/// Unix seconds as RFC 3339 in UTC: `2025-01-31T03:00:00Z` (scripts' dates).
pub fn format_time_rfc3339(secs: i64) -> String {
    let (y, m, d, hour, minute) = utc_civil(secs);
    format!(
        "{y:04}-{m:02}-{d:02}T{hour:02}:{minute:02}:{:02}Z",
        secs.rem_euclid(60)
    )
}

/// How long ago, roughly, as people say it: `40 s`, `12 min`, `26 h`,
/// `9 days` (hours up to three days, so a nightly run reads in hours).
pub fn age(secs: i64) -> String {
    match secs.max(0) {
        s if s < 90 => format!("{s} s"),
        s if s < 90 * 60 => format!("{} min", (s + 30) / 60),
        s if s < 72 * 3600 => format!("{} h", (s + 1800) / 3600),
        s => format!("{} days", (s + 43_200) / 86_400),
    }
}

/// The whole error chain on one line, each cause once.
pub fn one_line(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
    }
    parts.join(": ").replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(count(12), "12");
        assert_eq!(duration(192), "3m12s");
        assert_eq!(plural(1, "file"), "1 file");
        assert_eq!(plural(2, "file"), "2 files");
        assert_eq!(plural(193_267, "upload"), "193,267 uploads");
        assert_eq!(plural_with(2, "upload", "is", "are"), "2 uploads are");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(utc_civil(0), (1970, 1, 1, 0, 0));
        assert_eq!(utc_civil(1_796_003_888), (2026, 11, 30, 1, 58));
        assert_eq!(format_time_rfc3339(1_796_003_888), "2026-11-30T01:58:08Z");
        assert_eq!(age(40), "40 s");
        assert_eq!(age(12 * 60 + 10), "12 min");
        assert_eq!(age(26 * 3600 + 100), "26 h");
        assert_eq!(age(9 * 86_400), "9 days");
    }
}
