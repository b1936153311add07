//! `lamina inspect IMAGE`: manifest, config and layers as one JSON document, or fields of it via `--format`.
//!
//! `--format` accepts `json` (the default), a field path like `.Config.Env`, or a Go-template subset:
//! literal text with `{{.Path}}`, `{{json .Path}}` and `{{index .Path "key"}}` actions. Paths match keys
//! exactly, then case-insensitively; array elements by number (`.Layers.0.Digest`). Values print like Go
//! templates do: strings bare, lists `[a b]`, maps `map[k:v]`, missing `<no value>`.

use std::process::ExitCode;

use anyhow::bail;
use serde_json::{Value, json};

use super::subject;
use super::transfer::RegistryFlags;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[arg(value_name = "IMAGE", help = subject::IMAGE_HELP)]
    pub image: String,
    /// `json`, a field path (`.Config.Env`) or a template (`{{.Config.Cmd}}`, `{{json .Config}}`).
    #[arg(long, short = 'f', default_value = "json")]
    pub format: String,
    #[command(flatten)]
    pub registry: RegistryFlags,
}

/// The inspect document: docker's field names where docker has one.
pub fn document(v: &lamina_inspect::source::ImageView) -> Value {
    let c = &v.config;
    let layers: Vec<Value> = v
        .layers
        .iter()
        .map(|l| {
            json!({
                "Digest": l.digest.as_ref().map(|d| d.to_string()),
                "DiffID": l.diff_id.as_ref().map(|d| d.to_string()),
                "Size": l.size,
                "MediaType": l.media_type,
            })
        })
        .collect();
    let get = |k: &str| c.get(k).cloned().unwrap_or(Value::Null);
    json!({
        "Id": v.config_digest.as_ref().map(|d| d.to_string()),
        "Digest": v.manifest_digest.as_ref().map(|d| d.to_string()),
        "Name": v.name,
        "RepoTags": v.tags,
        "Created": get("created"),
        "Author": get("author"),
        "Architecture": get("architecture"),
        "Os": get("os"),
        "Variant": get("variant"),
        "Config": c.get("config").cloned().unwrap_or_else(|| json!({})),
        "RootFS": get("rootfs"),
        "History": get("history"),
        "Size": v.layers.iter().map(|l| l.size).sum::<u64>(),
        "Layers": layers,
        "Manifest": v.manifest.clone().unwrap_or(Value::Null),
    })
}

pub fn run(cli: &crate::Cli, args: &Args) -> anyhow::Result<ExitCode> {
    let view = subject::open_image(cli, &args.image, &args.registry)?;
    let mut doc = document(&view);
    if let (Some(index), Value::Object(m)) = (local_index(cli, &args.image), &mut doc) {
        m.insert("Index".into(), index);
    }
    crate::output::emit(&format!("{}\n", render(&doc, &args.format)?));
    Ok(ExitCode::SUCCESS)
}

/// For a multi-platform image in the store: its index (digest and each platform's manifest); the rest
/// of the document describes the host's platform image, as `run` and `FROM` would pick it.
fn local_index(cli: &crate::Cli, image: &str) -> Option<Value> {
    let store = lamina_store::Store::open(&cli.store_root()).ok()?;
    let found = store.resolve(image).ok()?;
    let lamina_store::image::Parsed::Index(idx) = store.read_manifest(found.digest(), None).ok()? else {
        return None;
    };
    let manifests: Vec<Value> = idx
        .manifests
        .iter()
        .map(|d| {
            json!({
                "Digest": d.digest.to_string(),
                "MediaType": d.media_type,
                "Size": d.size,
                "Platform": d.platform.as_ref().map(|p| p.to_string()),
                "Present": store.blobs().contains(&d.digest),
            })
        })
        .collect();
    Some(json!({
        "Digest": found.digest().to_string(),
        "MediaType": idx.media_type,
        "Manifests": manifests,
    }))
}

