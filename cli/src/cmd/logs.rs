//! `lamina logs`: a detached container's output, stdout to stdout and stderr to stderr, as docker's
//! `logs` (`--tail`, `--since`, `--until`, `--timestamps`, `--follow`). The monitor keeps the streams
//! apart and time-stamped in `output.log` ([`lamina_runner::logs`]).

use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use lamina_runner::logs::{Record, Stream, frames_from};

use super::container::state;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Keep printing new output until the container stops.
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Only the last N lines (or `all`).
    #[arg(short = 'n', long, value_name = "N", default_value = "all")]
    pub tail: String,
    /// Only output written since: an RFC 3339 time, Unix seconds, or a duration ago (10m, 1h30m).
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,
    /// Only output written before: same forms as --since.
    #[arg(long, value_name = "WHEN")]
    pub until: Option<String>,
    /// Prefix each line with when it was written (RFC 3339, nanoseconds).
    #[arg(short = 't', long)]
    pub timestamps: bool,
    /// Container name or id.
    pub container: String,
}

/// A whole line (or the unterminated end) of one stream, with its time.
struct Line {
    time_ns: u64,
    stream: Stream,
    text: Vec<u8>,
}

pub fn run(cli: &crate::Cli, args: &Args) -> anyhow::Result<ExitCode> {
    let root = cli.store_root();
    let rec = state::find(&root, &args.container)?;
    let path = rec.dir.join(state::LOG_FILE);
    let tail = match args.tail.as_str() {
        "all" | "-1" => None,
        n => Some(
            n.parse::<usize>()
                .with_context(|| format!("--tail {n}: a number or all"))?,
        ),
    };
    let since = args
        .since
        .as_deref()
        .map(|s| parse_when(s, "--since"))
        .transpose()?;
    let until = args
        .until
        .as_deref()
        .map(|s| parse_when(s, "--until"))
        .transpose()?;
    let keep = |l: &Line| since.is_none_or(|s| l.time_ns >= s) && until.is_none_or(|u| l.time_ns < u);
    let finite = !args.follow || until.is_some();
    // Lines stream out as the frames are read; with --tail only the last N are held.
    let mut held: std::collections::VecDeque<Line> = std::collections::VecDeque::new();
    let mut out = |l: Line| -> anyhow::Result<()> {
        if !keep(&l) {
            return Ok(());
        }
        match tail {
            Some(n) => {
                held.push_back(l);
                if held.len() > n {
                    held.pop_front();
                }
                Ok(())
            }
            None => emit(&l, args.timestamps),
        }
    };
    let mut splitter = Splitter::default();
    let mut offset = read_lines(&path, 0, &mut splitter, &mut out)?;
    if finite {
        for l in splitter.flush() {
            out(l)?;
        }
    }
    for l in held.drain(..) {
        emit(&l, args.timestamps)?;
    }
    if finite {
        return Ok(ExitCode::SUCCESS);
    }
    let mut live = |l: Line| emit(&l, args.timestamps);
    loop {
        let running = state::load(&rec.dir).map(|r| r.active()).unwrap_or(false);
        offset = read_lines(&path, offset, &mut splitter, &mut live)?;
        if !running {
            // One more read after the container stopped, so nothing written at the end is lost.
            read_lines(&path, offset, &mut splitter, &mut live)?;
            for l in splitter.flush() {
                live(l)?;
            }
            return Ok(ExitCode::SUCCESS);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Feeds the log's whole frames from `offset` through `splitter` into `sink`; returns the offset
/// after the last whole frame (where a later read resumes). A missing log is an empty one.
fn read_lines(
    path: &std::path::Path,
    offset: u64,
    splitter: &mut Splitter,
    sink: &mut impl FnMut(Line) -> anyhow::Result<()>,
) -> anyhow::Result<u64> {
    let mut frames = match frames_from(path, offset) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(offset),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    for r in frames.by_ref() {
        let r = r.with_context(|| format!("reading {}", path.display()))?;
        for l in splitter.feed(r) {
            sink(l)?;
        }
    }
    Ok(frames.offset())
}

fn emit(l: &Line, timestamps: bool) -> anyhow::Result<()> {
    let mut buf = Vec::with_capacity(l.text.len() + 32);
    if timestamps {
        let secs = (l.time_ns / 1_000_000_000) as i64;
        let nanos = l.time_ns % 1_000_000_000;
        let stamp = lamina_store::archive::rfc3339(secs);
        let stamp = stamp.trim_end_matches('Z');
        buf.extend_from_slice(format!("{stamp}.{nanos:09}Z ").as_bytes());
    }
    buf.extend_from_slice(&l.text);
    let r = match l.stream {
        Stream::Stdout => std::io::stdout().lock().write_all(&buf),
        Stream::Stderr => std::io::stderr().lock().write_all(&buf),
    };
    // A closed pipe ends the command by SIGPIPE in the error report, like every other output.
    r.context("writing the logs")
}

/// Chunks → lines per stream; a line takes the time its first byte was written.
#[derive(Default)]
struct Splitter {
    out: Option<(u64, Vec<u8>)>,
    err: Option<(u64, Vec<u8>)>,
}

impl Splitter {
    fn feed(&mut self, r: Record) -> Vec<Line> {
        let slot = match r.stream {
            Stream::Stdout => &mut self.out,
            Stream::Stderr => &mut self.err,
        };
        let mut lines = Vec::new();
        for piece in r.data.split_inclusive(|b| *b == b'\n') {
            let (t, buf) = slot.get_or_insert_with(|| (r.time_ns, Vec::new()));
            buf.extend_from_slice(piece);
            if piece.ends_with(b"\n") {
                lines.push(Line {
                    time_ns: *t,
                    stream: r.stream,
                    text: std::mem::take(buf),
                });
                *slot = None;
            }
        }
        lines
    }

    /// The unterminated ends of both streams.
    fn flush(&mut self) -> Vec<Line> {
        let mut lines = Vec::new();
        for (stream, slot) in [(Stream::Stdout, &mut self.out), (Stream::Stderr, &mut self.err)] {
            if let Some((t, text)) = slot.take() {
                lines.push(Line {
                    time_ns: t,
                    stream,
                    text,
                });
            }
        }
        lines.sort_by_key(|l| l.time_ns);
        lines
    }
}

/// `--since`/`--until`: RFC 3339, Unix seconds (fractions allowed), or a Go duration before now.
fn parse_when(s: &str, flag: &str) -> anyhow::Result<u64> {
    if let Some(secs) = crate::output::parse_rfc3339(s) {
        let frac = s
            .split_once('.')
            .map(|(_, f)| f.trim_end_matches(|c: char| !c.is_ascii_digit()))
            .map(|f| format!("{f:0<9}")[..9].parse::<u64>().unwrap_or(0))
            .unwrap_or(0);
        return Ok(secs.max(0) as u64 * 1_000_000_000 + frac);
    }
    if let Ok(secs) = s.parse::<f64>() {
        return Ok((secs * 1e9) as u64);
    }
    let ago = lamina_store::gc::parse_duration(s)
        .with_context(|| format!("{flag} {s:?}: an RFC 3339 time, Unix seconds or a duration like 10m"))?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    match now.checked_sub(ago) {
        Some(t) => Ok(t.as_nanos() as u64),
        None => bail!("{flag} {s:?}: before 1970"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_split_into_lines_per_stream() {
        let mut s = Splitter::default();
        let rec = |t, stream, d: &[u8]| Record {
            time_ns: t,
            stream,
            data: d.to_vec(),
        };
        let a = s.feed(rec(1, Stream::Stdout, b"one\ntw"));
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].text, b"one\n");
        let b = s.feed(rec(2, Stream::Stderr, b"err\n"));
        assert_eq!((b[0].stream, b[0].time_ns), (Stream::Stderr, 2));
        let c = s.feed(rec(3, Stream::Stdout, b"o\nend"));
        assert_eq!((c[0].text.as_slice(), c[0].time_ns), (&b"two\n"[..], 1));
        let rest = s.flush();
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].text, b"end");
    }

    #[test]
    fn when_takes_rfc3339_unix_and_durations() {
        assert_eq!(
            parse_when("1970-01-01T00:00:10Z", "--since").unwrap(),
            10_000_000_000
        );
        assert_eq!(
            parse_when("1970-01-01T00:00:10.5Z", "--since").unwrap(),
            10_500_000_000
        );
        assert_eq!(parse_when("12.25", "--since").unwrap(), 12_250_000_000);
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64;
        let ten_min = parse_when("10m", "--since").unwrap();
        let d = now - ten_min;
        assert!((599_000_000_000..601_000_000_000).contains(&d), "{d}");
        assert!(parse_when("yesterday", "--since").is_err());
    }
}
