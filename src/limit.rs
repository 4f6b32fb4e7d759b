//! Bandwidth limits: how fast bytes may go to the store (`upload_limit`) and come
//! back from it (`download_limit`), as a constant rate or an rclone-style
//! timetable, and the shared rate limiter every transfer of a run draws from.
//!
//! - **What a limit says.** `"4 MiB/s"`, `"512KiB"`, `"off"`, or a timetable
//!   `"08:00,512KiB 19:00,4MiB 23:00,off"`: local time, the entry in force is the
//!   last one at or before now, wrapping past midnight (before 08:00 the 23:00
//!   entry holds). An entry may name a day (`Mon-08:00,1MiB`): entries without
//!   one hold every day. K, M and G are binary (KiB, MiB, GiB), as in rclone;
//!   a rate needs its unit.
//! - **One limiter per direction** ([`Limits`]), shared by every transfer of the
//!   run, whatever the store: S3 PutObject and UploadPart bodies, Glacier
//!   UploadArchive and UploadMultipartPart, the embedded store's writes; S3
//!   GetObject, Glacier job output and the embedded store's reads for restores
//!   and migrations.
//! - **Fair.** A transfer asks for its bytes a slice at a time (at most 256 KiB,
//!   or a quarter second's worth at the rate in force); slices are handed out in
//!   the order they were asked for (a FIFO turn), and a transfer asks for its
//!   next slice only after its last one, so every transfer in flight — a bundle
//!   of small files' PutObjects or one multipart part — gets an equal share.
//! - **Changes apply at once.** The rate is read again for every slice and at
//!   least every second while a slice waits: a timetable switch takes effect
//!   within a second, a change made for this run ([`Limiter::set_for_this_run`],
//!   the TUI's) at once.
//! - **The average is the limit.** Tokens accrue at the rate in force, up to
//!   half a second's worth (at least two slices, so a wait that oversleeps a
//!   little loses nothing): over any stretch of time T no more than
//!   rate × T + that much pass.
//!   A request body streams as its slices are granted ([`LimitedBody`]), so the
//!   line sees the limit, not bursts; Glacier's SDK reads a body whole before it
//!   signs it, so there the body is granted first and then sent at line speed
//!   (the average still holds; the peaks are a part's).
//! - **Not a slow store.** Waiting for the limiter is not the store being slow:
//!   uploads lower how many they keep in flight only on the store's throttling
//!   answers (counted by the AWS retry policy), never on time spent here.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// The smallest limit: below it nothing of any size finishes in reasonable time.
pub const MIN_RATE: u64 = KIB;

/// The most a transfer is granted at once.
const MAX_SLICE: u64 = 256 * KIB;

/// How long a waiting slice goes without reading the rate again.
const RECHECK: Duration = Duration::from_secs(1);

/// What a limit may be written as, for error messages.
pub const EXAMPLES: &str = "write a rate such as \"4 MiB/s\" or \"512KiB\", \"off\" for none, or a timetable such as \"08:00,512KiB 19:00,4MiB 23:00,off\"";

const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// A rate: bytes per second, or no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Rate {
    #[default]
    Off,
    PerSecond(u64),
}

impl Rate {
    pub fn bytes_per_sec(self) -> Option<u64> {
        match self {
            Rate::Off => None,
            Rate::PerSecond(n) => Some(n),
        }
    }

    /// Parses `4 MiB/s`, `512KiB`, `1.5M`, `off` (case-insensitive). The error
    /// names what is wrong with `text`.
    pub fn parse(text: &str) -> Result<Rate, String> {
        let trimmed = text.trim();
        if trimmed.eq_ignore_ascii_case("off") {
            return Ok(Rate::Off);
        }
        if trimmed.contains(':') {
            return Err(format!(
                "{trimmed:?}: firn takes the upload and download limits apart (upload_limit, download_limit; --upload-limit, --download-limit)"
            ));
        }
        let lower = trimmed.to_ascii_lowercase();
        let unit_text = lower.strip_suffix("/s").unwrap_or(&lower);
        let split = unit_text
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(unit_text.len());
        let (number, unit) = unit_text.split_at(split);
        let not_a_rate = || format!("{trimmed:?} is not a rate");
        if number.is_empty() {
            return Err(not_a_rate());
        }
        let value: f64 = number.parse().map_err(|_| not_a_rate())?;
        let scale = match unit.trim() {
            "b" => 1,
            "k" | "kb" | "kib" => KIB,
            "m" | "mb" | "mib" => MIB,
            "g" | "gb" | "gib" => GIB,
            "" if value == 0.0 => 0,
            "" => {
                return Err(format!(
                    "{trimmed:?} has no unit (B, KiB, MiB or GiB per second)"
                ));
            }
            _ => return Err(not_a_rate()),
        };
        let bytes = (value * scale as f64).round();
        if bytes == 0.0 {
            return Err(format!(
                "{trimmed:?} would stop every transfer; write \"off\" for no limit"
            ));
        }
        if bytes < MIN_RATE as f64 {
            return Err(format!("{trimmed:?} is below 1 KiB/s, the smallest limit"));
        }
        if !bytes.is_finite() || bytes > u64::MAX as f64 / 2.0 {
            return Err(not_a_rate());
        }
        Ok(Rate::PerSecond(bytes as u64))
    }

