//! Rendering of errors and sizes for humans.

use std::fmt;
use std::process::ExitCode;

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
/// (1 for user errors, 2 when any link of the chain is [`Internal`]).
pub fn report_error(e: &anyhow::Error) -> ExitCode {
    eprintln!("error: {e}");
    for cause in e.chain().skip(1) {
        eprintln!("  caused by: {cause}");
    }
    if e.chain().any(|c| c.is::<Internal>()) {
        ExitCode::from(2)
    } else {
        ExitCode::from(1)
    }
}

/// Human sizes in decimal units like docker: `512 B`, `12.3 kB`, `4.5 MB`, `1.2 GB`.
#[allow(dead_code)] // used by subcommands as they land
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(999), "999 B");
        assert_eq!(human_size(12_300), "12.3 kB");
        assert_eq!(human_size(4_500_000), "4.5 MB");
    }
}
