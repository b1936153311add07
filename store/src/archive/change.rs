//! `--change` for `lamina import` (as `docker import --change`): a Dockerfile instruction applied to the
//! image config. Supported like docker: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, USER, VOLUME, WORKDIR,
//! STOPSIGNAL.

use crate::config::ImageConfig;

/// Why a `--change` was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid --change {change:?}: {reason}")]
pub struct ChangeError {
    pub change: String,
    pub reason: String,
}

fn err(change: &str, reason: impl Into<String>) -> ChangeError {
    ChangeError {
        change: change.to_owned(),
        reason: reason.into(),
    }
}

/// `["a", "b"]` → the list; anything else → `None` (shell form).
fn json_array(s: &str) -> Option<Vec<String>> {
    let t = s.trim();
    if !t.starts_with('[') {
        return None;
    }
    serde_json::from_str(t).ok()
}

/// Splits `k=v k2="v 2"` pairs, honouring double and single quotes and backslash escapes.
fn words(s: &str) -> Result<Vec<String>, &'static str> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('"'), '\\') | (None, '\\') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
                in_word = true;
            }
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err("unterminated quote");
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

/// `k=v …` pairs, or the legacy single `k v` form.
fn pairs(change: &str, rest: &str) -> Result<Vec<(String, String)>, ChangeError> {
    let ws = words(rest).map_err(|r| err(change, r))?;
    if ws.is_empty() {
        return Err(err(change, "expects at least one argument"));
    }
    if !ws[0].contains('=') {
        let (k, v) = rest
            .trim()
            .split_once(char::is_whitespace)
            .ok_or_else(|| err(change, "expects KEY=VALUE"))?;
        return Ok(vec![(k.to_owned(), v.trim().to_owned())]);
    }
    ws.into_iter()
        .map(|w| {
            w.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .filter(|(k, _)| !k.is_empty())
                .ok_or_else(|| err(change, format!("{w:?} is not KEY=VALUE")))
        })
        .collect()
}

/// Applies one `--change` to `config`.
pub fn apply_change(config: &mut ImageConfig, change: &str) -> Result<(), ChangeError> {
    let trimmed = change.trim();
    let (instr, rest) = trimmed.split_once(char::is_whitespace).unwrap_or((trimmed, ""));
    let rest = rest.trim();
    let cc = config.config_mut();
    let shell_form = |s: &str| vec!["/bin/sh".to_owned(), "-c".to_owned(), s.to_owned()];
    match instr.to_ascii_uppercase().as_str() {
        "CMD" => cc.cmd = Some(json_array(rest).unwrap_or_else(|| shell_form(rest))),
        "ENTRYPOINT" => cc.entrypoint = Some(json_array(rest).unwrap_or_else(|| shell_form(rest))),
        "ENV" => {
            for (k, v) in pairs(change, rest)? {
                let prefix = format!("{k}=");
                cc.env.retain(|e| !e.starts_with(&prefix));
                cc.env.push(format!("{k}={v}"));
            }
        }
        "LABEL" => {
            for (k, v) in pairs(change, rest)? {
                cc.labels.insert(k, v);
            }
        }
        "EXPOSE" => {
            let ports = words(rest).map_err(|r| err(change, r))?;
            if ports.is_empty() {
                return Err(err(change, "expects at least one port"));
            }
            for p in ports {
                let (num, proto) = p.split_once('/').unwrap_or((&p, "tcp"));
                let ok = !num.is_empty() && num.split('-').all(|n| n.parse::<u16>().is_ok());
                if !ok || !matches!(proto, "tcp" | "udp" | "sctp") {
                    return Err(err(change, format!("invalid port {p:?}")));
                }
                cc.exposed_ports
                    .insert(format!("{num}/{proto}"), serde_json::json!({}));
            }
        }
        "VOLUME" => {
            let vols = match json_array(rest) {
                Some(v) => v,
                None => words(rest).map_err(|r| err(change, r))?,
            };
            if vols.is_empty() {
                return Err(err(change, "expects at least one path"));
            }
            for v in vols {
                cc.volumes.insert(v, serde_json::json!({}));
            }
        }
        "USER" if !rest.is_empty() => cc.user = Some(rest.to_owned()),
        "WORKDIR" if !rest.is_empty() => {
            // Relative WORKDIR is relative to the previous one, like the Dockerfile instruction.
            let base = cc.working_dir.clone().unwrap_or_else(|| "/".to_owned());
            cc.working_dir = Some(if rest.starts_with('/') {
                rest.to_owned()
            } else {
                format!("{}/{rest}", base.trim_end_matches('/'))
            });
        }
        "STOPSIGNAL" if !rest.is_empty() => cc.stop_signal = Some(rest.to_owned()),
        "ONBUILD" if !rest.is_empty() => cc.on_build.get_or_insert_with(Vec::new).push(rest.to_owned()),
        "USER" | "WORKDIR" | "STOPSIGNAL" | "ONBUILD" => return Err(err(change, "expects an argument")),
        other => {
            return Err(err(
                change,
                format!(
                    "{other} is not supported (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR are)"
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(changes: &[&str]) -> ImageConfig {
        let mut c = ImageConfig::scratch();
        for ch in changes {
            apply_change(&mut c, ch).unwrap_or_else(|e| panic!("{e}"));
        }
        c
    }

    #[test]
    fn docker_import_changes() {
        let c = apply(&[
            r#"CMD ["/bin/sh", "-c", "echo hi"]"#,
            "ENTRYPOINT /init --flag",
            "ENV A=1 B=\"two words\"",
            "ENV A=3",
            "ENV LEGACY some value",
            "EXPOSE 80 53/udp",
            "LABEL org.x=y",
            "USER 1000:1000",
            "WORKDIR /srv",
            "WORKDIR app",
            "VOLUME /data /cache",
            "onbuild RUN make",
        ]);
        let cc = c.config.unwrap();
        assert_eq!(cc.cmd.unwrap(), ["/bin/sh", "-c", "echo hi"]);
        assert_eq!(cc.entrypoint.unwrap(), ["/bin/sh", "-c", "/init --flag"]);
        assert_eq!(cc.env, ["B=two words", "A=3", "LEGACY=some value"]);
        assert!(cc.exposed_ports.contains_key("80/tcp") && cc.exposed_ports.contains_key("53/udp"));
        assert_eq!(cc.labels["org.x"], "y");
        assert_eq!(cc.user.as_deref(), Some("1000:1000"));
        assert_eq!(cc.working_dir.as_deref(), Some("/srv/app"));
        assert_eq!(cc.volumes.len(), 2);
        assert_eq!(cc.on_build.unwrap(), ["RUN make"]);
    }

    #[test]
    fn rejects_bad_changes() {
        let mut c = ImageConfig::scratch();
        for bad in [
            "RUN echo",
            "EXPOSE http",
            "ENV",
            "LABEL a=\"unterminated",
            "USER",
            "FROM x",
        ] {
            let e = apply_change(&mut c, bad).unwrap_err();
            assert_eq!(e.change, bad);
        }
    }
}
