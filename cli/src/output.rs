//! Rendering of errors and sizes for humans.

use std::fmt;
use std::process::ExitCode;

/// `--color`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

static COLOR: std::sync::OnceLock<bool> = std::sync::OnceLock::new();

/// Decides once whether stderr gets colour: `never`/`always` as asked; `auto` when stderr is a terminal
/// and NO_COLOR (https://no-color.org) is unset or empty.
pub fn set_color(choice: ColorChoice) {
    let on = match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            use std::io::IsTerminal as _;
            std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stderr().is_terminal()
        }
    };
    let _ = COLOR.set(on);
}

/// Whether stderr gets colour (see [`set_color`]).
pub fn color() -> bool {
    COLOR.get().copied().unwrap_or(false)
}

/// Wrap an error in this to mark it as lamina's own fault: exit status 2 instead of 1.
#[derive(Debug)]
pub struct Internal(pub String);

impl fmt::Display for Internal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "internal error: {}", self.0)
    }
}

impl std::error::Error for Internal {}

/// Prints `error: …` and one `caused by: …` line per source, returns the exit status
/// (1 for user errors, 2 for internal ones, see [`is_internal`]).
pub fn report_error(e: &anyhow::Error) -> ExitCode {
    let code = if is_internal(e) { 2 } else { 1 };
    report_error_as(e, code)
}

/// [`report_error`] with a fixed exit status: `run`, `create` and `exec` exit 125 for lamina's own
/// errors, as docker does, so scripts can tell them from the container's status.
pub fn report_error_as(e: &anyhow::Error, code: u8) -> ExitCode {
    if is_broken_pipe(e) {
        sigpipe::die();
    }
    if color() {
        eprintln!("\x1b[1;31merror:\x1b[0m {e}");
    } else {
        eprintln!("error: {e}");
    }
    for cause in e.chain().skip(1) {
        eprintln!("  caused by: {cause}");
    }
    ExitCode::from(code)
}

/// Lamina's own fault: an [`Internal`] link, or a build error the builder says is not the user's
/// (the outermost build error decides: it knows whether its cause was the input's fault).
fn is_internal(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.is::<Internal>())
        || e.chain()
            .find_map(|c| c.downcast_ref::<lamina_builder::engine::BuildError>())
            .is_some_and(|b| !b.is_user_error())
}

/// Human sizes in decimal units like docker: `512 B`, `12.3 kB`, `4.5 MB`, `1.2 GB`.
pub fn human_size(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i < UNITS.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}

/// Sizes as the docker CLI lists them (`docker images`, `history`, `ps -s`): three significant digits,
/// decimal units, no space (`512B`, `4.26MB`, `1.1GB`), Go's `%.3g` included (`1e+03kB` for 999999).
pub fn docker_size(n: u64) -> String {
    docker_size_precision(n, 3)
}

/// Docker's `units.HumanSizeWithPrecision`: `precision` significant digits (`HumanSize`, 4, is what
/// `VirtualSize` prints: `4.356kB`).
pub fn docker_size_precision(n: u64, precision: usize) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i < UNITS.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    format!("{}{}", go_g(v, precision.max(1)), UNITS[i])
}

/// Go's `%.{p}g` of a non-negative number.
fn go_g(v: f64, p: usize) -> String {
    if v == 0.0 {
        return "0".to_owned();
    }
    // `{:.(p-1)e}` rounds to p significant digits; its exponent is the one %g decides the form by.
    let e = format!("{v:.*e}", p - 1);
    let (mant, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let strip = |s: String| -> String {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_owned()
        } else {
            s
        }
    };
    if exp < -4 || exp >= p as i32 {
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{}e{sign}{:02}", strip(mant.to_owned()), exp.abs());
    }
    strip(format!("{v:.*}", (p as i32 - 1 - exp).max(0) as usize))
}

/// A time as Go's `time.Time.String()` prints it in UTC (`2023-11-14 22:13:20 +0000 UTC`): docker's
/// `CreatedAt` fields.
pub fn go_time(secs: i64) -> String {
    let t = lamina_store::archive::rfc3339(secs);
    format!("{} {} +0000 UTC", &t[..10], t[11..].trim_end_matches('Z'))
}