/// Renders `doc` per `--format`.
pub fn render(doc: &Value, format: &str) -> anyhow::Result<String> {
    let f = format.trim();
    if f == "json" {
        return Ok(serde_json::to_string_pretty(doc)?);
    }
    if f.starts_with('.') && !f.contains("{{") {
        return Ok(match lookup(doc, f)? {
            Some(Value::String(s)) => s.clone(),
            Some(v) => serde_json::to_string_pretty(v)?,
            None => "<no value>".to_string(),
        });
    }
    let mut out = String::new();
    let mut rest = format;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            bail!("--format {format:?}: unclosed '{{{{'")
        };
        out.push_str(&action(doc, after[..end].trim(), format)?);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

fn action(doc: &Value, act: &str, format: &str) -> anyhow::Result<String> {
    let words: Vec<&str> = act.split_whitespace().collect();
    match words.as_slice() {
        [path] if path.starts_with('.') => Ok(lookup(doc, path)?.map_or_else(|| "<no value>".into(), go_fmt)),
        ["json", path] if path.starts_with('.') => {
            Ok(serde_json::to_string(lookup(doc, path)?.unwrap_or(&Value::Null))?)
        }
        ["index", path, key] if path.starts_with('.') => {
            let key = key.trim_matches('"');
            let v = lookup(doc, path)?.and_then(|v| match v {
                Value::Object(m) => m.get(key),
                Value::Array(a) => key.parse::<usize>().ok().and_then(|i| a.get(i)),
                _ => None,
            });
            Ok(v.map_or_else(|| "<no value>".into(), go_fmt))
        }
        _ => bail!(
            "--format {format:?}: unsupported action {{{{{act}}}}}; supported: {{{{.Path}}}}, {{{{json .Path}}}}, \
             {{{{index .Path \"key\"}}}}"
        ),
    }
}

/// Follows `.A.B.0.C`; `.` alone is the whole document.
fn lookup<'a>(doc: &'a Value, path: &str) -> anyhow::Result<Option<&'a Value>> {
    let mut cur = doc;
    for seg in path.trim_start_matches('.').split('.').filter(|s| !s.is_empty()) {
        let next = match cur {
            Value::Object(m) => m.get(seg).or_else(|| {
                m.iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(seg))
                    .map(|(_, v)| v)
            }),
            Value::Array(a) => seg.parse::<usize>().ok().and_then(|i| a.get(i)),
            _ => None,
        };
        match next {
            Some(v) => cur = v,
            None => return Ok(None),
        }
    }
    Ok(Some(cur))
}

/// Go's `fmt` rendering of template values.
fn go_fmt(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(a) => format!("[{}]", a.iter().map(go_fmt).collect::<Vec<_>>().join(" ")),
        Value::Object(m) => {
            let mut kv: Vec<(&String, &Value)> = m.iter().collect();
            kv.sort_by(|a, b| a.0.cmp(b.0));
            format!(
                "map[{}]",
                kv.iter()
                    .map(|(k, v)| format!("{k}:{}", go_fmt(v)))
                    .collect::<Vec<_>>()
                    .join(" ")
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        let doc = json!({"Config": {"Env": ["A=1", "B=2"], "Cmd": ["/bin/sh"], "Labels": {"x": "y", "a": "b"}},
                         "Layers": [{"Digest": "sha256:1"}], "Os": "linux"});
        assert_eq!(render(&doc, "{{.Config.Cmd}}").unwrap(), "[/bin/sh]");
        assert_eq!(
            render(&doc, ".Config.Env").unwrap(),
            "[\n  \"A=1\",\n  \"B=2\"\n]"
        );
        assert_eq!(render(&doc, "{{json .Config.Env}}").unwrap(), r#"["A=1","B=2"]"#);
        assert_eq!(
            render(&doc, "os={{.os}} {{index .Config.Labels \"x\"}}").unwrap(),
            "os=linux y"
        );
        assert_eq!(render(&doc, "{{.Config.Labels}}").unwrap(), "map[a:b x:y]");
        assert_eq!(render(&doc, "{{.Layers.0.Digest}}").unwrap(), "sha256:1");
        assert_eq!(render(&doc, "{{.Nope}}").unwrap(), "<no value>");
        assert!(render(&doc, "{{range .Layers}}").is_err());
        assert!(render(&doc, "{{.Os").is_err());
    }
}