    /// The rate as a timetable writes it: `4MiB`, `1536KiB`, `off`.
    pub fn token(self) -> String {
        match self {
            Rate::Off => "off".into(),
            Rate::PerSecond(n) => {
                let (value, unit) = exact_unit(n);
                format!("{value}{unit}")
            }
        }
    }

    /// How much one grant hands out at this rate: a quarter second's worth, at
    /// most [`MAX_SLICE`].
    fn slice(bytes_per_sec: u64) -> u64 {
        (bytes_per_sec / 4).clamp(256, MAX_SLICE)
    }

    /// The most tokens held at this rate: what may pass at once beyond the
    /// rate (half a second's worth, at least two slices).
    pub fn burst(bytes_per_sec: u64) -> u64 {
        (bytes_per_sec / 2).max(2 * Rate::slice(bytes_per_sec))
    }
}

/// The largest unit `n` is a whole number of.
fn exact_unit(n: u64) -> (u64, &'static str) {
    for (scale, unit) in [(GIB, "GiB"), (MIB, "MiB"), (KIB, "KiB")] {
        if n >= scale && n.is_multiple_of(scale) {
            return (n / scale, unit);
        }
    }
    (n, "B")
}

/// `4 MiB/s`, `off`.
impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rate::Off => f.write_str("off"),
            Rate::PerSecond(n) => {
                let (value, unit) = exact_unit(*n);
                write!(f, "{value} {unit}/s")
            }
        }
    }
}

/// A moment of the local week, to the second: what a timetable is read at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct LocalTime {
    /// Seconds since Monday 00:00, local time.
    pub second_of_week: u32,
}

const WEEK: u32 = 7 * 86_400;

impl LocalTime {
    /// `weekday` 0 is Monday.
    pub fn new(weekday: u32, hour: u32, minute: u32, second: u32) -> LocalTime {
        LocalTime {
            second_of_week: (weekday % 7) * 86_400 + hour * 3600 + minute * 60 + second,
        }
    }

    /// Now on this machine's clock, in its time zone (`TZ` included).
    pub fn now() -> LocalTime {
        let secs = crate::model::now_secs();
        #[cfg(unix)]
        {
            let time = secs as libc::time_t;
            // SAFETY: localtime_r only writes the tm it is given.
            let mut tm: libc::tm = unsafe { std::mem::zeroed() };
            if !unsafe { libc::localtime_r(&time, &mut tm) }.is_null() {
                // tm_wday: 0 is Sunday.
                let weekday = (tm.tm_wday as u32 + 6) % 7;
                return LocalTime::new(
                    weekday,
                    tm.tm_hour as u32,
                    tm.tm_min as u32,
                    (tm.tm_sec as u32).min(59),
                );
            }
        }
        // UTC: 1970-01-01 was a Thursday.
        let days = secs.div_euclid(86_400);
        let weekday = (days + 3).rem_euclid(7) as u32;
        LocalTime {
            second_of_week: weekday * 86_400 + secs.rem_euclid(86_400) as u32,
        }
    }

    pub fn weekday(self) -> u32 {
        self.second_of_week / 86_400
    }

    /// `19:00`.
    pub fn clock(self) -> String {
        let of_day = self.second_of_week % 86_400;
        format!("{:02}:{:02}", of_day / 3600, of_day % 3600 / 60)
    }
}

/// One entry of a timetable: from this time on (every day, or one day of the
/// week), this rate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// 0 is Monday; None: every day.
    pub day: Option<u32>,
    /// Minutes since midnight.
    pub minute: u32,
    pub rate: Rate,
}

