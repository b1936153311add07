//! Metadata instructions: how each one changes the image config, the history entry it leaves, and the
//! canonical text of an instruction for cache keys.

use lamina_store::config::{ContainerConfig, Healthcheck, History};
use serde_json::Value;

use super::BuildError;
use crate::dockerfile::{Command, Instruction, Kind};

/// The default SHELL.
pub fn default_shell() -> Vec<String> {
    vec!["/bin/sh".into(), "-c".into()]
}

pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Stable text of an instruction for cache keys: its JSON without source positions, so moving a line
/// doesn't invalidate the cache.
pub fn canonical(instr: &Instruction) -> String {
    fn strip(v: &mut Value) {
        match v {
            Value::Object(m) => {
                m.retain(|k, _| !k.ends_with("span"));
                m.values_mut().for_each(strip);
            }
            Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let mut v = serde_json::to_value(instr).unwrap_or(Value::Null);
    strip(&mut v);
    v.to_string()
}

/// A command as the config stores it: exec form verbatim, shell form wrapped in the SHELL.
pub fn command_argv(cmd: &Command, shell: &[String]) -> Vec<String> {
    match cmd {
        Command::Exec(words) => words.iter().map(|w| w.value.clone()).collect(),
        Command::Shell(w) => {
            let mut v = shell.to_vec();
            v.push(w.value.clone());
            v
        }
    }
}

/// Sets `KEY=value` in a docker env list, replacing an existing entry.
pub fn set_env(env: &mut Vec<String>, key: &str, value: &str) {
    let entry = format!("{key}={value}");
    match env
        .iter_mut()
        .find(|e| e.split_once('=').map(|(k, _)| k) == Some(key) || *e == key)
    {
        Some(e) => *e = entry,
        None => env.push(entry),
    }
}

pub fn env_pairs(env: &[String]) -> Vec<(String, String)> {
    env.iter()
        .map(|e| match e.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (e.clone(), String::new()),
        })
        .collect()
}

/// Go-style duration (`30s`, `1m30s`, `500ms`, `1h`) in nanoseconds.
pub fn parse_duration(s: &str) -> Option<i64> {
    if s == "0" {
        return Some(0);
    }
    let mut total: f64 = 0.0;
    let mut rest = s;
    while !rest.is_empty() {
        let num_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let num: f64 = rest[..num_end].parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult = match &rest[..unit_end] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total += num * mult;
        rest = &rest[unit_end..];
    }
    Some(total as i64)
}

/// Per-stage state the metadata instructions need beyond the config.
#[derive(Clone, Debug, Default)]
pub struct StageMeta {
    /// CMD was set in this stage (then ENTRYPOINT doesn't reset it).
    pub cmd_set: bool,
}

/// Applies a metadata instruction to `cfg`. Returns false for instructions that are not metadata
/// (RUN, COPY, ADD, FROM) or that have effects beyond the config (WORKDIR also creates its dir: the caller
/// does that after this call).
pub fn apply(
    cfg: &mut ContainerConfig,
    meta: &mut StageMeta,
    instr: &Instruction,
    line: usize,
) -> Result<bool, BuildError> {
    let shell = cfg.shell.clone().unwrap_or_else(default_shell);
    match &instr.kind {
        Kind::Env { vars } => {
            for kv in vars {
                set_env(&mut cfg.env, &kv.key.value, &kv.value.value);
            }
        }
        Kind::Label { labels } => {
            for kv in labels {
                cfg.labels.insert(kv.key.value.clone(), kv.value.value.clone());
            }
        }
        Kind::Maintainer { .. } | Kind::Arg { .. } => {}
        Kind::Cmd { command } => {
            cfg.cmd = Some(command_argv(command, &shell));
            meta.cmd_set = true;
        }
        Kind::Entrypoint { command } => {
            cfg.entrypoint = Some(command_argv(command, &shell));
            if !meta.cmd_set {
                cfg.cmd = None;
            }
        }
        Kind::Expose { ports } => {
            for p in ports {
                // The front end split and checked every spec; ranges expand to one entry per port, like docker.
                let keys = crate::dockerfile::values::exposed_ports_checked(&p.value).map_err(|_| {
                    BuildError::BadValue {
                        line,
                        what: "EXPOSE port",
                        value: p.value.clone(),
                    }
                })?;
                for key in keys {
                    cfg.exposed_ports.insert(key, Value::Object(Default::default()));
                }
            }
        }
        Kind::Volume { paths } => {
            for p in paths {
                cfg.volumes
                    .insert(p.value.clone(), Value::Object(Default::default()));
            }
        }
        Kind::User { user } => cfg.user = Some(user.value.clone()).filter(|u| !u.is_empty()),
        Kind::Workdir { path } => {
            let cur = cfg.working_dir.clone().unwrap_or_else(|| "/".into());
            cfg.working_dir = Some(join_workdir(&cur, &path.value));
        }
        Kind::Stopsignal { signal } => cfg.stop_signal = Some(signal.value.clone()),
        Kind::Shell { shell } => cfg.shell = Some(shell.iter().map(|w| w.value.clone()).collect()),
        Kind::Onbuild { expression, .. } => {
            cfg.on_build.get_or_insert_with(Vec::new).push(expression.clone())
        }
        Kind::Healthcheck(h) => {
            let dur = |w: &Option<crate::dockerfile::Word>,
                       what: &'static str|
             -> Result<Option<i64>, BuildError> {
                match w {
                    None => Ok(None),
                    Some(w) => parse_duration(&w.value)
                        .map(Some)
                        .ok_or_else(|| BuildError::BadValue {
                            line,
                            what,
                            value: w.value.clone(),
                        }),
                }
            };
            cfg.healthcheck = Some(match &h.command {
                None => Healthcheck {
                    test: vec!["NONE".into()],
                    ..Default::default()
                },
                Some(cmd) => Healthcheck {
                    test: match cmd {
                        Command::Exec(w) => std::iter::once("CMD".to_string())
                            .chain(w.iter().map(|w| w.value.clone()))
                            .collect(),
                        Command::Shell(w) => vec!["CMD-SHELL".into(), w.value.clone()],
                    },
                    interval: dur(&h.interval, "HEALTHCHECK --interval")?,
                    timeout: dur(&h.timeout, "HEALTHCHECK --timeout")?,
                    start_period: dur(&h.start_period, "HEALTHCHECK --start-period")?,
                    start_interval: dur(&h.start_interval, "HEALTHCHECK --start-interval")?,
                    retries: match &h.retries {
                        None => None,
                        Some(w) => Some(w.value.parse().map_err(|_| BuildError::BadValue {
                            line,
                            what: "HEALTHCHECK --retries",
                            value: w.value.clone(),
                        })?),
                    },
                    ..Default::default()
                },
            });
        }
        Kind::From { .. } | Kind::Run { .. } | Kind::Copy(_) | Kind::Add(_) => return Ok(false),
    }
    Ok(true)
}

/// WORKDIR semantics: absolute replaces, relative appends; the result is cleaned.
pub fn join_workdir(cur: &str, path: &str) -> String {
    let joined = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("{cur}/{path}")
    };
    let comps = super::view::clean_components(&joined);
    format!("/{}", comps.join("/"))
}

