//! A container as `docker inspect` shows one: its record, its runner request and its monitor's
//! status in docker's field names (the fields lamina has; docker's zero time where it has none).

use std::collections::BTreeMap;

use lamina_runner::{Mount, Network, RunRequest};
use serde_json::{Value, json};

use super::state::{self, Record};

/// docker's "never" time.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// RFC 3339 with nanoseconds, as docker prints State times.
pub fn rfc3339_ns(ns: u64) -> String {
    let s = lamina_store::archive::rfc3339((ns / 1_000_000_000) as i64);
    format!("{}.{:09}Z", s.trim_end_matches('Z'), ns % 1_000_000_000)
}

/// docker's State.Status: created, running, paused, restarting, exited.
pub fn status_word(rec: &Record) -> &'static str {
    if rec.running() {
        if rec.paused() { "paused" } else { "running" }
    } else if rec.restarting() {
        "restarting"
    } else if rec.status.is_none() {
        "created"
    } else {
        "exited"
    }
}

pub fn document(rec: &Record, req: Option<&RunRequest>, ips: &BTreeMap<String, String>) -> Value {
    let m = &rec.meta;
    let st = rec.status.as_ref();
    let outcome = st.and_then(|s| s.outcome);
    let status = status_word(rec);
    let state = json!({
        "Status": status,
        "Running": status == "running" || status == "paused",
        "Paused": status == "paused",
        "Restarting": status == "restarting",
        "OOMKilled": outcome.is_some_and(|o| o.oom_killed),
        "Dead": false,
        "Pid": rec.pid().unwrap_or(0),
        "ExitCode": outcome.map_or(0, |o| o.exit_code),
        "Error": st.and_then(|s| s.error.clone()).unwrap_or_default(),
        "StartedAt": st.and_then(|s| s.started_at).map_or_else(|| ZERO_TIME.to_string(), rfc3339_ns),
        "FinishedAt": st
            .filter(|_| !rec.running())
            .and_then(|s| s.finished_at)
            .map_or_else(|| ZERO_TIME.to_string(), rfc3339_ns),
    });
    let mut ports = serde_json::Map::new();
    for p in &m.ports {
        // Recorded as `IP:HOST->CONTAINER/proto`.
        if let Some((host, ctr)) = p.split_once("->") {
            let (ip, port) = host.rsplit_once(':').unwrap_or(("", host));
            let list = ports.entry(ctr.to_string()).or_insert_with(|| json!([]));
            if let Value::Array(a) = list {
                a.push(json!({"HostIp": ip.trim_matches(['[', ']']), "HostPort": port}));
            }
        }
    }
    let networks: serde_json::Map<String, Value> = m
        .networks
        .iter()
        .map(|n| {
            let ip = ips.get(n).cloned().unwrap_or_default();
            (n.clone(), json!({"IPAddress": ip, "Aliases": [m.name.clone()]}))
        })
        .collect();
    let first_ip = m
        .networks
        .first()
        .and_then(|n| ips.get(n))
        .cloned()
        .unwrap_or_default();
    let argv = &m.command;
    let mut doc = json!({
        "Id": m.id,
        "Created": rfc3339_ns(m.created * 1_000_000_000),
        "Path": argv.first().cloned().unwrap_or_default(),
        "Args": argv.iter().skip(1).collect::<Vec<_>>(),
        "State": state,
        "Image": m.image,
        "Name": format!("/{}", m.name),
        "RestartCount": st.map_or(0, |s| s.restart_count),
        "Driver": "overlay",
        "LogPath": if m.detached { rec.dir.join(state::LOG_FILE).display().to_string() } else { String::new() },
        "NetworkSettings": {
            "Ports": ports.clone(),
            "IPAddress": first_ip,
            "Networks": networks,
        },
    });
    if let (Some(h), Some(Value::Object(st))) = (rec.health(), doc.get_mut("State")) {
        let log: Vec<Value> = h
            .log
            .iter()
            .map(|l| {
                json!({"Start": rfc3339_ns(l.start), "End": rfc3339_ns(l.end), "ExitCode": l.exit_code,
                       "Output": l.output})
            })
            .collect();
        st.insert(
            "Health".into(),
            json!({"Status": h.status, "FailingStreak": h.failing_streak, "Log": log}),
        );
    }
    if let (Some(req), Value::Object(o)) = (req, &mut doc) {
        o.insert("Config".into(), config(rec, req));
        o.insert("HostConfig".into(), host_config(rec, req, &ports));
        o.insert("Mounts".into(), mounts(&req.mounts));
    }
    doc
}

