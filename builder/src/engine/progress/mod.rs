//! Build progress events and their renderers: plain lines (CI, [`plain`]), JSON lines (tools, [`json`]), and
//! a TTY pane redrawn in place ([`tty`]). The engine sends [`Event`]s to a [`Progress`]; the CLI picks the
//! renderer with a [`Mode`] and ends a build with [`Event::Result`].

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Instant;

mod json;
mod plain;
mod tty;

/// One thing that happened during a build.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A step started (or was looked up in the cache). `index` counts from 1 within its stage.
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
    /// A warning about the build's input (BuildKit's wording, e.g. unused build args).
    Warning {
        message: String,
    },
    /// The build's outcome, last: the image ID, its manifest digest and tags, step counts.
    Result {
        image_id: String,
        manifest_digest: String,
        tags: Vec<String>,
        executed: usize,
        cached: usize,
    },
}

impl Event {
    /// Instructions that only change the image config: BuildKit shows no step for them, and neither do
    /// the plain and TTY views (they still count in `index/total`, and JSON still reports them).
    pub fn is_metadata_step(text: &str) -> bool {
        let keyword = text.split_whitespace().next().unwrap_or("").to_ascii_uppercase();
        matches!(
            keyword.as_str(),
            "ENV"
                | "LABEL"
                | "CMD"
                | "ENTRYPOINT"
                | "EXPOSE"
                | "USER"
                | "VOLUME"
                | "STOPSIGNAL"
                | "HEALTHCHECK"
                | "SHELL"
                | "ARG"
                | "MAINTAINER"
                | "ONBUILD"
        )
    }
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

/// Renders events to stderr (or a given writer) in one [`Mode`].
pub struct Printer {
    mode: Mode,
    start: Instant,
    out: Arc<Mutex<Box<dyn Write + Send>>>,
    plain: Mutex<plain::Plain>,
    tty: Option<tty::Tty>,
}

impl Printer {
    pub fn new(mode: Mode) -> Printer {
        Printer::with_writer(mode, Box::new(std::io::stderr()))
    }

    /// A printer writing to `w`. In [`Mode::Tty`] the pane is redrawn by a timer thread (so timers move
    /// and a resized terminal is picked up on the next tick) and Ctrl-C ends the build as "canceled".
    pub fn with_writer(mode: Mode, w: Box<dyn Write + Send>) -> Printer {
        let out = Arc::new(Mutex::new(w));
        let tty = (mode == Mode::Tty).then(|| tty::Tty::start(out.clone()));
        Printer {
            mode,
            start: Instant::now(),
            out,
            plain: Mutex::new(plain::Plain::default()),
            tty,
        }
    }

    /// Colours the TTY pane (the CLI decides, from `--color` and NO_COLOR); off by default.
    pub fn set_color(&self, on: bool) {
        if let Some(t) = &self.tty {
            t.set_color(on);
        }
    }

    /// Draws the final state and stops the TTY pane's timer (also done on drop).
    pub fn finish(&self) {
        if let Some(t) = &self.tty {
            t.finish();
        }
    }
}

impl Drop for Printer {
    fn drop(&mut self) {
        self.finish();
    }
}

impl Progress for Printer {
    fn event(&self, e: Event) {
        match self.mode {
            Mode::Quiet => {}
            Mode::Tty => {
                if let Some(t) = &self.tty {
                    t.event(e);
                }
            }
            Mode::Json => {
                let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
                let _ = writeln!(out, "{}", json::line(&e, self.start));
                let _ = out.flush();
            }
            Mode::Plain => {
                let text = self
                    .plain
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .render(&e, self.start.elapsed().as_secs_f64());
                if !text.is_empty() {
                    let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
                    let _ = out.write_all(text.as_bytes());
                    let _ = out.flush();
                }
            }
        }
    }
}

/// Discards everything (library tests).
pub struct Silent;

impl Progress for Silent {
    fn event(&self, _e: Event) {}
}
