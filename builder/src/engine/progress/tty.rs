//! The TTY view, like BuildKit's: a pane redrawn in place by a timer thread — a header with the elapsed time
//! and steps done/total, one line per step (its state and timer), the last few log lines under each running
//! or failed step. Every line is cut to the terminal's width (by display width, so wide characters count
//! double) and the pane is kept shorter than the terminal, so the cursor-up redraw never leaves wrapped or
//! scrolled-off lines behind. The size is read on every tick, which is how a resize (SIGWINCH) is picked up.
//!
//! Logs are never lost to the pane: every line goes to a log file as well, whose path is printed when the
//! build fails. Ctrl-C marks running steps `CANCELED`, draws the pane once more, restores the cursor and
//! exits 130.

use std::collections::{BTreeMap, VecDeque};
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use unicode_width::UnicodeWidthChar;

use super::Event;

/// Log lines shown under a running step.
const TAIL_LINES: usize = 6;
const TICK: Duration = Duration::from_millis(100);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    Running,
    Done,
    Cached,
    Failed,
    Canceled,
}

struct StepView {
    title: String,
    id: Option<usize>,
    started: Instant,
    took: Option<f64>,
    status: Status,
    tail: VecDeque<String>,
    /// Config-only steps count in done/total but get no line (BuildKit shows none).
    hidden: bool,
    /// An Info message: a line without a timer.
    note: bool,
}

/// What the pane shows.
pub(super) struct State {
    start: Instant,
    steps: Vec<StepView>,
    stage_totals: BTreeMap<String, usize>,
    failed: bool,
    canceled: bool,
    finished: bool,
    /// Printed under the final pane: warnings, the result.
    after: Vec<String>,
    log: Option<(PathBuf, std::fs::File)>,
    /// Lines drawn last time (the cursor goes up this many to redraw).
    drawn: usize,
}

impl State {
    fn new() -> State {
        State {
            start: Instant::now(),
            steps: Vec::new(),
            stage_totals: BTreeMap::new(),
            failed: false,
            canceled: false,
            finished: false,
            after: Vec::new(),
            log: None,
            drawn: 0,
        }
    }

    fn step(&mut self, id: usize) -> Option<&mut StepView> {
        self.steps.iter_mut().rev().find(|s| s.id == Some(id))
    }

    fn apply(&mut self, e: Event) {
        match e {
            Event::Step {
                id,
                stage,
                index,
                total,
                text,
                ..
            } => {
                self.stage_totals.insert(stage.clone(), total);
                self.steps.push(StepView {
                    title: format!("[{stage} {index}/{total}] {text}"),
                    id: Some(id),
                    started: Instant::now(),
                    took: None,
                    status: Status::Running,
                    tail: VecDeque::new(),
                    hidden: Event::is_metadata_step(&text),
                    note: false,
                });
            }
            Event::Cached { id } => {
                if let Some(s) = self.step(id) {
                    s.status = Status::Cached;
                    s.took = Some(0.0);
                }
            }
            Event::Done { id, seconds } => {
                if let Some(s) = self.step(id) {
                    s.status = Status::Done;
                    s.took = Some(seconds);
                }
            }
            Event::Log { id, line } => {
                self.write_log(id, &line);
                if let Some(s) = self.step(id) {
                    if s.tail.len() == TAIL_LINES {
                        s.tail.pop_front();
                    }
                    s.tail.push_back(sanitize(&line));
                }
            }
            Event::Failed { id, error } => {
                self.failed = true;
                if let Some(s) = self.step(id) {
                    s.status = Status::Failed;
                    s.took = Some(s.started.elapsed().as_secs_f64());
                }
                self.after
                    .push(format!("ERROR: {}", error.lines().next().unwrap_or_default()));
            }
            Event::Info { message } => self.steps.push(StepView {
                title: message,
                id: None,
                started: Instant::now(),
                took: Some(0.0),
                status: Status::Done,
                tail: VecDeque::new(),
                hidden: false,
                note: true,
            }),
            Event::Warning { message } => self.after.push(format!("WARNING: {message}")),
            Event::Result {
                manifest_digest,
                tags,
                executed,
                cached,
                ..
            } => {
                let tagged = if tags.is_empty() {
                    String::new()
                } else {
                    format!(", tagged {}", tags.join(", "))
                };
                self.after.push(format!(
                    "=> built {manifest_digest} ({executed} steps run, {cached} cached){tagged}"
                ));
            }
        }
    }

