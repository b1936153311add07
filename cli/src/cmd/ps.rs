//! `lamina ps`: list containers, like `docker ps`: docker's columns and `--format` fields, `--filter`
//! (status, name, label, ancestor, id, exited), `-q`, `--no-trunc`, `-a`, `-n/--last`, `-l`; STATUS
//! with health, pause and restarts.

use std::process::ExitCode;

use anyhow::bail;
use serde_json::json;

use super::container::state;
use crate::format::{Format, Listing};
use crate::output::{go_time, human_ago_unix, human_duration, unix_now};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Show all containers (default: running only).
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Only print ids.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Don't truncate IDs and commands.
    #[arg(long)]
    pub no_trunc: bool,
    /// Show the N most recently created containers (all states).
    #[arg(short = 'n', long = "last", value_name = "N")]
    pub last: Option<usize>,
    /// Show the most recently created container (all states).
    #[arg(short = 'l', long)]
    pub latest: bool,
    /// Filter as docker does: `status=created|running|exited`, `name=PART`, `label=KEY[=VALUE]`,
    /// `ancestor=IMAGE`, `id=PREFIX`. Repeated keys match any; different keys must all match.
    #[arg(short, long = "filter", value_name = "KEY=VALUE")]
    pub filters: Vec<String>,
    /// `table` (default), `json` (one object per line), `table TEMPLATE` or a Go template with docker's
    /// fields (`{{.ID}}`, `{{.Names}}`, `{{.Status}}`, …).
    #[arg(long)]
    pub format: Option<String>,
}

const LISTING: Listing = Listing {
    default_table: "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}",
    headers: &[
        ("ID", "CONTAINER ID"),
        ("Image", "IMAGE"),
        ("Command", "COMMAND"),
        ("CreatedAt", "CREATED AT"),
        ("RunningFor", "CREATED"),
        ("Ports", "PORTS"),
        ("State", "STATE"),
        ("Status", "STATUS"),
        ("Size", "SIZE"),
        ("Names", "NAMES"),
        ("Labels", "LABELS"),
        ("Mounts", "MOUNTS"),
        ("Networks", "NETWORKS"),
        ("LocalVolumes", "LOCAL VOLUMES"),
    ],
};