impl Entry {
    /// When this entry starts in the week (each day's, for an entry of every day).
    fn starts(&self) -> Vec<u32> {
        let days: Vec<u32> = match self.day {
            Some(day) => vec![day],
            None => (0..7).collect(),
        };
        days.into_iter()
            .map(|d| d * 86_400 + self.minute * 60)
            .collect()
    }
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(day) = self.day {
            write!(f, "{}-", DAYS[day as usize % 7])?;
        }
        write!(
            f,
            "{:02}:{:02},{}",
            self.minute / 60,
            self.minute % 60,
            self.rate.token()
        )
    }
}

/// A limit as configured: one rate always, or a timetable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    Constant(Rate),
    Timetable(Vec<Entry>),
}

impl Default for Schedule {
    fn default() -> Schedule {
        Schedule::Constant(Rate::Off)
    }
}

/// The rate a schedule holds at one moment, and until when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InForce {
    pub rate: Rate,
    /// When the rate changes next (None: never).
    pub until: Option<LocalTime>,
    /// Seconds from the moment asked about to that change.
    pub secs_to_change: Option<u32>,
}

impl Schedule {
    /// Parses a limit (see the module docs). The error names the token that is
    /// wrong and shows what may be written instead.
    pub fn parse(text: &str) -> Result<Schedule, String> {
        Self::parse_bare(text).map_err(|problem| format!("{problem}; {EXAMPLES}"))
    }

    fn parse_bare(text: &str) -> Result<Schedule, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("the limit is empty".into());
        }
        if !text.contains(',') {
            if text.split_whitespace().any(|t| parse_time(t).is_ok()) {
                return Err(format!(
                    "{text:?}: each entry of a timetable is a time, a comma and a rate (\"19:00,4MiB\")"
                ));
            }
            return Rate::parse(text).map(Schedule::Constant);
        }
        let mut entries: Vec<Entry> = Vec::new();
        for token in text.split_whitespace() {
            let Some((when, rate)) = token.split_once(',') else {
                return Err(format!(
                    "{token:?} in the timetable needs a rate after a comma (\"19:00,4MiB\")"
                ));
            };
            let (day, minute) = parse_time(when)?;
            let rate = Rate::parse(rate)?;
            let entry = Entry { day, minute, rate };
            if entries
                .iter()
                .any(|e| e.day == entry.day && e.minute == entry.minute)
            {
                return Err(format!("{when:?} appears twice in the timetable"));
            }
            entries.push(entry);
        }
        entries.sort_by_key(|e| (e.day.map_or(0, |d| d + 1), e.minute));
        Ok(Schedule::Timetable(entries))
    }

    /// Whether this schedule never limits anything.
    pub fn is_off(&self) -> bool {
        match self {
            Schedule::Constant(rate) => *rate == Rate::Off,
            Schedule::Timetable(entries) => entries.iter().all(|e| e.rate == Rate::Off),
        }
    }

    /// The rate in force at `now`, and when it changes.
    pub fn at(&self, now: LocalTime) -> InForce {
        let entries = match self {
            Schedule::Constant(rate) => {
                return InForce {
                    rate: *rate,
                    until: None,
                    secs_to_change: None,
                };
            }
            Schedule::Timetable(entries) => entries,
        };
        // Every start in the week; an entry for one day wins over an entry for
        // every day at the same moment.
        let mut starts: Vec<(u32, bool, Rate)> = entries
            .iter()
            .flat_map(|e| {
                e.starts()
                    .into_iter()
                    .map(move |s| (s, e.day.is_some(), e.rate))
            })
            .collect();
        starts.sort_by_key(|&(s, specific, _)| (s, specific));
        starts.dedup_by(|later, earlier| {
            // Same moment: keep the specific one (sorted after).
            if later.0 == earlier.0 {
                *earlier = *later;
                true
            } else {
                false
            }
        });
        let Some(&last) = starts.last() else {
            return InForce {
                rate: Rate::Off,
                until: None,
                secs_to_change: None,
            };
        };
        let now_s = now.second_of_week % WEEK;
        // The last start at or before now, else (wrapping) the week's last.
        let index = starts
            .iter()
            .rposition(|&(s, _, _)| s <= now_s)
            .unwrap_or(starts.len() - 1);
        let rate = starts.get(index).unwrap_or(&last).2;
        // The next start with another rate, within a week.
        let n = starts.len();
        let change = (1..=n)
            .map(|k| starts[(index + k) % n])
            .find(|&(_, _, r)| r != rate)
            .map(|(s, _, _)| s);
        let (until, secs_to_change) = match change {
            Some(s) => (
                Some(LocalTime { second_of_week: s }),
                Some((s + WEEK - now_s) % WEEK).map(|d| if d == 0 { WEEK } else { d }),
            ),
            None => (None, None),
        };
        InForce {
            rate,
            until,
            secs_to_change,
        }
    }
}