/// The history `created_by` BuildKit writes for an instruction (`RUN |1 A=b /bin/sh -c …`, `COPY … # buildkit`).
pub fn created_by(
    instr: &Instruction,
    text: String,
    shell: &[String],
    run_args: &[(String, String)],
) -> String {
    match &instr.kind {
        Kind::Run { command, .. } => {
            let argv = command_argv(command, shell).join(" ");
            let args = if run_args.is_empty() {
                String::new()
            } else {
                let list: Vec<String> = run_args.iter().map(|(k, v)| format!("{k}={v}")).collect();
                format!("|{} {} ", run_args.len(), list.join(" "))
            };
            format!("RUN {args}{argv} # buildkit")
        }
        Kind::Copy(_) | Kind::Add(_) => format!("{text} # buildkit"),
        // With the values expanded, as BuildKit writes them (`ENV V=1.2`, not `ENV V=${VERSION}`).
        Kind::Env { vars } if !vars.is_empty() => format!("ENV {}", key_values(vars)),
        Kind::Label { labels } if !labels.is_empty() => format!("LABEL {}", key_values(labels)),
        _ => text,
    }
}

fn key_values(kvs: &[crate::dockerfile::KeyValue]) -> String {
    kvs.iter()
        .map(|kv| format!("{}={}", kv.key.value, kv.value.value))
        .collect::<Vec<_>>()
        .join(" ")
}

/// What a step says in progress and history: an ONBUILD trigger's own text (its span is the FROM's),
/// else its Dockerfile text.
pub fn step_text(step: &crate::dockerfile::Step, source: &str) -> String {
    match &step.trigger {
        Some(t) => t.clone(),
        None => instruction_text(&step.instruction, source),
    }
}

/// The instruction's source text on one line (continuations joined).
pub fn instruction_text(instr: &Instruction, source: &str) -> String {
    let (a, b) = (instr.span.start.line as usize, instr.span.end.line as usize);
    let lines: Vec<&str> = source
        .lines()
        .skip(a.saturating_sub(1))
        .take(b.saturating_sub(a) + 1)
        .collect();
    let mut out = String::new();
    for l in lines {
        let l = l.trim();
        if l.starts_with('#') {
            continue;
        }
        match l.strip_suffix('\\') {
            Some(x) => {
                out.push_str(x.trim_end());
                out.push(' ');
            }
            None => {
                out.push_str(l);
                break;
            }
        }
    }
    if out.is_empty() {
        instr.keyword.to_string()
    } else {
        out.trim().to_string()
    }
}

/// A history entry.
pub fn history(created: &str, created_by: String, empty_layer: bool) -> History {
    History {
        created: Some(created.to_string()),
        created_by: Some(created_by),
        comment: Some("buildkit.dockerfile.v0".into()),
        empty_layer,
        ..Default::default()
    }
}