/// Seconds since the Unix epoch of an RFC 3339 time as image configs carry it (`2024-01-02T03:04:05.123Z`,
/// `…+02:00`); `None` if it does not parse.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !(b[10] == b'T' || b[10] == b't' || b[10] == b' ') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        rest = &frac[n..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6 && (rest.starts_with('+') || rest.starts_with('-')) => {
            let oh: i64 = rest[1..3].parse().ok()?;
            let om: i64 = rest[4..6].parse().ok()?;
            let sign = if rest.starts_with('-') { -1 } else { 1 };
            sign * (oh * 3600 + om * 60)
        }
        _ => return None,
    };
    // Days from civil (Howard Hinnant's algorithm).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + mi * 60 + sec - offset)
}

/// Docker's relative time of a time in Unix seconds: `About a minute ago`, `3 hours ago`, `2 weeks ago`.
pub fn human_ago_unix(then: i64) -> String {
    format!("{} ago", human_duration(unix_now() - then))
}

/// Seconds since the Unix epoch, now.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Docker's `units.HumanDuration`: `Less than a second`, `5 seconds`, `About a minute`, `3 hours`…
pub fn human_duration(secs: i64) -> String {
    let secs = secs.max(0);
    let plural = |n: i64, unit: &str| format!("{n} {unit}{}", if n == 1 { "" } else { "s" });
    match secs {
        0 => "Less than a second".to_owned(),
        1..60 => plural(secs, "second"),
        60..120 => "About a minute".to_owned(),
        120..3600 => plural(secs / 60, "minute"),
        3600..7200 => "About an hour".to_owned(),
        7200..172_800 => plural(secs / 3600, "hour"),
        172_800..1_209_600 => plural(secs / 86_400, "day"),
        1_209_600..5_184_000 => plural(secs / 604_800, "week"),
        5_184_000..63_072_000 => plural(secs / 2_592_000, "month"),
        _ => plural(secs / 31_536_000, "year"),
    }
}

/// Writes `s` to stdout. A closed pipe (`lamina images | head -1`) ends the process the way `ls`, `cat` or the
/// docker CLI end there: quietly, killed by SIGPIPE (status 141 in a shell), instead of Rust's panic.
pub fn emit(s: &str) {
    emit_fmt(format_args!("{s}"));
}

/// [`emit`] for `format_args!`; what [`outln!`](crate::outln) and [`out!`](crate::out) expand to.
pub fn emit_fmt(args: fmt::Arguments<'_>) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            sigpipe::die();
        }
        eprintln!("error: writing to stdout: {e}");
        std::process::exit(2);
    }
}

/// `println!` for data on stdout, closed-pipe safe (see [`emit`]).
#[macro_export]
macro_rules! outln {
    () => { $crate::output::emit_fmt(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::output::emit_fmt(format_args!("{}\n", format_args!($($arg)*))) };
}

/// `print!` for data on stdout, closed-pipe safe (see [`emit`]).
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => { $crate::output::emit_fmt(format_args!($($arg)*)) };
}

/// Whether an error chain ends in a closed stdout pipe (a command streaming to stdout with `?`).
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

#[allow(unsafe_code)]
mod sigpipe {
    /// Ends the process by SIGPIPE, the status a reader that went away expects. Rust ignores SIGPIPE at
    /// start-up (so sockets and child pipes give EPIPE errors instead), so restore the default and raise it.
    pub(super) fn die() -> ! {
        // SAFETY: setting a signal's disposition to SIG_DFL installs no handler and touches no Rust state; the
        // process ends right after.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
            libc::raise(libc::SIGPIPE);
        }
        std::process::exit(141)
    }
}

/// Parses a size like `20MB`, `1.5 GB`, `512k`, `4MiB` or `1000` (bytes). Decimal units (kB, MB, GB, TB) are
/// powers of 1000 like [`human_size`] prints; binary units (KiB, MiB, GiB, TiB) powers of 1024.
pub fn parse_size(s: &str) -> Result<u64, lamina_store::gc::GcConfigError> {
    // One size grammar: the store's, which also reads `gc.keepStorage`.
    lamina_store::gc::parse_size(s)
}