/// `08:00` or `Mon-08:00` → (day, minute of the day).
fn parse_time(text: &str) -> Result<(Option<u32>, u32), String> {
    let (day, clock) = match text.split_once('-') {
        Some((day, clock)) => {
            let index = DAYS
                .iter()
                .position(|d| d.eq_ignore_ascii_case(day))
                .ok_or_else(|| {
                    format!("{day:?} is not a day (Mon, Tue, Wed, Thu, Fri, Sat or Sun)")
                })?;
            (Some(index as u32), clock)
        }
        None => (None, text),
    };
    let bad = || format!("{text:?} is not a time of day (HH:MM, 00:00 to 23:59)");
    let (h, m) = clock.split_once(':').ok_or_else(bad)?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return Err(bad());
    }
    let hour: u32 = h.parse().map_err(|_| bad())?;
    let minute: u32 = m.parse().map_err(|_| bad())?;
    if hour > 23 || minute > 59 {
        return Err(bad());
    }
    Ok((day, hour * 60 + minute))
}

/// `4 MiB/s`, or the timetable's entries as written back.
impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Schedule::Constant(rate) => write!(f, "{rate}"),
            Schedule::Timetable(entries) => {
                let texts: Vec<String> = entries.iter().map(Entry::to_string).collect();
                f.write_str(&texts.join(" "))
            }
        }
    }
}

impl FromStr for Schedule {
    type Err = String;
    fn from_str(text: &str) -> Result<Schedule, String> {
        Schedule::parse(text)
    }
}

/// Where a limiter reads the local time (tests inject their own).
pub type Clock = Arc<dyn Fn() -> LocalTime + Send + Sync>;

/// What a limiter holds now: the rate, until when, and whether it was set for
/// this run rather than configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitNow {
    pub rate: Rate,
    pub until: Option<LocalTime>,
    pub secs_to_change: Option<u32>,
    pub for_this_run: bool,
}

impl LimitNow {
    /// `4 MiB/s until 19:00`, `off`, `512 KiB/s until Mon 08:00 (this run)`.
    pub fn describe(&self, now: LocalTime) -> String {
        let mut text = self.rate.to_string();
        if let Some(until) = self.until {
            text.push_str(" until ");
            // Within a day: the clock says enough.
            if self
                .secs_to_change
                .is_some_and(|s| s >= 86_400 - now.second_of_week % 86_400)
            {
                text.push_str(DAYS[until.weekday() as usize % 7]);
                text.push(' ');
            }
            text.push_str(&until.clock());
        }
        if self.for_this_run {
            text.push_str(" (this run)");
        }
        text
    }
}

/// A token bucket whose rate follows a schedule, shared by every transfer in
/// one direction (see the module docs).
pub struct Limiter {
    bucket: Mutex<Bucket>,
    /// Whose slice is next: a fair (FIFO) lock, held while one slice waits.
    turn: tokio::sync::Mutex<()>,
    /// Woken when the schedule changes, so a waiting slice reads it again.
    changed: tokio::sync::Notify,
    clock: Clock,
}

struct Bucket {
    configured: Schedule,
    for_this_run: Option<Schedule>,
    tokens: f64,
    refilled: Instant,
    /// Bytes granted since the limiter was made.
    granted: u64,
}

impl Bucket {
    fn schedule(&self) -> &Schedule {
        self.for_this_run.as_ref().unwrap_or(&self.configured)
    }

    /// Adds what accrued since the last refill at `rate`, up to its burst (a
    /// lower rate's burst at once, when the rate has just fallen).
    fn refill(&mut self, rate: Rate) {
        let now = Instant::now();
        match rate {
            Rate::Off => self.tokens = 0.0,
            Rate::PerSecond(r) => {
                let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
                self.tokens = (self.tokens + elapsed * r as f64).min(Rate::burst(r) as f64);
            }
        }
        self.refilled = now;
    }
}