pub fn run(cli: &crate::Cli, args: &Args) -> anyhow::Result<ExitCode> {
    let format = Format::parse(args.format.as_deref(), &LISTING)?;
    let filters = parse_filters(&args.filters)?;
    let root = cli.store_root();
    let mut recs = Vec::new();
    let last = if args.latest { Some(1) } else { args.last };
    for rec in state::list(&root)? {
        // Restarting counts: its monitor is still at work.
        let running = rec.active();
        if !running && rec.meta.auto_remove && rec.status.is_some() {
            // `run -d --rm`: nobody waits for it, so whoever notices it exited removes it.
            let _ = state::remove(&rec);
            continue;
        }
        // A status filter asks for those states, stopped or not (as `docker ps --filter status=exited`).
        if !args.all
            && last.is_none()
            && !running
            && !filters.iter().any(|(k, _)| k == "status" || k == "exited")
        {
            continue;
        }
        recs.push(rec);
    }
    let ancestors = ancestor_ids(cli, &filters);
    recs.retain(|r| matches(r, &filters, &ancestors, cli));
    // state::list is newest first.
    if let Some(n) = last {
        recs.truncate(n);
    }
    if args.quiet {
        for r in &recs {
            crate::outln!("{}", id(&r.meta.id, args.no_trunc));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<serde_json::Value> = recs.iter().map(|r| fields(r, args.no_trunc)).collect();
    crate::out!("{}", format.render(&rows, &LISTING)?);
    Ok(ExitCode::SUCCESS)
}

fn id(full: &str, no_trunc: bool) -> String {
    if no_trunc {
        full.to_owned()
    } else {
        full.chars().take(12).collect()
    }
}

/// docker's State: created, running, paused, restarting, exited.
fn state_name(rec: &state::Record) -> &'static str {
    super::container::inspect::status_word(rec)
}

/// When the monitor last wrote the status (at start while running, at exit after): the `Up …` and
/// `Exited (n) … ago` times.
fn status_time(rec: &state::Record) -> Option<i64> {
    let m = std::fs::metadata(rec.dir.join("status.json"))
        .ok()?
        .modified()
        .ok()?;
    Some(m.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs() as i64)
}

/// Docker's STATUS: `Up 5 seconds (healthy)`, `Up 2 minutes (Paused)`, `Restarting (1) 1 second
/// ago`, `Exited (0) 3 minutes ago`, `Created`.
pub fn status_text(rec: &state::Record) -> String {
    let st = rec.status.as_ref();
    let secs = |ns: Option<u64>| ns.map(|n| (n / 1_000_000_000) as i64);
    if rec.running() {
        let up = match secs(st.and_then(|s| s.started_at)).or_else(|| status_time(rec)) {
            Some(t) => format!("Up {}", human_duration(unix_now() - t)),
            None => "Up".to_owned(),
        };
        if rec.paused() {
            return format!("{up} (Paused)");
        }
        return match rec.health() {
            Some(h) if h.status == "starting" => format!("{up} (health: starting)"),
            Some(h) => format!("{up} ({})", h.status),
            None => up,
        };
    }
    let since = secs(st.and_then(|s| s.finished_at)).or_else(|| status_time(rec));
    let ago = since.map_or_else(String::new, |t| format!(" {}", human_ago_unix(t)));
    if rec.restarting() {
        let n = st.and_then(|s| s.outcome).map_or(0, |o| o.exit_code);
        return format!("Restarting ({n}){ago}");
    }
    match &rec.status {
        Some(s) => match (&s.outcome, &s.error) {
            (Some(o), _) => format!("Exited ({}){ago}", o.exit_code),
            (None, Some(_)) => "Failed".to_string(),
            // Monitor gone without a final word (killed with SIGKILL).
            (None, None) => format!("Exited (unknown){ago}"),
        },
        None => "Created".to_string(),
    }
}

/// Docker's fields of a container (strings, as `docker ps --format json` prints them).
fn fields(r: &state::Record, no_trunc: bool) -> serde_json::Value {
    let cmd = r.meta.command.join(" ");
    let cmd = if no_trunc || cmd.chars().count() <= 20 {
        cmd
    } else {
        cmd.chars().take(19).collect::<String>() + "…"
    };
    let created = r.meta.created as i64;
    json!({
        "Command": format!("{cmd:?}"),
        "CreatedAt": go_time(created),
        "ID": id(&r.meta.id, no_trunc),
        "Image": r.meta.image,
        "Labels": r
            .meta
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(","),
        "LocalVolumes": "0",
        "Mounts": "",
        "Names": r.meta.name,
        "Networks": r.meta.networks.join(","),
        // Docker 20.10 and 26 print it null for a local container.
        "Platform": null,
        "Ports": r.meta.ports.join(", "),
        "RunningFor": human_ago_unix(created),
        "Size": "0B",
        "State": state_name(r),
        "Status": status_text(r),
    })
}

fn parse_filters(given: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    given
        .iter()
        .map(|f| {
            let Some((k, v)) = f.split_once('=') else {
                bail!("bad format of filter (expected name=value): {f}");
            };
            let k = k.trim().to_ascii_lowercase();
            match k.as_str() {
                "status"
                    if !matches!(
                        v,
                        "created" | "running" | "exited" | "paused" | "restarting" | "removing" | "dead"
                    ) =>
                {
                    bail!("invalid filter 'status={v}'")
                }
                "status" | "name" | "label" | "ancestor" | "id" | "exited" => Ok((k, v.to_owned())),
                _ => bail!("invalid filter '{k}': ps takes status, name, label, ancestor, id, exited"),
            }
        })
        .collect()
}

/// The image IDs `ancestor=` filters name (an image that isn't in the store matches by name only).
fn ancestor_ids(cli: &crate::Cli, filters: &[(String, String)]) -> Vec<lamina_store::Digest> {
    let Ok(store) = super::open_store(cli) else {
        return Vec::new();
    };
    filters
        .iter()
        .filter(|(k, _)| k == "ancestor")
        .filter_map(|(_, v)| image_id(&store, v))
        .collect()
}

fn image_id(store: &lamina_store::Store, name: &str) -> Option<lamina_store::Digest> {
    let found = store.resolve(name).ok()?;
    Some(store.load_image(found.digest()).ok()?.config_digest)
}

fn matches(
    r: &state::Record,
    filters: &[(String, String)],
    ancestors: &[lamina_store::Digest],
    cli: &crate::Cli,
) -> bool {
    let any = |key: &str, f: &dyn Fn(&str) -> bool| {
        let mut given = filters.iter().filter(|(k, _)| k == key).peekable();
        given.peek().is_none() || given.any(|(_, v)| f(v))
    };
    let image = std::cell::OnceCell::new();
    any("status", &|v| v == state_name(r))
        && any("name", &|v| r.meta.name.contains(v))
        && any("id", &|v| r.meta.id.starts_with(v))
        && any("exited", &|v| {
            r.status
                .as_ref()
                .and_then(|s| s.outcome)
                .filter(|_| !r.active())
                .is_some_and(|o| o.exit_code.to_string() == v)
        })
        && any("label", &|v| match v.split_once('=') {
            Some((k, want)) => r.meta.labels.get(k).is_some_and(|have| have == want),
            None => r.meta.labels.contains_key(v),
        })
        && any("ancestor", &|v| {
            r.meta.image == v
                || image
                    .get_or_init(|| {
                        super::open_store(cli)
                            .ok()
                            .and_then(|s| image_id(&s, &r.meta.image))
                    })
                    .as_ref()
                    .is_some_and(|d| ancestors.contains(d))
        })
}