/// Gives history entries without a time one, as BuildKit's image exporter does: an entry before the first
/// timed one after a gap takes that time, later ones the time of the entry before them. Metadata steps have
/// no time of their own, so a fully cached rebuild (whose layer entries carry their cache records' times)
/// writes the same history, hence the same image ID. Returns the last entry's time: the image's `created`.
pub fn fill_history_times(history: &mut [History]) -> Option<String> {
    let mut created: Option<String> = None;
    let mut gap = false;
    for h in history.iter() {
        match &h.created {
            Some(t) => {
                created = Some(t.clone());
                if gap {
                    break;
                }
            }
            None => gap = true,
        }
    }
    gap = false;
    for h in history.iter_mut() {
        match &h.created {
            Some(t) if gap => created = Some(t.clone()),
            Some(_) => {}
            None => {
                gap = true;
                h.created = created.clone();
            }
        }
    }
    history.last().and_then(|h| h.created.clone())
}

/// RFC 3339 UTC time of unix seconds, as docker writes `created`.
pub fn rfc3339(secs: i64, nanos: u32) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    let base = format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    );
    if nanos == 0 {
        format!("{base}Z")
    } else {
        format!("{base}.{nanos:09}Z")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn untimed_history_entries_take_their_neighbours_times() {
        let h = |t: Option<&str>| History {
            created: t.map(str::to_owned),
            ..Default::default()
        };
        // base entry, ENV (untimed), RUN, LABEL (untimed), COPY, CMD (untimed)
        let mut hist = vec![
            h(Some("base")),
            h(None),
            h(Some("run")),
            h(None),
            h(Some("copy")),
            h(None),
        ];
        let last = fill_history_times(&mut hist);
        let got: Vec<_> = hist.iter().map(|e| e.created.as_deref().unwrap()).collect();
        // Before the first new layer: that layer's time (not the base's); after it: the previous layer's.
        assert_eq!(got, ["base", "run", "run", "run", "copy", "copy"]);
        assert_eq!(last.as_deref(), Some("copy"));
        let mut only_meta = vec![h(Some("base")), h(None)];
        assert_eq!(fill_history_times(&mut only_meta).as_deref(), Some("base"));
        assert_eq!(fill_history_times(&mut []), None);
    }

    #[test]
    fn durations_and_times() {
        assert_eq!(parse_duration("30s"), Some(30_000_000_000));
        assert_eq!(parse_duration("1m30s"), Some(90_000_000_000));
        assert_eq!(parse_duration("500ms"), Some(500_000_000));
        assert_eq!(parse_duration("x"), None);
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_577_836_800, 0), "2020-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000, 5), "2023-11-14T22:13:20.000000005Z");
    }

    #[test]
    fn workdir_and_env() {
        assert_eq!(join_workdir("/a", "b/../c"), "/a/c");
        assert_eq!(join_workdir("/a", "/x/"), "/x");
        let mut env = vec!["PATH=/bin".to_string()];
        set_env(&mut env, "PATH", "/usr/bin");
        set_env(&mut env, "A", "1");
        assert_eq!(env, vec!["PATH=/usr/bin", "A=1"]);
    }

    fn first(src: &str) -> Instruction {
        crate::dockerfile::parse(src, "Dockerfile")
            .unwrap()
            .instructions
            .into_iter()
            .nth(1)
            .unwrap()
    }

    #[test]
    fn entrypoint_resets_inherited_cmd_only() {
        let mut cfg = ContainerConfig {
            cmd: Some(vec!["sh".into()]),
            ..Default::default()
        };
        let mut m = StageMeta::default();
        apply(&mut cfg, &mut m, &first("FROM x\nENTRYPOINT [\"/e\"]\n"), 2).unwrap();
        assert_eq!(cfg.cmd, None);
        let mut m = StageMeta::default();
        apply(&mut cfg, &mut m, &first("FROM x\nCMD run\n"), 2).unwrap();
        apply(&mut cfg, &mut m, &first("FROM x\nENTRYPOINT [\"/e\"]\n"), 3).unwrap();
        assert_eq!(
            cfg.cmd,
            Some(vec!["/bin/sh".to_string(), "-c".into(), "run".into()])
        );
        apply(
            &mut cfg,
            &mut m,
            &first("FROM x\nEXPOSE 80 53/UDP 8000-8001\n"),
            4,
        )
        .unwrap();
        let ports: Vec<_> = cfg.exposed_ports.keys().cloned().collect();
        assert_eq!(ports, vec!["53/udp", "80/tcp", "8000/tcp", "8001/tcp"]);
        apply(
            &mut cfg,
            &mut m,
            &first("FROM x\nHEALTHCHECK --interval=5s --retries=2 CMD true\n"),
            5,
        )
        .unwrap();
        let h = cfg.healthcheck.clone().unwrap();
        assert_eq!(
            (h.test, h.interval, h.retries),
            (
                vec!["CMD-SHELL".to_string(), "true".into()],
                Some(5_000_000_000),
                Some(2)
            )
        );
    }
}
