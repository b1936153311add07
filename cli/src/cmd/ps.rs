//! `lamina ps`: list containers.

use std::process::ExitCode;

use super::container::state;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Show all containers (default: running only).
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Only print ids.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Output format: table or json.
    #[arg(long, default_value = "table")]
    pub format: String,
}

pub fn run(cli: &crate::Cli, args: &Args) -> anyhow::Result<ExitCode> {
    let root = cli.store_root();
    let mut rows = Vec::new();
    for rec in state::list(&root)? {
        let running = rec.active();
        if !running && rec.meta.auto_remove && rec.status.is_some() {
            // `run -d --rm`: nobody waits for it, so whoever notices it exited removes it.
            let _ = state::remove(&rec);
            continue;
        }
        if !args.all && !running {
            continue;
        }
        rows.push((status_text(&rec), rec));
    }
    if args.quiet {
        for (_, r) in &rows {
            crate::outln!("{}", &r.meta.id[..12]);
        }
        return Ok(ExitCode::SUCCESS);
    }
    if args.format == "json" {
        let v: Vec<serde_json::Value> = rows
            .iter()
            .map(|(s, r)| {
                serde_json::json!({
                    "Id": r.meta.id, "Names": r.meta.name, "Image": r.meta.image,
                    "Command": r.meta.command.join(" "), "CreatedAt": r.meta.created,
                    "Status": s, "Ports": r.meta.ports.join(", "), "Pid": r.pid(),
                })
            })
            .collect();
        crate::outln!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    crate::outln!(
        "{:<14}{:<24}{:<24}{:<16}{:<26}{:<20}NAMES",
        "CONTAINER ID",
        "IMAGE",
        "COMMAND",
        "CREATED",
        "STATUS",
        "PORTS"
    );
    for (s, r) in &rows {
        let mut cmd = format!("\"{}\"", r.meta.command.join(" "));
        if cmd.len() > 22 {
            cmd = format!(
                "{}…\"",
                &cmd[..cmd.char_indices().nth(19).map(|(i, _)| i).unwrap_or(cmd.len())]
            );
        }
        crate::outln!(
            "{:<14}{:<24}{:<24}{:<16}{:<26}{:<20}{}",
            &r.meta.id[..12],
            truncate(&r.meta.image, 22),
            cmd,
            ago(r.meta.created),
            s,
            r.meta.ports.join(","),
            r.meta.name
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!(
            "…{}",
            s.chars()
                .rev()
                .take(n - 1)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<String>()
        )
    }
}

fn ago(t: u64) -> String {
    let d = state::now().saturating_sub(t);
    match d {
        0..60 => format!("{d} seconds ago"),
        60..3600 => format!("{} minutes ago", d / 60),
        3600..86400 => format!("{} hours ago", d / 3600),
        _ => format!("{} days ago", d / 86400),
    }
}

pub fn status_text(rec: &state::Record) -> String {
    if rec.running() {
        if rec.paused() {
            return "Up (Paused)".to_string();
        }
        return match rec.health() {
            Some(h) if h.status == "starting" => "Up (health: starting)".to_string(),
            Some(h) => format!("Up ({})", h.status),
            None => "Up".to_string(),
        };
    }
    if rec.restarting() {
        let n = rec
            .status
            .as_ref()
            .and_then(|s| s.outcome)
            .map_or(0, |o| o.exit_code);
        return format!("Restarting ({n})");
    }
    match &rec.status {
        Some(s) => match (&s.outcome, &s.error) {
            (Some(o), _) => format!("Exited ({})", o.exit_code),
            (None, Some(_)) => "Failed".to_string(),
            // Monitor gone without a final word (killed with SIGKILL).
            (None, None) => "Exited (unknown)".to_string(),
        },
        None => "Created".to_string(),
    }
}
