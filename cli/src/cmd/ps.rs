//! `lamina ps`: list containers, with docker's STATUS wording (`Up 5 seconds (healthy)`,
//! `Exited (3) 2 minutes ago`), `-a -q -n/--last -l --no-trunc` and `--filter`
//! `status=|name=|label=|ancestor=|id=|exited=`.

use std::process::ExitCode;

use anyhow::bail;

use super::container::{inspect, state};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Show all containers (default: running only).
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Only print ids.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Show the N most recently created containers (all states).
    #[arg(short = 'n', long = "last", value_name = "N")]
    pub last: Option<usize>,
    /// Show the most recently created container (all states).
    #[arg(short = 'l', long)]
    pub latest: bool,
    /// Don't truncate ids and commands.
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Filter: status=created|running|paused|restarting|exited, name=SUBSTRING, label=KEY[=VALUE],
    /// ancestor=IMAGE, id=PREFIX, exited=CODE; repeated keys are alternatives, different keys all apply.
    #[arg(short = 'f', long = "filter", value_name = "KEY=VALUE")]
    pub filter: Vec<String>,
    /// Output format: table or json.
    #[arg(long, default_value = "table")]
    pub format: String,
}

/// `--filter` values by key.
#[derive(Default)]
struct Filters(std::collections::BTreeMap<String, Vec<String>>);

impl Filters {
    fn parse(args: &[String]) -> anyhow::Result<Filters> {
        let mut f = Filters::default();
        for a in args {
            let Some((k, v)) = a.split_once('=') else {
                bail!("invalid --filter {a:?}: expected KEY=VALUE");
            };
            if !["status", "name", "label", "ancestor", "id", "exited"].contains(&k) {
                bail!("invalid --filter key {k:?}");
            }
            f.0.entry(k.to_string()).or_default().push(v.to_string());
        }
        Ok(f)
    }

    fn matches(&self, rec: &state::Record) -> bool {
        self.0.iter().all(|(k, vals)| {
            vals.iter().any(|v| match k.as_str() {
                "status" => inspect::status_word(rec) == v,
                "name" => rec.meta.name.contains(v.as_str()),
                "id" => rec.meta.id.starts_with(v.as_str()),
                "ancestor" => rec.meta.image == *v || rec.meta.image.split(':').next() == Some(v.as_str()),
                "exited" => rec
                    .status
                    .as_ref()
                    .and_then(|s| s.outcome)
                    .filter(|_| !rec.active())
                    .is_some_and(|o| o.exit_code.to_string() == *v),
                "label" => match v.split_once('=') {
                    Some((lk, lv)) => rec.meta.labels.get(lk).is_some_and(|x| x == lv),
                    None => rec.meta.labels.contains_key(v.as_str()),
                },
                _ => false,
            })
        })
    }
}

pub fn run(cli: &crate::Cli, args: &Args) -> anyhow::Result<ExitCode> {
    let root = cli.store_root();
    let filters = Filters::parse(&args.filter)?;
    let last = if args.latest { Some(1) } else { args.last };
    // A status filter other than running, or -n, looks at every container.
    let all =
        args.all || last.is_some() || filters.0.contains_key("status") || filters.0.contains_key("exited");
    let mut rows = Vec::new();
    // Newest first (state::list's order).
    for rec in state::list(&root)? {
        let running = rec.active();
        if !running && rec.meta.auto_remove && rec.status.is_some() {
            // `run -d --rm`: nobody waits for it, so whoever notices it exited removes it.
            let _ = state::remove(&rec);
            continue;
        }
        if (!all && !running) || !filters.matches(&rec) {
            continue;
        }
        rows.push((status_text(&rec), rec));
    }
    if let Some(n) = last {
        rows.truncate(n);
    }
    let id = |r: &state::Record| {
        if args.no_trunc {
            r.meta.id.clone()
        } else {
            r.meta.id[..12].to_string()
        }
    };
    if args.quiet {
        for (_, r) in &rows {
            crate::outln!("{}", id(r));
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
                    "State": inspect::status_word(r), "Status": s, "Ports": r.meta.ports.join(", "),
                    "Labels": r.meta.labels, "Pid": r.pid(),
                })
            })
            .collect();
        crate::outln!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = crate::output::Table::new(
        &[
            "CONTAINER ID",
            "IMAGE",
            "COMMAND",
            "CREATED",
            "STATUS",
            "PORTS",
            "NAMES",
        ],
        &[false; 7],
    );
    for (s, r) in &rows {
        let cmd = r.meta.command.join(" ");
        let cmd = if args.no_trunc || cmd.chars().count() <= 20 {
            format!("\"{cmd}\"")
        } else {
            format!("\"{}…\"", cmd.chars().take(19).collect::<String>())
        };
        table.row(vec![
            id(r),
            truncate(&r.meta.image, 22),
            cmd,
            crate::output::human_ago_unix(r.meta.created as i64),
            s.clone(),
            r.meta.ports.join(", "),
            r.meta.name.clone(),
        ]);
    }
    crate::output::emit(&table.render());
    Ok(ExitCode::SUCCESS)
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let tail: Vec<char> = s.chars().rev().take(n - 1).collect();
        format!("…{}", tail.into_iter().rev().collect::<String>())
    }
}

/// docker's `N seconds` (no "ago") since Unix nanoseconds `ns`.
fn since(ns: Option<u64>) -> String {
    let secs = ns.map_or(0, |n| (n / 1_000_000_000) as i64);
    let ago = crate::output::human_ago_unix(secs);
    ago.strip_suffix(" ago").unwrap_or(&ago).to_string()
}

/// docker's STATUS column.
pub fn status_text(rec: &state::Record) -> String {
    let st = rec.status.as_ref();
    if rec.running() {
        let up = format!("Up {}", since(st.and_then(|s| s.started_at)));
        if rec.paused() {
            return format!("{up} (Paused)");
        }
        return match rec.health() {
            Some(h) if h.status == "starting" => format!("{up} (health: starting)"),
            Some(h) => format!("{up} ({})", h.status),
            None => up,
        };
    }
    let finished = || format!("{} ago", since(st.and_then(|s| s.finished_at)));
    if rec.restarting() {
        let n = st.and_then(|s| s.outcome).map_or(0, |o| o.exit_code);
        return format!("Restarting ({n}) {}", finished());
    }
    match st {
        Some(s) => match (&s.outcome, &s.error) {
            (Some(o), _) => format!("Exited ({}) {}", o.exit_code, finished()),
            (None, Some(_)) => format!("Failed {}", finished()),
            // Monitor gone without a final word (killed with SIGKILL).
            (None, None) => "Exited (unknown)".to_string(),
        },
        None => "Created".to_string(),
    }
}
