//! `lamina network create|ls|inspect|rm|connect|disconnect|prune`: the store's networks
//! (`lamina_runner::network`).

use std::net::Ipv4Addr;
use std::os::fd::AsFd;
use std::process::ExitCode;

use anyhow::Context;
use lamina_runner::network::{self, CreateOptions, NetworkRecord, Networks, Subnet};

use super::container::state;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(clap::Subcommand, Debug)]
pub enum Cmd {
    /// Create a network (a bridge with its own subnet; NAT outbound unless --internal).
    Create {
        /// IPv4 subnet in CIDR form (default: a free /16 from 10.88.0.0 up).
        #[arg(long)]
        subnet: Option<Subnet>,
        /// Gateway address (default: the subnet's first host address).
        #[arg(long)]
        gateway: Option<Ipv4Addr>,
        /// No outbound access: no NAT, no forwarding off the bridge.
        #[arg(long)]
        internal: bool,
        name: String,
    },
    /// List networks.
    #[command(alias = "list")]
    Ls {
        /// Only print network IDs.
        #[arg(short = 'q', long)]
        quiet: bool,
        /// Don't truncate network IDs.
        #[arg(long)]
        no_trunc: bool,
        /// `table` (default), `json` (one object per line), `table TEMPLATE` or a Go template with docker's
        /// fields (ID, Name, Driver, Scope, IPv6, Internal, Labels, CreatedAt) and lamina's Bridge, Subnet,
        /// Containers.
        #[arg(long)]
        format: Option<String>,
    },
    /// Show networks as JSON, with their containers.
    Inspect {
        #[arg(required = true)]
        networks: Vec<String>,
    },
    /// Remove networks (refused while containers use them).
    #[command(alias = "remove")]
    Rm {
        #[arg(required = true)]
        networks: Vec<String>,
    },
    /// Connect a running container to a network (a new ethN).
    Connect {
        /// Another name peers resolve to the container on this network.
        #[arg(long)]
        alias: Vec<String>,
        network: String,
        container: String,
    },
    /// Disconnect a running container from a network.
    Disconnect { network: String, container: String },
    /// Remove user networks without containers and take down idle bridges.
    Prune,
}

const LS_LISTING: crate::format::Listing = crate::format::Listing {
    default_table: "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}",
    headers: &[
        ("ID", "NETWORK ID"),
        ("Name", "NAME"),
        ("Driver", "DRIVER"),
        ("Scope", "SCOPE"),
        ("IPv6", "IPV6"),
        ("Internal", "INTERNAL"),
        ("Labels", "LABELS"),
        ("CreatedAt", "CREATED AT"),
        ("Bridge", "BRIDGE"),
        ("Subnet", "SUBNET"),
        ("Containers", "CONTAINERS"),
    ],
};

pub fn run(cli: &crate::Cli, args: &Args) -> anyhow::Result<ExitCode> {
    let root = cli.store_root();
    let nets = Networks::for_store(&root);
    match &args.command {
        Cmd::Create {
            subnet,
            gateway,
            internal,
            name,
        } => {
            let rec = nets.lock()?.create(CreateOptions {
                name: name.clone(),
                subnet: *subnet,
                gateway: *gateway,
                internal: *internal,
            })?;
            crate::outln!("{}", rec.id);
        }
        Cmd::Ls {
            quiet,
            no_trunc,
            format,
        } => {
            let format = crate::format::Format::parse(format.as_deref(), &LS_LISTING)?;
            network::reclaim(&nets)?;
            let locked = nets.lock()?;
            let recs = locked.records()?;
            let id = |r: &network::NetworkRecord| -> String {
                if *no_trunc {
                    r.id.clone()
                } else {
                    r.id.chars().take(12).collect()
                }
            };
            if *quiet {
                for r in &recs {
                    crate::outln!("{}", id(r));
                }
            } else {
                let mut rows = Vec::new();
                for r in &recs {
                    rows.push(serde_json::json!({
                        "CreatedAt": crate::output::go_time(r.created as i64),
                        "Driver": "bridge",
                        "ID": id(r),
                        "IPv6": "false",
                        "Internal": r.internal.to_string(),
                        "Labels": "",
                        "Name": r.name,
                        "Scope": "local",
                        "Bridge": r.bridge,
                        "Subnet": r.subnet.to_string(),
                        "Containers": locked.leases(&r.name)?.len().to_string(),
                    }));
                }
                crate::out!("{}", format.render(&rows, &LS_LISTING)?);
            }
        }
        Cmd::Inspect { networks } => {
            network::reclaim(&nets)?;
            let locked = nets.lock()?;
            let mut out = Vec::new();
            for n in networks {
                let rec = locked.get(n)?;
                out.push(json(&rec, &locked.leases(n)?));
            }
            crate::outln!("{}", serde_json::to_string_pretty(&out)?);
        }
        Cmd::Rm { networks } => {
            for n in networks {
                network::remove(&nets, n)?;
                crate::outln!("{n}");
            }
        }
        Cmd::Connect {
            alias,
            network: net,
            container,
        } => {
            let rec = state::find(&root, container)?;
            let pid = rec
                .pid()
                .with_context(|| format!("container {container} is not running"))?;
            let ns_path = format!("/proc/{pid}/ns/net");
            let ns = std::fs::File::open(&ns_path).with_context(|| format!("opening {ns_path}"))?;
            let lease = network::connect(&nets, net, &rec.meta.id, pid, ns.as_fd(), alias)?;
            let mut meta = rec.meta.clone();
            meta.networks.push(net.clone());
            state::write_meta(&rec.dir, &meta)?;
            crate::outln!("{} {}", lease.ifname, lease.ip);
        }
        Cmd::Disconnect {
            network: net,
            container,
        } => {
            let rec = state::find(&root, container)?;
            network::disconnect(&nets, net, &rec.meta.id)?;
            let mut meta = rec.meta.clone();
            meta.networks.retain(|n| n != net);
            state::write_meta(&rec.dir, &meta)?;
        }
        Cmd::Prune => {
            let locked = nets.lock()?;
            for name in network::remove_idle_bridges(&locked)? {
                if name != network::DEFAULT_NETWORK {
                    locked.remove(&name)?;
                    crate::outln!("{name}");
                }
            }
            // User networks whose bridge was never made (created, never used).
            for rec in locked.records()? {
                if rec.name != network::DEFAULT_NETWORK && locked.leases(&rec.name)?.is_empty() {
                    locked.remove(&rec.name)?;
                    crate::outln!("{}", rec.name);
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn json(r: &NetworkRecord, leases: &[network::Lease]) -> serde_json::Value {
    let containers: serde_json::Map<String, serde_json::Value> = leases
        .iter()
        .map(|l| {
            (
                l.container_id.clone(),
                serde_json::json!({
                    "Names": l.names, "IPv4Address": format!("{}/{}", l.ip, r.subnet.prefix),
                    "Interface": l.ifname, "HostInterface": l.host_veth,
                }),
            )
        })
        .collect();
    serde_json::json!({
        "Name": r.name, "Id": r.id, "Driver": "bridge", "Bridge": r.bridge,
        "Subnet": r.subnet.to_string(), "Gateway": r.gateway.to_string(),
        "Internal": r.internal, "Created": r.created, "Containers": containers,
    })
}