fn config(rec: &Record, req: &RunRequest) -> Value {
    let p = &req.process;
    json!({
        "Hostname": req.hostname.clone().unwrap_or_else(|| rec.meta.id[..12].to_string()),
        "User": p.user.clone().unwrap_or_default(),
        "Tty": p.tty,
        "Env": p.env,
        "Cmd": if rec.meta.cmd.is_empty() && rec.meta.entrypoint.is_empty() { p.args.clone() } else { rec.meta.cmd.clone() },
        "Entrypoint": (!rec.meta.entrypoint.is_empty()).then(|| rec.meta.entrypoint.clone()),
        "Image": rec.meta.image,
        "WorkingDir": p.cwd,
        "Labels": rec.meta.labels,
        "StopSignal": rec.meta.stop_signal.clone().unwrap_or_else(|| "SIGTERM".into()),
        "StopTimeout": rec.meta.stop_timeout,
        "Healthcheck": req.supervision.health.as_ref().map(|h| json!({
            "Test": std::iter::once("CMD".to_string()).chain(h.command.iter().cloned()).collect::<Vec<_>>(),
            "Interval": h.interval_ms * 1_000_000,
            "Timeout": h.timeout_ms * 1_000_000,
            "StartPeriod": h.start_period_ms * 1_000_000,
            "Retries": h.retries,
        })),
    })
}

fn host_config(rec: &Record, req: &RunRequest, ports: &serde_json::Map<String, Value>) -> Value {
    let c = &req.confinement;
    let (policy, retries) = match req.supervision.restart {
        lamina_runner::RestartPolicy::OnFailure { max_retries } => ("on-failure", max_retries.unwrap_or(0)),
        p => (p.name(), 0),
    };
    let network_mode = match req.network {
        Network::None => "none".to_string(),
        Network::Host => "host".to_string(),
        Network::Bridge => req
            .net
            .networks
            .first()
            .cloned()
            .unwrap_or_else(|| "bridge".into()),
    };
    let binds: Vec<String> = req
        .mounts
        .iter()
        .filter_map(|m| match m {
            Mount::Bind {
                source,
                destination,
                readonly,
            } => Some(format!(
                "{}:{destination}{}",
                source.display(),
                if *readonly { ":ro" } else { "" }
            )),
            Mount::Tmpfs { .. } => None,
        })
        .collect();
    json!({
        "NetworkMode": network_mode,
        "PortBindings": ports,
        "RestartPolicy": {"Name": policy, "MaximumRetryCount": retries},
        "AutoRemove": rec.meta.auto_remove,
        "Binds": binds,
        "ReadonlyRootfs": req.readonly_rootfs,
        "Memory": req.limits.memory.unwrap_or(0),
        "MemorySwap": c.memory_swap.unwrap_or(0),
        "NanoCpus": req.limits.cpus.map_or(0, |c| (c * 1e9) as u64),
        "PidsLimit": req.limits.pids,
        "CpusetCpus": c.cpuset_cpus.clone().unwrap_or_default(),
        "CpusetMems": c.cpuset_mems.clone().unwrap_or_default(),
        "BlkioWeight": c.blkio_weight.unwrap_or(0),
        "CgroupParent": c.cgroup_parent.clone().unwrap_or_default(),
        "CapAdd": c.cap_add,
        "CapDrop": c.cap_drop,
        "Privileged": c.privileged,
        "Init": req.supervision.init,
        "ShmSize": c.shm_size.unwrap_or(64 << 20),
        "ExtraHosts": req.net.extra_hosts.iter().map(|(n, ip)| format!("{n}:{ip}")).collect::<Vec<_>>(),
        "Dns": req.net.dns,
        "DnsSearch": req.net.dns_search,
        "DnsOptions": req.net.dns_options,
    })
}

fn mounts(ms: &[Mount]) -> Value {
    ms.iter()
        .map(|m| match m {
            Mount::Bind {
                source,
                destination,
                readonly,
            } => json!({
                "Type": "bind", "Source": source, "Destination": destination,
                "Mode": if *readonly { "ro" } else { "" }, "RW": !readonly, "Propagation": "rprivate",
            }),
            Mount::Tmpfs { destination, .. } => json!({
                "Type": "tmpfs", "Source": "", "Destination": destination, "Mode": "", "RW": true,
            }),
        })
        .collect()
}

/// Each network's address of container `id`, from the network leases (there while it runs).
pub fn addresses(root: &std::path::Path, id: &str) -> BTreeMap<String, String> {
    let nets = lamina_runner::network::Networks::for_store(root);
    let Ok(locked) = nets.lock() else {
        return BTreeMap::new();
    };
    locked
        .all_leases()
        .unwrap_or_default()
        .into_iter()
        .filter(|l| l.container_id == id)
        .map(|l| (l.network, l.ip.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn nanosecond_times() {
        assert_eq!(
            super::rfc3339_ns(1_700_000_000_123_456_789),
            "2023-11-14T22:13:20.123456789Z"
        );
    }
}