impl fmt::Debug for Limiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bucket = self.lock();
        f.debug_struct("Limiter")
            .field("configured", &bucket.configured)
            .field("for_this_run", &bucket.for_this_run)
            .finish()
    }
}

impl Limiter {
    /// A limiter following `schedule` on this machine's local time.
    pub fn new(schedule: Schedule) -> Arc<Limiter> {
        Limiter::with_clock(schedule, Arc::new(LocalTime::now))
    }

    /// A limiter that reads the local time from `clock`.
    pub fn with_clock(schedule: Schedule, clock: Clock) -> Arc<Limiter> {
        Arc::new(Limiter {
            bucket: Mutex::new(Bucket {
                configured: schedule,
                for_this_run: None,
                tokens: 0.0,
                refilled: Instant::now(),
                granted: 0,
            }),
            turn: tokio::sync::Mutex::new(()),
            changed: tokio::sync::Notify::new(),
            clock,
        })
    }

    /// A limiter that never limits (until a limit is set for the run).
    pub fn unlimited() -> Arc<Limiter> {
        Limiter::new(Schedule::default())
    }

    fn lock(&self) -> MutexGuard<'_, Bucket> {
        self.bucket
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The local time as this limiter reads it.
    pub fn local_time(&self) -> LocalTime {
        (self.clock)()
    }

    /// The rate in force now, and until when.
    pub fn now(&self) -> LimitNow {
        let bucket = self.lock();
        let in_force = bucket.schedule().at(self.local_time());
        LimitNow {
            rate: in_force.rate,
            until: in_force.until,
            secs_to_change: in_force.secs_to_change,
            for_this_run: bucket.for_this_run.is_some(),
        }
    }

    /// The schedule in force: the one set for this run, else the configured one.
    pub fn schedule(&self) -> Schedule {
        self.lock().schedule().clone()
    }

    pub fn configured(&self) -> Schedule {
        self.lock().configured.clone()
    }

    /// Replaces the schedule for the rest of this run (None: back to the
    /// configured one). Slices waiting now read it at once.
    pub fn set_for_this_run(&self, schedule: Option<Schedule>) {
        {
            let mut bucket = self.lock();
            // What accrued so far accrued at the old rate.
            let old = bucket.schedule().at(self.local_time()).rate;
            bucket.refill(old);
            bucket.for_this_run = schedule;
        }
        self.changed.notify_waiters();
    }

    /// Whether anything may be limited (a transfer that starts now while this
    /// is false may go unthrottled whole).
    pub fn may_limit(&self) -> bool {
        !self.lock().schedule().is_off()
    }

    /// Bytes granted so far.
    pub fn granted(&self) -> u64 {
        self.lock().granted
    }

    /// Waits for this transfer's turn and for tokens, and grants up to `want`
    /// bytes (at least 1 when `want` is): a slice under a limit, all of it
    /// without one.
    pub async fn grant(&self, want: u64) -> u64 {
        if want == 0 {
            return 0;
        }
        if self.now().rate == Rate::Off {
            self.lock().granted += want;
            return want;
        }
        let _turn = self.turn.lock().await;
        loop {
            // Registered before the rate is read, so a change made meanwhile wakes it.
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let wait = {
                let mut bucket = self.lock();
                let rate = bucket.schedule().at(self.local_time()).rate;
                bucket.refill(rate);
                match rate {
                    Rate::Off => {
                        bucket.granted += want;
                        return want;
                    }
                    Rate::PerSecond(r) => {
                        let slice = want.min(Rate::slice(r));
                        if bucket.tokens >= slice as f64 {
                            bucket.tokens -= slice as f64;
                            bucket.granted += slice;
                            return slice;
                        }
                        let missing = slice as f64 - bucket.tokens;
                        Duration::from_secs_f64(missing / r as f64).min(RECHECK)
                    }
                }
            };
            tokio::select! {
                () = tokio::time::sleep(wait.max(Duration::from_millis(1))) => {}
                () = &mut changed => {}
            }
        }
    }

    /// Waits until `bytes` are granted, slice by slice.
    pub async fn take(&self, bytes: u64) {
        let mut left = bytes;
        while left > 0 {
            left -= self.grant(left).await.min(left);
        }
    }
}

/// The limiter of each direction of one run.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Bytes to the store.
    pub up: Arc<Limiter>,
    /// Bytes from the store (restores, migrations' retrievals).
    pub down: Arc<Limiter>,
}

