//! Everything secret-exec writes to stderr: the `-v` events and the one final error line, as
//! text or as one JSON object per line (`--log-format json`). Callers pass names, ids, counts and
//! durations — there is deliberately no way to log a `SecretText` (it has no `Display`), and every
//! string goes through the terminal sanitiser. The AWS SDK's own `tracing` output is never
//! installed, so `RUST_LOG` and `LOG_SENSITIVE_BODIES` cannot make it print bodies.
//!
//! Levels: 1 (`-v`) what happens and how long it took; 2 (`-vv`) details — request ids, the
//! credential source, every HTTP attempt and retry; 3 (`-vvv`) the wire — each attempt's URL,
//! User-Agent, status and sizes, never a header that carries credentials and never a body. The
//! schema and the table are in docs/logging.md; tests/golden/log-json.txt pins them.

use crate::error::Error;
use crate::sanitize::one_line;
use std::fmt;
use std::io::Write;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The most `-v` means anything; more is refused as a usage error.
pub const MAX_LEVEL: u8 = 3;

static LEVEL: AtomicU8 = AtomicU8::new(0);
static JSON: AtomicU8 = AtomicU8::new(0);
static START: OnceLock<Instant> = OnceLock::new();

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

impl Format {
    /// `SECRET_EXEC_LOG_FORMAT`'s reading: any case, surrounding spaces ignored (values pasted
    /// into YAML or `.env` files carry them). `--log-format` takes any case too (clap's
    /// `ignore_case`), but not spaces: see [`Format::from_flag`].
    pub fn parse(text: &str) -> Option<Format> {
        match text.trim().to_ascii_lowercase().as_str() {
            "text" => Some(Format::Text),
            "json" => Some(Format::Json),
            _ => None,
        }
    }

    /// `--log-format`'s value as clap accepts it, so a usage error is written in the format
    /// the flag will have.
    fn from_flag(text: &str) -> Option<Format> {
        Format::parse(text).filter(|_| text.trim() == text)
    }
}

pub fn set_level(level: u8) {
    LEVEL.store(level, Ordering::Relaxed);
}

pub fn set_format(format: Format) {
    JSON.store(u8::from(format == Format::Json), Ordering::Relaxed);
}

fn json() -> bool {
    JSON.load(Ordering::Relaxed) == 1
}

pub fn enabled(level: u8) -> bool {
    LEVEL.load(Ordering::Relaxed) >= level
}

/// Marks the start of the run; `since_start` measures the total before exec from here.
pub fn start() {
    START.get_or_init(Instant::now);
}

pub fn since_start() -> Duration {
    START.get().map(Instant::elapsed).unwrap_or_default()
}

/// The fixed `event` vocabulary. New stages add a variant here (and to docs/logging.md), never a
/// free-form string, so log queries keep working across versions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// The region was decided, and where from.
    Region,
    /// Credentials were resolved (`-vv`: from which source).
    Credentials,
    /// One call to a source's API finished (a secret, or a batch of them).
    Fetch,
    /// A batch call was refused by IAM and its secrets are fetched one by one.
    Fallback,
    /// The primary region could not answer: secrets are read from `--failover-region`.
    Failover,
    /// One HTTP attempt, retries included (`-vv`), and its wire details (`-vvv`).
    Attempt,
    /// Values were mapped to variables.
    Map,
    /// An injected variable replaces an inherited one.
    Override,
    /// `--dry-run` finished; the total time before it would have exec'd.
    DryRun,
    /// About to exec the command; the total time spent before it.
    Exec,
    /// The resident parent of `--init`/`--watch`: COMMAND started, signalled, restarted, reaped.
    Supervise,
    /// `--watch` polling: a check, a change, a failed check.
    Watch,
    /// Something degraded but the run goes on (e.g. core dumps could not be disabled).
    Warning,
    /// The run failed; the final line, with `exit_code`.
    Error,
}

