//! `lamina stats [--no-stream] [CONTAINER...]`: CPU, memory, network, block I/O and pids of running
//! containers from their cgroups, in docker's columns. CPU % is the use between two samples a
//! second apart, of one CPU (docker's convention: 200 % is two CPUs busy).

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use super::container::state;
use crate::output::human_size;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Print one sample and exit (default: a new table every second until interrupted).
    #[arg(long = "no-stream")]
    pub no_stream: bool,
    /// Show stopped containers too.
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Output format: table or json.
    #[arg(long, default_value = "table")]
    pub format: String,
    /// Container names or ids (default: every running one).
    pub containers: Vec<String>,
}

struct Sample {
    at: Instant,
    st: lamina_runner::cgroupfs::Stats,
    net: (u64, u64),
}

fn sample(rec: &state::Record) -> Option<Sample> {
    let cg = rec.cgroup()?;
    Some(Sample {
        at: Instant::now(),
        st: cg.stats(),
        net: rec.pid().map_or((0, 0), net_io),
    })
}

/// Bytes received and sent on every interface but loopback of the process's network namespace.
fn net_io(pid: i32) -> (u64, u64) {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/net/dev")) else {
        return (0, 0);
    };
    text.lines()
        .skip(2)
        .filter_map(|l| l.split_once(':'))
        .filter(|(ifname, _)| ifname.trim() != "lo")
        .fold((0, 0), |(rx, tx), (_, v)| {
            let f: Vec<u64> = v.split_whitespace().filter_map(|n| n.parse().ok()).collect();
            (
                rx + f.first().copied().unwrap_or(0),
                tx + f.get(8).copied().unwrap_or(0),
            )
        })
}

pub fn run(cli: &crate::Cli, args: &Args) -> anyhow::Result<ExitCode> {
    if args.no_stream {
        return once(cli, args);
    }
    let tty = std::io::IsTerminal::is_terminal(&std::io::stdout());
    loop {
        if tty {
            // Clear the screen and go home, as docker redraws its table.
            crate::output::emit("\x1b[2J\x1b[H");
        }
        let began = Instant::now();
        once(cli, args)?;
        // A sample with containers spans a second already; without any, wait one.
        std::thread::sleep(Duration::from_secs(1).saturating_sub(began.elapsed()));
    }
}

fn once(cli: &crate::Cli, args: &Args) -> anyhow::Result<ExitCode> {
    let root = cli.store_root();
    let recs: Vec<state::Record> = if args.containers.is_empty() {
        state::list(&root)?
            .into_iter()
            .filter(|r| args.all || r.running())
            .collect()
    } else {
        args.containers
            .iter()
            .map(|c| state::find(&root, c))
            .collect::<anyhow::Result<_>>()?
    };
    let first: BTreeMap<String, Sample> = recs
        .iter()
        .filter_map(|r| Some((r.meta.id.clone(), sample(r)?)))
        .collect();
    if !first.is_empty() {
        std::thread::sleep(Duration::from_secs(1));
    }
    let host_mem = host_memory();
    let mut rows = Vec::new();
    for r in &recs {
        let (a, b) = match (first.get(&r.meta.id), sample(r)) {
            (Some(a), Some(b)) => (Some(a), Some(b)),
            _ => (None, None),
        };
        let cpu = match (a, &b) {
            (Some(a), Some(b)) => {
                let wall = b.at.duration_since(a.at).as_nanos().max(1) as f64;
                b.st.cpu_ns.saturating_sub(a.st.cpu_ns) as f64 / wall * 100.0
            }
            _ => 0.0,
        };
        let st = b.as_ref().map(|s| s.st.clone()).unwrap_or_default();
        let net = b.as_ref().map_or((0, 0), |s| s.net);
        let limit = st.memory_limit.unwrap_or(host_mem);
        rows.push((r, cpu, st, net, limit));
    }
    if args.format == "json" {
        let v: Vec<serde_json::Value> = rows
            .iter()
            .map(|(r, cpu, st, net, limit)| {
                serde_json::json!({
                    "ID": &r.meta.id[..12], "Name": r.meta.name, "CPUPerc": format!("{cpu:.2}%"),
                    "MemUsage": st.memory, "MemLimit": limit, "NetInput": net.0, "NetOutput": net.1,
                    "BlockInput": st.block_read, "BlockOutput": st.block_write, "PIDs": st.pids,
                    "CPUNanos": st.cpu_ns,
                })
            })
            .collect();
        crate::outln!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    crate::outln!(
        "{:<15}{:<20}{:<9}{:<22}{:<9}{:<20}{:<20}PIDS",
        "CONTAINER ID",
        "NAME",
        "CPU %",
        "MEM USAGE / LIMIT",
        "MEM %",
        "NET I/O",
        "BLOCK I/O"
    );
    for (r, cpu, st, net, limit) in &rows {
        let mem_pct = if *limit > 0 {
            st.memory as f64 / *limit as f64 * 100.0
        } else {
            0.0
        };
        crate::outln!(
            "{:<15}{:<20}{:<9}{:<22}{:<9}{:<20}{:<20}{}",
            &r.meta.id[..12],
            r.meta.name,
            format!("{cpu:.2}%"),
            format!("{} / {}", human_size(st.memory), human_size(*limit)),
            format!("{mem_pct:.2}%"),
            format!("{} / {}", human_size(net.0), human_size(net.1)),
            format!("{} / {}", human_size(st.block_read), human_size(st.block_write)),
            st.pids
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// docker shows the host's memory as the limit of an unlimited container.
fn host_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}
