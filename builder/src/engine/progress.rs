//! Build progress events and their renderers: plain lines (CI), JSON events (tools), and a TTY view.

use std::io::Write;
use std::sync::Mutex;
use std::time::Instant;

/// One thing that happened during a build.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A step started (or was looked up in the cache).
    Step {
        id: usize,
        stage: String,
        index: usize,
        total: usize,
        line: usize,
        text: String,
    },
    Cached {
        id: usize,
    },
    Done {
        id: usize,
        seconds: f64,
    },
    /// A line of a RUN step's output (without the newline).
    Log {
        id: usize,
        line: String,
    },
    Failed {
        id: usize,
        error: String,
    },
    /// Build-level messages (exporting, naming).
    Info {
        message: String,
    },
}

pub trait Progress: Send + Sync {
    fn event(&self, e: Event);
}

/// How to render progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Plain,
    Tty,
    Json,
    Quiet,
}

/// Writes events to stderr.
pub struct Printer {
    mode: Mode,
    start: Instant,
    out: Mutex<Box<dyn Write + Send>>,
    live: Mutex<Live>,
}

/// The TTY view: finished steps scroll up, running steps stay at the bottom with their last log lines.
#[derive(Default)]
struct Live {
    running: Vec<(usize, String, Instant, Vec<String>)>,
    drawn: usize,
}

const LIVE_LOG_LINES: usize = 4;

impl Printer {
    pub fn new(mode: Mode) -> Printer {
        Printer::with_writer(mode, Box::new(std::io::stderr()))
    }

    pub fn with_writer(mode: Mode, w: Box<dyn Write + Send>) -> Printer {
        Printer {
            mode,
            start: Instant::now(),
            out: Mutex::new(w),
            live: Mutex::new(Live::default()),
        }
    }

    fn tty(&self, e: Event) {
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        let mut text = String::new();
        if live.drawn > 0 {
            text.push_str(&format!("\x1b[{}F\x1b[J", live.drawn));
        }
        let finish = |live: &mut Live, id: usize, status: &str, text: &mut String| {
            if let Some(i) = live.running.iter().position(|r| r.0 == id) {
                let (_, title, t0, _) = live.running.remove(i);
                text.push_str(&format!("{status} {title} {:.1}s\n", t0.elapsed().as_secs_f64()));
            }
        };
        match e {
            Event::Step {
                id,
                stage,
                index,
                total,
                text: t,
                ..
            } => {
                let title = format!("[{stage} {index}/{total}] {t}");
                live.running.push((id, title, Instant::now(), Vec::new()))
            }
            Event::Cached { id } => finish(&mut live, id, "\x1b[32m✔ CACHED\x1b[0m", &mut text),
            Event::Done { id, .. } => finish(&mut live, id, "\x1b[32m✔\x1b[0m", &mut text),
            Event::Failed { id, error } => {
                finish(&mut live, id, "\x1b[1;31m✘\x1b[0m", &mut text);
                text.push_str(&format!("\x1b[31m{error}\x1b[0m\n"));
            }
            Event::Log { id, line } => {
                // Logs are never clipped: they scroll up in full; the live area shows the last few.
                text.push_str(&format!("\x1b[2m#{id}\x1b[0m {line}\n"));
                if let Some(r) = live.running.iter_mut().find(|r| r.0 == id) {
                    r.3.push(line);
                    if r.3.len() > LIVE_LOG_LINES {
                        r.3.remove(0);
                    }
                }
            }
            Event::Info { message } => text.push_str(&format!("=> {message}\n")),
        }
        let mut drawn = 0;
        for (_, title, t0, _) in &live.running {
            let secs = t0.elapsed().as_secs_f64();
            text.push_str(&format!("\x1b[1;34m⠿ {title}\x1b[0m {secs:.1}s\n"));
            drawn += 1;
        }
        live.drawn = drawn;
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }
}

impl Progress for Printer {
    fn event(&self, e: Event) {
        if self.mode == Mode::Tty {
            return self.tty(e);
        }
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        let t = self.start.elapsed().as_secs_f64();
        let _ = match (&self.mode, &e) {
            (Mode::Quiet, _) => Ok(()),
            (Mode::Json, e) => serde_json::to_string(e)
                .map(|s| writeln!(out, "{s}"))
                .unwrap_or(Ok(())),
            (
                m,
                Event::Step {
                    id,
                    stage,
                    index,
                    total,
                    line,
                    text,
                },
            ) => {
                let (b, r) = if *m == Mode::Tty {
                    ("\x1b[1;34m", "\x1b[0m")
                } else {
                    ("", "")
                };
                writeln!(
                    out,
                    "{b}#{id} [{stage} {index}/{total}] {text}{r}  (Dockerfile:{line})"
                )
            }
            (m, Event::Cached { id }) => {
                let (b, r) = if *m == Mode::Tty {
                    ("\x1b[32m", "\x1b[0m")
                } else {
                    ("", "")
                };
                writeln!(out, "{b}#{id} CACHED{r}")
            }
            (_, Event::Done { id, seconds }) => writeln!(out, "#{id} DONE {seconds:.1}s"),
            (_, Event::Log { id, line }) => writeln!(out, "#{id} {t:>6.2} {line}"),
            (m, Event::Failed { id, error }) => {
                let (b, r) = if *m == Mode::Tty {
                    ("\x1b[1;31m", "\x1b[0m")
                } else {
                    ("", "")
                };
                writeln!(out, "{b}#{id} ERROR: {error}{r}")
            }
            (_, Event::Info { message }) => writeln!(out, "=> {message}"),
        };
    }
}

/// Discards everything (library tests).
pub struct Silent;

impl Progress for Silent {
    fn event(&self, _e: Event) {}
}
