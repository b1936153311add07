//! `lamina system info` (also `lamina info`): the isolation in effect and why (root, rootless with a
//! range, single id, inside a container), with the store root.
//!
//! `lamina system df`: space used by kind (images, containers, cache mounts as docker's "Local Volumes",
//! build cache, context memos, and what nothing references), as `docker system df` prints it.

use std::collections::BTreeSet;
use std::process::ExitCode;
use std::time::SystemTime;

use lamina_store::df::{Usage, usage};

use crate::output::{Table, human_ago_unix, human_size};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: Sub,
}

#[derive(clap::Subcommand, Debug)]
enum Sub {
    /// Show disk usage by kind.
    Df(DfArgs),
    /// Show the isolation in effect (root, rootless, single id, inside a container) and why.
    Info(InfoArgs),
}

#[derive(clap::Args, Debug)]
pub struct InfoArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = super::images::ReportFormat::Table)]
    format: super::images::ReportFormat,
}

#[derive(clap::Args, Debug)]
struct DfArgs {
    /// List every item of each kind.
    #[arg(short, long)]
    verbose: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = super::images::ReportFormat::Table)]
    format: super::images::ReportFormat,
}

pub fn run(cli: &crate::Cli, args: &Args) -> anyhow::Result<ExitCode> {
    match &args.command {
        Sub::Df(a) => df(cli, a),
        Sub::Info(a) => info(cli, a),
    }
}

pub fn info(cli: &crate::Cli, args: &InfoArgs) -> anyhow::Result<ExitCode> {
    let mut report = lamina_runner::isolation_report();
    let root = cli.store_root();
    if report.isolation.in_user_namespace() && on_overlayfs(&root) {
        report.notes.push(format!(
            "the store {} is on overlayfs (a container's own rootfs), which cannot be an overlay upper \
             dir: RUN steps will fail; mount a volume there (an emptyDir in a pod)",
            root.display()
        ));
    }
    if args.format == super::images::ReportFormat::Json {
        let mut v = serde_json::to_value(&report)?;
        v["store_root"] = serde_json::json!(root);
        crate::outln!("{}", serde_json::to_string(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    let mode = match &report.isolation {
        lamina_runner::userns::Isolation::Root => "root",
        lamina_runner::userns::Isolation::Rootless { .. } => "rootless (subordinate range)",
        lamina_runner::userns::Isolation::SingleId { .. } => "rootless (single id)",
        lamina_runner::userns::Isolation::Unprivileged { .. } => "unprivileged (no user namespace)",
    };
    let mut out = format!(
        "Isolation:       {mode}\nHost uid:        {}\nContainer:       {}\nPID namespace:   {}\n\
         Limits enforced: {}\nDefault network: {}\nStore root:      {}\n",
        report.host_uid,
        report.container.as_deref().unwrap_or("no"),
        if report.pid_namespace { "yes" } else { "no" },
        if report.limits_enforced { "yes" } else { "no" },
        report.default_network,
        root.display()
    );
    for n in &report.notes {
        out += &format!("  - {n}\n");
    }
    crate::output::emit(&out);
    Ok(ExitCode::SUCCESS)
}

fn percent(part: u64, whole: u64) -> String {
    (part * 100)
        .checked_div(whole)
        .map_or_else(String::new, |p| format!(" ({p}%)"))
}

fn ago(t: Option<SystemTime>) -> String {
    t.and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map_or_else(|| "N/A".to_owned(), |d| human_ago_unix(d.as_secs() as i64))
}

fn df(cli: &crate::Cli, args: &DfArgs) -> anyhow::Result<ExitCode> {
    let store = super::open_store(cli)?;
    let running: BTreeSet<String> = super::container::state::list(store.root())?
        .into_iter()
        .filter(|r| r.running())
        .filter_map(|r| r.dir.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    let rows = usage(&store, &running)?;
    if args.format == super::images::ReportFormat::Json {
        // One object per line, as `docker system df --format json` prints; byte counts added for scripts.
        for r in &rows {
            let mut v = serde_json::json!({
                "Type": r.kind.label(),
                "TotalCount": r.total().to_string(),
                "Active": r.active().to_string(),
                "Size": human_size(r.size()),
                "Reclaimable": format!("{}{}", human_size(r.reclaimable), percent(r.reclaimable, r.size())),
                "SizeBytes": r.size(),
                "ReclaimableBytes": r.reclaimable,
            });
            if args.verbose {
                v["Items"] = r
                    .items
                    .iter()
                    .map(|i| {
                        serde_json::json!({"Name": i.name, "Size": i.size, "Active": i.active,
                            "LastUsed": i.last_used.and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok()).map(|d| d.as_secs()),
                            "Description": i.description})
                    })
                    .collect();
            }
            crate::outln!("{}", serde_json::to_string(&v)?);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut t = Table::new(
        &["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"],
        &[false, true, true, true, true],
    );
    for r in &rows {
        t.row(vec![
            r.kind.label().to_owned(),
            r.total().to_string(),
            r.active().to_string(),
            human_size(r.size()),
            format!(
                "{}{}",
                human_size(r.reclaimable),
                percent(r.reclaimable, r.size())
            ),
        ]);
    }
    crate::output::emit(&t.render());
    if args.verbose {
        for r in &rows {
            verbose(r);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn verbose(r: &Usage) {
    let mut t = Table::new(
        &["NAME", "SIZE", "ACTIVE", "LAST USED", "DESCRIPTION"],
        &[false, true, false, false, false],
    );
    for i in &r.items {
        t.row(vec![
            i.name.clone(),
            human_size(i.size),
            if i.active { "yes" } else { "no" }.to_owned(),
            ago(i.last_used),
            i.description.clone(),
        ]);
    }
    crate::output::emit(&format!("\n{} space usage:\n\n{}", r.kind.label(), t.render()));
}

/// Is `path` (or its nearest existing ancestor) on overlayfs?
fn on_overlayfs(path: &std::path::Path) -> bool {
    const OVERLAYFS_SUPER_MAGIC: i64 = 0x794c_7630;
    path.ancestors()
        .find_map(|p| rustix::fs::statfs(p).ok())
        .is_some_and(|s| s.f_type == OVERLAYFS_SUPER_MAGIC)
}