    /// Every log line, in full, to a file (made on the first line; kept only if the build fails).
    fn write_log(&mut self, id: usize, line: &str) {
        if self.log.is_none()
            && let Ok((f, path)) = tempfile::Builder::new()
                .prefix("lamina-build-")
                .suffix(".log")
                .tempfile()
                .and_then(|t| t.keep().map_err(|e| e.error))
        {
            self.log = Some((path, f));
        }
        if let Some((_, f)) = &mut self.log {
            let _ = writeln!(f, "#{id} {line}");
        }
    }

    fn cancel(&mut self) {
        self.canceled = true;
        for s in &mut self.steps {
            if s.status == Status::Running {
                s.status = Status::Canceled;
                s.took = Some(s.started.elapsed().as_secs_f64());
            }
        }
    }

    /// The pane for a `width`×`height` terminal: at most `height - 1` lines (unlimited once finished,
    /// when it is drawn for the last time), none wider than `width - 1` columns.
    pub(super) fn render(&self, width: usize, height: usize) -> Vec<String> {
        let done = self
            .steps
            .iter()
            .filter(|s| s.id.is_some() && s.status != Status::Running)
            .count();
        let total = self.stage_totals.values().sum::<usize>().max(done);
        let suffix = match (self.canceled, self.finished, self.failed) {
            (true, _, _) => " CANCELED",
            (_, true, false) => " FINISHED",
            _ => "",
        };
        let header = fit(
            &format!(
                "[+] Building {:.1}s ({done}/{total}){suffix}",
                self.start.elapsed().as_secs_f64()
            ),
            "",
            width,
        );
        // Per visible step: its line, then its log tail if it is running or failed.
        let mut blocks: Vec<(bool, String, Vec<String>)> = Vec::new();
        for s in self.steps.iter().filter(|s| !s.hidden) {
            let prefix = match s.status {
                Status::Cached => "CACHED ",
                Status::Failed => "ERROR ",
                Status::Canceled => "CANCELED ",
                Status::Running | Status::Done => "",
            };
            let timer = if s.note {
                String::new()
            } else {
                format!(
                    "{:.1}s",
                    s.took.unwrap_or_else(|| s.started.elapsed().as_secs_f64())
                )
            };
            let live = matches!(s.status, Status::Running | Status::Failed | Status::Canceled);
            let logs = if live {
                s.tail
                    .iter()
                    .map(|l| fit(&format!(" => => # {l}"), "", width))
                    .collect()
            } else {
                Vec::new()
            };
            blocks.push((
                live,
                fit(&format!(" => {prefix}{}", s.title), &timer, width),
                logs,
            ));
        }
        let budget = if self.finished || self.canceled {
            usize::MAX
        } else {
            height.saturating_sub(2).max(1)
        };
        let count = |b: &[(bool, String, Vec<String>)]| b.iter().map(|(_, _, l)| 1 + l.len()).sum::<usize>();
        // Too tall: finished steps go first (oldest first), then the log lines of older running steps.
        while count(&blocks) > budget {
            if let Some(i) = blocks.iter().position(|(live, _, _)| !live) {
                blocks.remove(i);
            } else if let Some(b) = blocks.iter_mut().find(|(_, _, l)| !l.is_empty()) {
                b.2.remove(0);
            } else {
                blocks.remove(0);
            }
        }
        let mut lines = vec![header];
        for (_, line, logs) in blocks {
            lines.push(line);
            lines.extend(logs);
        }
        lines
    }
}

/// `left` then `right` flush to the right edge, cut so the line stays under `width` columns (the last
/// column is left free: a character there makes some terminals wrap).
fn fit(left: &str, right: &str, width: usize) -> String {
    let max = width.saturating_sub(1);
    let rw = display_width(right);
    if right.is_empty() || rw + 2 > max {
        return cut(left, max);
    }
    let room = max - rw - 1;
    let l = cut(left, room);
    let pad = room - display_width(&l);
    format!("{l}{} {right}", " ".repeat(pad))
}

fn display_width(s: &str) -> usize {
    s.chars().map(|c| c.width().unwrap_or(0)).sum()
}

/// The longest prefix of `s` at most `max` columns wide.
fn cut(s: &str, max: usize) -> String {
    let mut w = 0;
    let mut out = String::new();
    for c in s.chars() {
        let cw = c.width().unwrap_or(0);
        if w + cw > max {
            break;
        }
        w += cw;
        out.push(c);
    }
    out
}

/// A log line as one line of plain text: what follows the last `\r` (progress bars), escape sequences
/// dropped, tabs as spaces, other control characters removed.
fn sanitize(line: &str) -> String {
    let line = line.trim_end_matches('\r');
    let line = line.rsplit('\r').next().unwrap_or(line);
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\x1b' => {
                // CSI `ESC [ … final` or a two-character escape.
                if chars.peek() == Some(&'[') {
                    chars.next();
                    for n in chars.by_ref() {
                        if ('@'..='~').contains(&n) {
                            break;
                        }
                    }
                } else {
                    chars.next();
                }
            }
            '\t' => out.push_str("    "),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