impl Event {
    pub fn as_str(self) -> &'static str {
        match self {
            Event::Region => "region",
            Event::Credentials => "credentials",
            Event::Fetch => "fetch",
            Event::Fallback => "fallback",
            Event::Failover => "failover",
            Event::Attempt => "attempt",
            Event::Map => "map",
            Event::Override => "override",
            Event::DryRun => "dry_run",
            Event::Exec => "exec",
            Event::Supervise => "supervise",
            Event::Watch => "watch",
            Event::Warning => "warning",
            Event::Error => "error",
        }
    }
}

/// One stderr line under construction. Fields hold names and ids only; the builder is cheap when
/// the level is off (nothing is formatted).
#[derive(Default)]
pub struct Line<'a> {
    on: bool,
    level: &'static str,
    event: Option<Event>,
    secret: Option<&'a str>,
    version_id: Option<&'a str>,
    stage: Option<&'a str>,
    region: Option<&'a str>,
    source: Option<&'a str>,
    call: Option<&'a str>,
    request_id: Option<&'a str>,
    attempt: Option<u32>,
    count: Option<usize>,
    duration: Option<Duration>,
    exit_code: Option<i32>,
}

/// A line for `event` shown from `-v` × `level`.
pub fn at(level: u8, event: Event) -> Line<'static> {
    Line {
        on: enabled(level),
        level: match level {
            0 => "warn",
            1 => "info",
            2 => "debug",
            _ => "trace",
        },
        event: Some(event),
        ..Line::default()
    }
}

