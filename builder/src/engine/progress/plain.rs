//! Plain progress (CI logs, `--progress plain`): one line per event, BuildKit's `#N` prefixes. Metadata
//! steps are folded away (BuildKit shows none), and a failed step prints one `ERROR` line: the failed
//! RUN's last lines are in the build error the CLI prints once at the end, after the live log.

use std::collections::BTreeSet;

use super::Event;

#[derive(Default)]
pub(super) struct Plain {
    /// Steps not shown (metadata-only), whose Done/Cached lines are skipped too.
    folded: BTreeSet<usize>,
}

impl Plain {
    /// The text for `e` (empty when nothing is shown); `t` is seconds since the build started.
    pub(super) fn render(&mut self, e: &Event, t: f64) -> String {
        match e {
            Event::Step {
                id,
                stage,
                index,
                total,
                line,
                text,
            } => {
                if Event::is_metadata_step(text) {
                    self.folded.insert(*id);
                    return String::new();
                }
                format!("#{id} [{stage} {index}/{total}] {text}  (Dockerfile:{line})\n")
            }
            Event::Cached { id } if !self.folded.contains(id) => format!("#{id} CACHED\n"),
            Event::Done { id, seconds } if !self.folded.contains(id) => format!("#{id} DONE {seconds:.1}s\n"),
            Event::Cached { .. } | Event::Done { .. } => String::new(),
            Event::Log { id, line } => format!("#{id} {t:>6.2} {line}\n"),
            Event::Failed { id, error } => {
                format!("#{id} ERROR: {}\n", error.lines().next().unwrap_or_default())
            }
            Event::Info { message } => format!("=> {message}\n"),
            Event::Warning { message } => format!("WARNING: {message}\n"),
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
                format!("=> built {manifest_digest} ({executed} steps run, {cached} cached){tagged}\n")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(id: usize, index: usize, text: &str) -> Event {
        Event::Step {
            id,
            stage: "stage-0".into(),
            index,
            total: 4,
            line: index,
            text: text.into(),
        }
    }

    #[test]
    fn metadata_steps_fold_and_errors_print_once() {
        let mut p = Plain::default();
        let mut out = String::new();
        for e in [
            step(1, 1, "FROM busybox"),
            Event::Done { id: 1, seconds: 0.0 },
            step(2, 2, "ENV A=1"),
            Event::Done { id: 2, seconds: 0.0 },
            step(3, 3, "RUN false"),
            Event::Log {
                id: 3,
                line: "oops".into(),
            },
            Event::Failed {
                id: 3,
                error: "Dockerfile:3: RUN failed\n--- last output lines ---\noops".into(),
            },
        ] {
            out.push_str(&p.render(&e, 1.0));
        }
        assert!(out.contains("#1 [stage-0 1/4] FROM busybox"), "{out}");
        assert!(!out.contains("ENV"), "metadata step shown: {out}");
        assert!(!out.contains("#2 DONE"), "{out}");
        assert_eq!(
            out.matches("oops").count(),
            1,
            "the failing RUN's output once: {out}"
        );
        assert!(out.contains("#3 ERROR: Dockerfile:3: RUN failed\n"), "{out}");
    }
}