/// `--format table|json` of the commands whose output is a report rather than a docker listing
/// (fsck, prune, system df).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableOrJson {
    Table,
    Json,
}

/// A text table with aligned columns; numeric-looking columns are right-aligned when marked.
pub struct Table {
    headers: Vec<&'static str>,
    right: Vec<bool>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// `right[i]`: right-align column i (sizes, counts).
    pub fn new(headers: &[&'static str], right: &[bool]) -> Self {
        Table {
            headers: headers.to_vec(),
            right: right.to_vec(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Renders with two spaces between columns; the last column is never padded.
    pub fn render(&self) -> String {
        let n = self.headers.len();
        let mut width = vec![0usize; n];
        for (i, h) in self.headers.iter().enumerate() {
            width[i] = h.chars().count();
        }
        for r in &self.rows {
            for (i, c) in r.iter().enumerate().take(n) {
                width[i] = width[i].max(c.chars().count());
            }
        }
        let mut out = String::new();
        let headers: Vec<String> = self.headers.iter().map(|h| h.to_string()).collect();
        for r in std::iter::once(&headers).chain(self.rows.iter()) {
            let mut line = String::new();
            for (i, c) in r.iter().enumerate().take(n) {
                let pad = width[i] - c.chars().count();
                if i > 0 {
                    line.push_str("  ");
                }
                if self.right.get(i).copied().unwrap_or(false) {
                    line.push_str(&" ".repeat(pad));
                    line.push_str(c);
                } else {
                    line.push_str(c);
                    if i + 1 < n {
                        line.push_str(&" ".repeat(pad));
                    }
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sizes() {
        assert_eq!(parse_size("20MB").unwrap(), 20_000_000);
        assert_eq!(parse_size("1.5 GB").unwrap(), 1_500_000_000);
        assert_eq!(parse_size("4MiB").unwrap(), 4 << 20);
        assert_eq!(parse_size("1000").unwrap(), 1000);
        assert!(parse_size("12 parsecs").is_err());
        assert!(parse_size("MB").is_err());
    }

    #[test]
    fn tables_align() {
        let mut t = Table::new(&["NAME", "SIZE", "NOTE"], &[false, true, false]);
        t.row(vec!["a".into(), "1.0 kB".into(), "x".into()]);
        t.row(vec!["longer".into(), "12 B".into(), "".into()]);
        assert_eq!(
            t.render(),
            "NAME      SIZE  NOTE\na       1.0 kB  x\nlonger    12 B\n"
        );
    }

    #[test]
    fn docker_sizes_and_times() {
        assert_eq!(docker_size(0), "0B");
        assert_eq!(docker_size(512), "512B");
        assert_eq!(docker_size(4_261_000), "4.26MB");
        assert_eq!(docker_size(1_100_000_000), "1.1GB");
        assert_eq!(docker_size(77_800_000), "77.8MB");
        assert_eq!(docker_size(1_000), "1kB");
        assert_eq!(docker_size(999_999), "1e+03kB");
        assert_eq!(docker_size_precision(4356, 4), "4.356kB");
        assert_eq!(docker_size(4356), "4.36kB");
        assert_eq!(go_time(1_700_000_000), "2023-11-14 22:13:20 +0000 UTC");
    }

    #[test]
    fn sizes() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(999), "999 B");
        assert_eq!(human_size(12_300), "12.3 kB");
        assert_eq!(human_size(4_500_000), "4.5 MB");
    }

    #[test]
    fn rfc3339() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339("2024-02-29T12:00:00.123456789Z"),
            Some(1_709_208_000)
        );
        assert_eq!(parse_rfc3339("2024-02-29T14:00:00+02:00"), Some(1_709_208_000));
        assert_eq!(parse_rfc3339("yesterday"), None);
        assert_eq!(human_ago_unix(0).split(' ').nth(1), Some("years"));
    }
}