fn term_size() -> (usize, usize) {
    match rustix::termios::tcgetwinsize(std::io::stderr()) {
        Ok(w) if w.ws_col > 0 && w.ws_row > 0 => (w.ws_col as usize, w.ws_row as usize),
        _ => (80, 24),
    }
}

struct Shared {
    state: Mutex<State>,
    out: Arc<Mutex<Box<dyn Write + Send>>>,
    stop: AtomicBool,
    interrupted: Arc<AtomicBool>,
    color: AtomicBool,
}

/// A pane line in BuildKit's colours: errors red, canceled yellow, log lines dim, running and done blue.
/// Applied after the line was cut to width, so the escape codes take no columns.
fn paint(line: &str) -> String {
    let code = if line.starts_with("[+]") {
        "1"
    } else if line.starts_with(" => ERROR") {
        "31"
    } else if line.starts_with(" => CANCELED") {
        "33"
    } else if line.starts_with(" => => #") {
        "2"
    } else {
        "34"
    };
    format!("\x1b[{code}m{line}\x1b[0m")
}

impl Shared {
    fn draw(&self, state: &mut State) {
        let (w, h) = term_size();
        let lines = state.render(w, h);
        let mut text = String::from("\x1b[?25l");
        if state.drawn > 0 {
            text.push_str(&format!("\x1b[{}F", state.drawn));
        }
        let color = self.color.load(Ordering::Relaxed);
        for l in &lines {
            if color {
                text.push_str(&paint(l));
            } else {
                text.push_str(l);
            }
            text.push_str("\x1b[K\n");
        }
        text.push_str("\x1b[J");
        state.drawn = lines.len();
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }

    /// The last draw: the whole pane, then what comes after it, the cursor back.
    fn last_draw(&self, state: &mut State) {
        self.draw(state);
        let mut text = String::new();
        for a in &state.after {
            text.push_str(a);
            text.push('\n');
        }
        match state.log.take() {
            Some((path, _)) if state.failed || state.canceled => {
                text.push_str(&format!("full log: {}\n", path.display()));
            }
            Some((path, _)) => {
                let _ = std::fs::remove_file(path);
            }
            None => {}
        }
        text.push_str("\x1b[?25h");
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }
}

pub(super) struct Tty {
    shared: Arc<Shared>,
    ticker: Mutex<Option<JoinHandle<()>>>,
}

impl Tty {
    pub(super) fn start(out: Arc<Mutex<Box<dyn Write + Send>>>) -> Tty {
        let interrupted = Arc::new(AtomicBool::new(false));
        // Without the flag Ctrl-C kills lamina mid-redraw, leaving a spinner and a hidden cursor.
        let _ = signal_hook::flag::register(signal_hook::consts::SIGINT, interrupted.clone());
        let shared = Arc::new(Shared {
            state: Mutex::new(State::new()),
            out,
            stop: AtomicBool::new(false),
            interrupted,
            color: AtomicBool::new(false),
        });
        let s = shared.clone();
        let ticker = std::thread::Builder::new()
            .name("progress".into())
            .spawn(move || {
                while !s.stop.load(Ordering::Relaxed) {
                    std::thread::sleep(TICK);
                    let mut st = s.state.lock().unwrap_or_else(|p| p.into_inner());
                    if s.interrupted.load(Ordering::Relaxed) {
                        st.cancel();
                        s.last_draw(&mut st);
                        std::process::exit(130);
                    }
                    if !st.finished {
                        s.draw(&mut st);
                    }
                }
            })
            .ok();
        Tty {
            shared,
            ticker: Mutex::new(ticker),
        }
    }

    pub(super) fn set_color(&self, on: bool) {
        self.shared.color.store(on, Ordering::Relaxed);
    }

    pub(super) fn event(&self, e: Event) {
        self.shared
            .state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .apply(e);
    }