impl<'a> Line<'a> {
    pub fn on(&self) -> bool {
        self.on
    }
    pub fn secret(self, v: &'a str) -> Line<'a> {
        Line {
            secret: Some(v),
            ..self
        }
    }
    pub fn version_id(self, v: Option<&'a str>) -> Line<'a> {
        Line {
            version_id: v,
            ..self
        }
    }
    pub fn stage(self, v: Option<&'a str>) -> Line<'a> {
        Line { stage: v, ..self }
    }
    pub fn region(self, v: &'a str) -> Line<'a> {
        Line {
            region: Some(v),
            ..self
        }
    }
    /// The backend: `secretsmanager`, `ssm`, `agent`…
    pub fn source(self, v: &'a str) -> Line<'a> {
        Line {
            source: Some(v),
            ..self
        }
    }
    /// The API action, e.g. `GetSecretValue`.
    pub fn call(self, v: &'a str) -> Line<'a> {
        Line {
            call: Some(v),
            ..self
        }
    }
    /// Shown from `-vv` only, whatever the line's own level.
    pub fn request_id(self, v: Option<&'a str>) -> Line<'a> {
        Line {
            request_id: v.filter(|_| enabled(2)),
            ..self
        }
    }
    pub fn attempt(self, n: u32) -> Line<'a> {
        Line {
            attempt: Some(n),
            ..self
        }
    }
    pub fn count(self, n: usize) -> Line<'a> {
        Line {
            count: Some(n),
            ..self
        }
    }
    pub fn took(self, d: Duration) -> Line<'a> {
        Line {
            duration: Some(d),
            ..self
        }
    }

    /// Writes the line with `message` if its level is on.
    pub fn say(self, message: fmt::Arguments) {
        if self.on {
            write_line(&self.render(&message.to_string(), now(), json()));
        }
    }

    fn render(&self, message: &str, ts: SystemTime, json: bool) -> String {
        let message = one_line(message);
        if !json {
            let mut s = format!("secret-exec: {message}");
            if let Some(d) = self.duration {
                s.push_str(&format!(" ({} ms)", millis(d)));
            }
            if let Some(id) = self.request_id {
                s.push_str(&format!(" [request id {}]", one_line(id)));
            }
            return s;
        }
        // Written field by field so the order is the documented one (ts, level, event first),
        // which serde_json's sorted map would not keep; values are escaped by serde_json.
        let mut o = String::with_capacity(256);
        let mut field = |k: &str, v: String| {
            o.push(if o.is_empty() { '{' } else { ',' });
            o.push_str(&format!("\"{k}\":{v}"));
        };
        let text = |v: &str| serde_json::Value::String(one_line(v)).to_string();
        field("ts", text(&rfc3339(ts)));
        field("level", text(self.level));
        field("event", text(self.event.map_or("", Event::as_str)));
        let strings = [
            ("secret", self.secret),
            ("version_id", self.version_id),
            ("stage", self.stage),
            ("region", self.region),
            ("source", self.source),
            ("call", self.call),
            ("request_id", self.request_id),
        ];
        for (k, v) in strings {
            if let Some(v) = v {
                field(k, text(v));
            }
        }
        if let Some(n) = self.attempt {
            field("attempt", n.to_string());
        }
        if let Some(n) = self.count {
            field("count", n.to_string());
        }
        if let Some(d) = self.duration {
            field(
                "duration_ms",
                serde_json::Value::from(millis(d)).to_string(),
            );
        }
        if let Some(c) = self.exit_code {
            field("exit_code", c.to_string());
        }
        field("message", text(&message));
        o.push('}');
        o
    }
}

/// Milliseconds with one decimal: sub-millisecond steps (mapping) still show as non-zero.
fn millis(d: Duration) -> f64 {
    (d.as_micros() as f64 / 100.0).round() / 10.0
}

fn now() -> SystemTime {
    SystemTime::now()
}

/// One write per line, so lines from concurrent tasks never interleave. A failed write to
/// stderr has nowhere to be reported; it is ignored here.
fn write_line(line: &str) {
    let mut buf = String::with_capacity(line.len() + 1);
    buf.push_str(line);
    buf.push('\n');
    let _ = std::io::stderr().lock().write_all(buf.as_bytes());
}

/// The final error line, as it is written (without the newline).
pub fn error_line(e: &Error) -> String {
    error_line_at(e, now(), json())
}

fn error_line_at(e: &Error, ts: SystemTime, json: bool) -> String {
    if !json {
        return crate::error::Report(e).to_string();
    }
    let mut line = at(0, Event::Error);
    line.level = "error";
    line.exit_code = Some(e.exit_code());
    if let Some(s) = e.secret() {
        line.secret = Some(s);
    }
    line.render(&e.to_string(), ts, json)
}

/// Writes the one error line for `e` to stderr: the only place the final line is emitted.
/// A closed stdout (141) ends silently, as other Unix tools do.
pub fn report(e: &Error) {
    if e.is_reported() {
        write_line(&error_line(e));
    }
}

/// A failure the run survives (the resident parent keeps COMMAND running): the error's line,
/// then what happens next, as a `warn` line in either format. Never the final line.
pub fn warn_error(event: Event, e: &Error, then: &str) {
    let line = at(0, event);
    let line = match e.secret() {
        Some(s) => line.secret(s),
        None => line,
    };
    line.say(format_args!("{e}; {then}"));
}

/// The panic hook's line: where it happened, never the payload (it could hold data).
pub fn report_panic(at: &str) {
    let e = Error::Internal(format!(
        "internal error{at}; this is a bug, please report it"
    ));
    write_line(&error_line(&e));
}

/// The log format asked for before the command line is fully parsed, so that even a usage error
/// is written in it: the last `--log-format X` / `--log-format=X` before `--`, else a valid
/// `SECRET_EXEC_LOG_FORMAT`. Config validates both properly later.
pub fn early_format(args: &[std::ffi::OsString], env: Option<&std::ffi::OsStr>) -> Option<Format> {
    let mut found = None;
    let mut it = args.iter().skip(1).map(|a| a.to_string_lossy());
    while let Some(a) = it.next() {
        if a == "--" {
            break;
        }
        if a == "--log-format" {
            found = it.next().and_then(|v| Format::from_flag(&v));
        } else if let Some(v) = a.strip_prefix("--log-format=") {
            found = Format::from_flag(v);
        }
    }
    found.or_else(|| env.and_then(|v| Format::parse(&v.to_string_lossy())))
}

/// RFC 3339 UTC with milliseconds, e.g. `2026-11-29T12:47:40.123Z`, from the civil-from-days
/// algorithm (proleptic Gregorian), so no date crate is needed for one timestamp format.
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_table() {
        let rows = [
            (0, 0, "1970-01-01T00:00:00.000Z"),
            (951_782_400, 5, "2000-02-29T00:00:00.005Z"),
            (1_709_251_199, 999, "2024-02-29T23:59:59.999Z"),
            (1_796_042_860, 123, "2026-11-30T12:47:40.123Z"),
            (4_102_444_800, 0, "2100-01-01T00:00:00.000Z"),
        ];
        for (secs, ms, want) in rows {
            let t = UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_millis(ms);
            assert_eq!(rfc3339(t), want, "{secs}");
        }
    }

    #[test]
    fn early_format_table() {
        let rows: &[(&[&str], Option<&str>, Option<Format>)] = &[
            (&[], None, None),
            (&["--log-format", "json"], None, Some(Format::Json)),
            (&["--log-format=json"], Some("text"), Some(Format::Json)),
            (
                &["--log-format=json", "--log-format", "text"],
                None,
                Some(Format::Text),
            ),
            (&["--", "--log-format=json"], None, None),
            (&["--log-format=xml"], Some("json"), Some(Format::Json)),
            (&[], Some("JSON"), Some(Format::Json)),
            (&[], Some(" Json "), Some(Format::Json)),
            (&["--log-format", "JSON"], None, Some(Format::Json)),
            (&["--log-format=Json"], Some("text"), Some(Format::Json)),
            // clap refuses a flag value with spaces, so the variable decides the usage error's.
            (&["--log-format= json"], Some("text"), Some(Format::Text)),
            (&[], Some("yaml"), None),
        ];
        for (args, env, want) in rows {
            let args: Vec<std::ffi::OsString> = std::iter::once("se")
                .chain(args.iter().copied())
                .map(Into::into)
                .collect();
            let env = env.map(std::ffi::OsStr::new);
            assert_eq!(early_format(&args, env), *want, "{args:?} {env:?}");
        }
    }

    /// The JSON shape: fixed keys, absent fields left out, strings sanitised.
    #[test]
    fn json_lines() {
        let ts = UNIX_EPOCH + Duration::from_millis(1_500);
        let line = at(0, Event::Fetch)
            .secret("prod/\u{202e}db")
            .region("eu-west-1")
            .call("GetSecretValue")
            .took(Duration::from_micros(12_340));
        let rendered = line.render("got it\nnow", ts, true);
        assert!(
            rendered.starts_with(
                r#"{"ts":"1970-01-01T00:00:01.500Z","level":"warn","event":"fetch","secret""#
            ),
            "{rendered}"
        );
        let v: serde_json::Value = serde_json::from_str(&rendered).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"ts": "1970-01-01T00:00:01.500Z", "level": "warn",
                "event": "fetch", "secret": "prod/ db", "region": "eu-west-1",
                "call": "GetSecretValue", "duration_ms": 12.3, "message": "got it now"})
        );
        let e = Error::NotFound {
            secret: "prod/db".into(),
            why: "gone".into(),
        };
        let v: serde_json::Value = serde_json::from_str(&error_line_at(&e, ts, true)).unwrap();
        assert_eq!(v["event"], "error");
        assert_eq!(v["level"], "error");
        assert_eq!(v["exit_code"], 66);
        assert_eq!(v["secret"], "prod/db");
        assert_eq!(v["message"], "secret 'prod/db' not found: gone");
        assert_eq!(
            error_line_at(&e, ts, false),
            "secret-exec: secret 'prod/db' not found: gone"
        );
    }

    #[test]
    fn millis_keep_a_decimal() {
        assert_eq!(millis(Duration::from_micros(1_234_567)), 1234.6);
        assert_eq!(millis(Duration::from_micros(40)), 0.0);
        assert_eq!(millis(Duration::from_micros(160)), 0.2);
    }
}