impl Limits {
    pub fn new(upload: Schedule, download: Schedule) -> Limits {
        Limits {
            up: Limiter::new(upload),
            down: Limiter::new(download),
        }
    }

    /// Nothing limited.
    pub fn none() -> Limits {
        Limits::new(Schedule::default(), Schedule::default())
    }
}

impl Default for Limits {
    fn default() -> Limits {
        Limits::none()
    }
}

/// A request body that sends its bytes as the limiter grants them: the slices
/// stream out as they come, so the line carries the limit rather than bursts.
pub struct LimitedBody {
    data: Bytes,
    limiter: Arc<Limiter>,
    /// The grant being waited for (in a mutex only so the body is Sync, as the
    /// SDK's bodies must be; polling takes it without locking).
    waiting: Mutex<Option<Grant>>,
}

type Grant = Pin<Box<dyn Future<Output = u64> + Send>>;

impl LimitedBody {
    pub fn new(data: Bytes, limiter: Arc<Limiter>) -> LimitedBody {
        LimitedBody {
            data,
            limiter,
            waiting: Mutex::new(None),
        }
    }
}

impl http_body::Body for LimitedBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        let LimitedBody {
            data,
            limiter,
            waiting,
        } = self.get_mut();
        if data.is_empty() {
            return Poll::Ready(None);
        }
        let waiting = waiting
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let grant = waiting.get_or_insert_with(|| {
            let limiter = Arc::clone(limiter);
            let want = data.len() as u64;
            Box::pin(async move { limiter.grant(want).await })
        });
        match grant.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(granted) => {
                *waiting = None;
                let n = (granted as usize).clamp(1, data.len());
                Poll::Ready(Some(Ok(http_body::Frame::data(data.split_to(n)))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_empty()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.data.len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(text: &str) -> Rate {
        Rate::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn schedule(text: &str) -> Schedule {
        Schedule::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn rates_parse_with_their_units() {
        assert_eq!(rate("4 MiB/s"), Rate::PerSecond(4 * MIB));
        assert_eq!(rate("4MiB/s"), Rate::PerSecond(4 * MIB));
        assert_eq!(rate("512KiB"), Rate::PerSecond(512 * KIB));
        assert_eq!(rate("512k"), Rate::PerSecond(512 * KIB));
        assert_eq!(rate("1.5M"), Rate::PerSecond(3 * MIB / 2));
        assert_eq!(rate("2 GB/s"), Rate::PerSecond(2 * GIB));
        assert_eq!(rate("4096B"), Rate::PerSecond(4096));
        assert_eq!(rate("OFF"), Rate::Off);
        assert_eq!(rate("off"), Rate::Off);
    }

    #[test]
    fn bad_rates_say_what_is_wrong() {
        for (text, says) in [
            ("4", "has no unit"),
            ("4 Mbps", "is not a rate"),
            ("fast", "is not a rate"),
            ("0", "write \"off\""),
            ("0KiB", "write \"off\""),
            ("100B", "below 1 KiB/s"),
            ("1M:10M", "apart"),
            ("1.2.3M", "is not a rate"),
        ] {
            let error = Rate::parse(text).expect_err(text);
            assert!(error.contains(says), "{text}: {error}");
        }
    }

    #[test]
    fn display_reads_back() {
        for text in ["4 MiB/s", "1536 KiB/s", "off", "3 GiB/s", "1500 B/s"] {
            assert_eq!(rate(text).to_string(), text);
            assert_eq!(rate(&rate(text).token()), rate(text));
        }
        let table = schedule("19:00,4MiB  08:00,512k 23:00,off Sat-10:00,1M");
        assert_eq!(
            table.to_string(),
            "08:00,512KiB 19:00,4MiB 23:00,off Sat-10:00,1MiB"
        );
        assert_eq!(schedule(&table.to_string()), table);
        assert_eq!(schedule("4 MiB/s").to_string(), "4 MiB/s");
    }

    #[test]
    fn timetable_entry_in_force_is_the_last_at_or_before_now() {
        let table = schedule("08:00,512KiB 19:00,4MiB 23:00,off");
        let at = |h, m| table.at(LocalTime::new(2, h, m, 0));
        assert_eq!(at(8, 0).rate, rate("512KiB"));
        assert_eq!(at(12, 30).rate, rate("512KiB"));
        assert_eq!(at(19, 0).rate, rate("4MiB"));
        assert_eq!(at(22, 59).rate, rate("4MiB"));
        assert_eq!(at(23, 0).rate, Rate::Off);
        // Past midnight, before the first entry: the last one still holds.
        assert_eq!(at(0, 0).rate, Rate::Off);
        assert_eq!(at(7, 59).rate, Rate::Off);
        // Until when.
        let now = at(12, 30);
        assert_eq!(now.until.map(LocalTime::clock).as_deref(), Some("19:00"));
        assert_eq!(now.secs_to_change, Some(6 * 3600 + 30 * 60));
        let night = at(23, 30);
        assert_eq!(night.until.map(LocalTime::clock).as_deref(), Some("08:00"));
        assert_eq!(night.secs_to_change, Some(8 * 3600 + 30 * 60));
    }

    #[test]
    fn a_single_entry_holds_all_day_and_week_wraps() {
        let table = schedule("08:00,1MiB");
        let now = table.at(LocalTime::new(0, 3, 0, 0));
        assert_eq!(now.rate, rate("1MiB"));
        assert_eq!(now.until, None);
        // Monday before 08:00 takes Sunday's last entry.
        let weekly = schedule("Mon-08:00,1MiB Fri-18:00,off");
        assert_eq!(weekly.at(LocalTime::new(0, 7, 0, 0)).rate, Rate::Off);
        assert_eq!(weekly.at(LocalTime::new(2, 7, 0, 0)).rate, rate("1MiB"));
        assert_eq!(weekly.at(LocalTime::new(5, 7, 0, 0)).rate, Rate::Off);
        let sunday = weekly.at(LocalTime::new(6, 12, 0, 0));
        assert_eq!(sunday.until, Some(LocalTime::new(0, 8, 0, 0)));
        // A day's own entry wins over an every-day entry at the same time.
        let mixed = schedule("09:00,1MiB Sat-09:00,off");
        assert_eq!(mixed.at(LocalTime::new(5, 10, 0, 0)).rate, Rate::Off);
        assert_eq!(mixed.at(LocalTime::new(4, 10, 0, 0)).rate, rate("1MiB"));
    }

    #[test]
    fn bad_timetables_name_the_token_and_show_an_example() {
        for (text, token) in [
            ("08:00,512KiB 19:00", "\"19:00\""),
            ("08:00,512KiB 25:00,1M", "\"25:00\""),
            ("08:00,512KiB 19:00,4Mx", "\"4Mx\""),
            ("Mox-08:00,1M", "\"Mox\""),
            ("08:00,1M 08:00,2M", "\"08:00\" appears twice"),
            ("8:0,1M", "\"8:0\""),
            ("19:00", "\"19:00\""),
            ("", "empty"),
        ] {
            let error = Schedule::parse(text).expect_err(text);
            assert!(error.contains(token), "{text}: {error}");
            assert!(
                error.contains("08:00,512KiB 19:00,4MiB 23:00,off"),
                "{error}"
            );
        }
    }

    #[test]
    fn describes_the_limit_in_force() {
        let table = schedule("08:00,512KiB 19:00,4MiB 23:00,off");
        let limiter = Limiter::with_clock(table, Arc::new(|| LocalTime::new(1, 12, 0, 0)));
        let now = limiter.now();
        assert_eq!(now.describe(limiter.local_time()), "512 KiB/s until 19:00");
        limiter.set_for_this_run(Some(schedule("1MiB")));
        assert_eq!(
            limiter.now().describe(limiter.local_time()),
            "1 MiB/s (this run)"
        );
        limiter.set_for_this_run(None);
        assert!(!limiter.now().for_this_run);
        let weekly = Limiter::with_clock(
            schedule("Mon-08:00,1MiB Fri-18:00,off"),
            Arc::new(|| LocalTime::new(2, 12, 0, 0)),
        );
        assert_eq!(
            weekly.now().describe(weekly.local_time()),
            "1 MiB/s until Fri 18:00"
        );
    }

    /// Grants `total` bytes to `users` concurrent takers; returns each one's
    /// bytes granted by the time the first finished, and the time taken.
    async fn share(limiter: Arc<Limiter>, users: usize, each: u64) -> (Vec<u64>, Duration) {
        let started = Instant::now();
        let counts: Arc<Vec<std::sync::atomic::AtomicU64>> =
            Arc::new((0..users).map(|_| Default::default()).collect());
        let mut tasks = tokio::task::JoinSet::new();
        for user in 0..users {
            let (limiter, counts) = (Arc::clone(&limiter), Arc::clone(&counts));
            tasks.spawn(async move {
                let mut left = each;
                while left > 0 {
                    let n = limiter.grant(left).await;
                    left -= n;
                    counts[user].fetch_add(n, std::sync::atomic::Ordering::SeqCst);
                }
            });
        }
        tasks.join_next().await;
        let at_first = counts
            .iter()
            .map(|c| c.load(std::sync::atomic::Ordering::SeqCst))
            .collect();
        while tasks.join_next().await.is_some() {}
        (at_first, started.elapsed())
    }

    #[tokio::test(start_paused = true)]
    async fn the_rate_is_kept_and_shared_fairly() {
        let limiter =
            Limiter::with_clock(schedule("1 MiB/s"), Arc::new(|| LocalTime::new(0, 0, 0, 0)));
        // 4 users × 2 MiB at 1 MiB/s: 8 s, each getting a quarter meanwhile.
        let (at_first, took) = share(Arc::clone(&limiter), 4, 2 * MIB).await;
        assert!(took >= Duration::from_secs_f64(7.9), "{took:?}");
        assert!(took <= Duration::from_secs_f64(8.5), "{took:?}");
        for n in &at_first {
            // When the first finished, each other had all but a slice or two.
            assert!(*n + 2 * Rate::slice(MIB) >= 2 * MIB, "{at_first:?}");
        }
        assert_eq!(limiter.granted(), 8 * MIB);
    }

    #[tokio::test(start_paused = true)]
    async fn a_timetable_switch_applies_within_two_seconds() {
        // The local time runs with tokio's (paused) clock: 18:59:55 at start.
        let start = Instant::now();
        let clock: Clock = Arc::new(move || {
            let s = start.elapsed().as_secs() as u32;
            LocalTime {
                second_of_week: LocalTime::new(0, 18, 59, 55).second_of_week + s,
            }
        });
        let limiter = Limiter::with_clock(schedule("08:00,64KiB 19:00,4MiB"), clock);
        let taker = {
            let limiter = Arc::clone(&limiter);
            tokio::spawn(async move { limiter.take(64 * MIB).await })
        };
        // Granted by the seconds after start: 64 KiB/s until 5 s.
        let mut samples = Vec::new();
        for _ in 0..10 {
            tokio::time::sleep(Duration::from_secs(1)).await;
            samples.push(limiter.granted());
        }
        taker.abort();
        assert!(
            samples[3] <= 4 * 64 * KIB + Rate::burst(64 * KIB),
            "{samples:?}"
        );
        // From 5 s to 7 s the new rate holds for at least one whole second.
        let after = samples[6] - samples[4];
        assert!(after >= 4 * MIB, "{samples:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_change_for_this_run_wakes_waiting_slices_at_once() {
        let limiter =
            Limiter::with_clock(schedule("1KiB"), Arc::new(|| LocalTime::new(0, 0, 0, 0)));
        let taker = {
            let limiter = Arc::clone(&limiter);
            tokio::spawn(async move { limiter.take(MIB).await })
        };
        tokio::time::sleep(Duration::from_millis(500)).await;
        let before = limiter.granted();
        assert!(before < 2 * KIB, "{before}");
        limiter.set_for_this_run(Some(Schedule::Constant(Rate::Off)));
        tokio::time::timeout(Duration::from_millis(10), taker)
            .await
            .expect("taken at once after the limit went off")
            .expect("taker");
        assert!(!limiter.may_limit());
    }

    #[tokio::test]
    async fn a_limited_body_streams_its_bytes_in_slices() {
        use http_body_util::BodyExt;
        let limiter =
            Limiter::with_clock(schedule("8 MiB/s"), Arc::new(|| LocalTime::new(0, 0, 0, 0)));
        let data = Bytes::from(vec![7u8; (MIB + 3) as usize]);
        let mut body = LimitedBody::new(data.clone(), Arc::clone(&limiter));
        assert_eq!(http_body::Body::size_hint(&body).exact(), Some(MIB + 3));
        let mut got = Vec::new();
        let mut frames = 0;
        while let Some(frame) = body.frame().await {
            let frame = frame.expect("infallible");
            let chunk = frame.into_data().expect("data");
            assert!(chunk.len() as u64 <= MAX_SLICE);
            got.extend_from_slice(&chunk);
            frames += 1;
        }
        assert_eq!(got, data);
        assert!(frames >= 5, "{frames}");
        assert_eq!(limiter.granted(), MIB + 3);
    }
}