    pub(super) fn finish(&self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.ticker.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = t.join();
        }
        let mut st = self.shared.state.lock().unwrap_or_else(|p| p.into_inner());
        if !st.finished {
            st.finished = true;
            self.shared.last_draw(&mut st);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(id: usize, index: usize, text: &str) -> Event {
        Event::Step {
            id,
            stage: "app".into(),
            index,
            total: 5,
            line: index,
            text: text.into(),
        }
    }

    /// Removes the log file a test state made.
    fn cleanup(s: &mut State) {
        if let Some((p, _)) = s.log.take() {
            let _ = std::fs::remove_file(p);
        }
    }

    fn state() -> State {
        let mut s = State::new();
        s.apply(step(1, 1, "FROM busybox"));
        s.apply(Event::Done { id: 1, seconds: 0.2 });
        s.apply(step(2, 2, "ENV A=1"));
        s.apply(Event::Done { id: 2, seconds: 0.0 });
        s.apply(step(3, 3, "COPY . /src"));
        s.apply(Event::Cached { id: 3 });
        s.apply(step(
            4,
            4,
            "RUN make all && make install DESTDIR=/very/long/path/that/goes/on",
        ));
        for i in 0..300 {
            s.apply(Event::Log {
                id: 4,
                line: format!(
                    "\x1b[32mline {i}\x1b[0m\twith a tab and ümläuts and 日本語 {}",
                    "x".repeat(i % 150)
                ),
            });
        }
        s
    }

    #[test]
    fn pane_fits_any_terminal() {
        let s = state();
        for (w, h) in [(80, 24), (120, 40), (200, 50), (20, 5)] {
            let lines = s.render(w, h);
            assert!(lines.len() < h, "{w}x{h}: {} lines", lines.len());
            for l in &lines {
                assert!(display_width(l) < w, "{w}x{h}: too wide: {l:?}");
                assert!(!l.contains('\x1b') && !l.contains('\t'), "{l:?}");
            }
            assert!(lines[0].starts_with("[+] Buil"), "{:?}", lines[0]);
            assert!(w < 40 || lines[0].contains("(3/5)"), "{:?}", lines[0]);
        }
        let lines = s.render(120, 40);
        let text = lines.join("\n");
        assert!(!text.contains("ENV A=1"), "metadata steps have no line:\n{text}");
        assert!(text.contains(" => CACHED [app 3/5] COPY . /src"), "{text}");
        // The running step and the last log lines (not the first).
        assert!(text.contains(" => [app 4/5] RUN make all"), "{text}");
        assert!(text.contains("line 299") && !text.contains("line 293 "), "{text}");
        assert_eq!(
            lines.iter().filter(|l| l.starts_with(" => => # ")).count(),
            TAIL_LINES
        );
        // Timers sit at the right edge.
        let copy = lines.iter().find(|l| l.contains("COPY")).unwrap();
        assert!(copy.ends_with("0.0s") && display_width(copy) == 119, "{copy:?}");
        cleanup(&mut { s });
    }

    #[test]
    fn small_terminals_drop_finished_steps_first() {
        let mut s = state();
        let lines = s.render(80, 6);
        cleanup(&mut s);
        assert!(lines.len() <= 5, "{lines:?}");
        assert!(lines.iter().any(|l| l.contains("RUN make")), "{lines:?}");
        assert!(!lines.iter().any(|l| l.contains("FROM busybox")), "{lines:?}");
    }

    #[test]
    fn failure_and_cancel_states() {
        let mut s = state();
        s.apply(Event::Failed {
            id: 4,
            error: "Dockerfile:4: RUN failed: exited with code 2\n--- last output lines ---\nline 299".into(),
        });
        s.finished = true;
        let text = s.render(100, 30).join("\n");
        assert!(text.contains(" => ERROR [app 4/5] RUN make"), "{text}");
        assert!(!text.contains("FINISHED"), "{text}");
        assert_eq!(s.after, ["ERROR: Dockerfile:4: RUN failed: exited with code 2"]);
        assert!(s.log.is_some(), "the full log is kept");
        let mut c = state();
        c.cancel();
        let text = c.render(100, 30).join("\n");
        assert!(text.lines().next().unwrap().ends_with("CANCELED"), "{text}");
        assert!(text.contains(" => CANCELED [app 4/5] RUN make"), "{text}");
        for st in [s, c] {
            if let Some((p, _)) = st.log {
                let full = std::fs::read_to_string(&p).unwrap();
                assert_eq!(full.lines().count(), 300, "the log file has every line");
                let _ = std::fs::remove_file(p);
            }
        }
    }

    #[test]
    fn sanitizes_and_fits() {
        assert_eq!(sanitize("a\x1b[1;31mred\x1b[0m\tb\r"), "ared    b");
        assert_eq!(sanitize("10%\r50%\r100%"), "100%");
        assert_eq!(fit("日本語テキスト", "1.0s", 12), "日本語 1.0s");
        assert_eq!(display_width(&fit("abc", "1.0s", 12)), 11);
        assert_eq!(fit("abcdef", "", 4), "abc");
    }
}
