//! `lamina inspect IMAGE`: manifest, config and layers as one JSON document, or fields of it via `--format`.
//!
//! `--format` accepts `json` (the default), a field path like `.Config.Env`, or a Go template run on the
//! document ([`crate::format`]: `{{.Config.Cmd}}`, `{{json .Config}}`, `{{index .RepoTags 0}}`,
//! `{{range .Config.Env}}…{{end}}`, `{{join .Config.Cmd " "}}`). The document has docker's field names
//! (`Id`, `RepoTags`, `RepoDigests`, `Created`, `Config`, `Size` unpacked) plus
//! lamina's `Digest`, `Layers` and `Manifest`.

use std::process::ExitCode;

use serde_json::{Value, json};

use super::subject;
use super::transfer::RegistryFlags;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[arg(value_name = "IMAGE", help = subject::IMAGE_HELP)]
    pub image: String,
    /// `json`, a field path (`.Config.Env`) or a Go template (`{{.Config.Cmd}}`, `{{json .Config}}`).
    #[arg(long, short = 'f', default_value = "json")]
    pub format: String,
    #[command(flatten)]
    pub registry: RegistryFlags,
}

/// The inspect document: docker's field names where docker has one. `unpacked` is the image's unpacked
/// size when known (docker's `Size`); else the layer blobs' sum.
pub fn document(v: &lamina_inspect::source::ImageView, unpacked: Option<u64>) -> Value {
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
    let text = |k: &str| c.get(k).cloned().unwrap_or_else(|| json!(""));
    let comment = c
        .get("history")
        .and_then(Value::as_array)
        .and_then(|h| h.last())
        .and_then(|h| h.get("comment"))
        .cloned()
        .unwrap_or_else(|| json!(""));
    json!({
        "Id": v.config_digest.as_ref().map(|d| d.to_string()),
        "Digest": v.manifest_digest.as_ref().map(|d| d.to_string()),
        "Name": v.name,
        "RepoTags": v.tags,
        "RepoDigests": [],
        "Parent": "",
        "Comment": comment,
        "Created": get("created"),
        "DockerVersion": "",
        "Author": text("author"),
        "Architecture": get("architecture"),
        "Os": get("os"),
        "Variant": get("variant"),
        // As docker prints it: the image config's `config`, only the fields it has.
        "Config": c.get("config").cloned().unwrap_or_else(|| json!({})),
        // Docker's names for the config's rootfs.
        "RootFS": json!({
            "Type": c.pointer("/rootfs/type").cloned().unwrap_or_else(|| json!("layers")),
            "Layers": c.pointer("/rootfs/diff_ids").cloned().unwrap_or_else(|| json!([])),
        }),
        "History": get("history"),
        "Size": unpacked.unwrap_or_else(|| v.layers.iter().map(|l| l.size).sum::<u64>()),
        "Layers": layers,
        "Manifest": v.manifest.clone().unwrap_or(Value::Null),
    })
}

pub fn run(cli: &crate::Cli, args: &Args) -> anyhow::Result<ExitCode> {
    let view = subject::open_image(cli, &args.image, &args.registry)?;
    let unpacked = subject::unpacked_size(cli, &view);
    let mut doc = document(&view, unpacked);
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
        return Ok(match lookup(doc, f) {
            Some(Value::String(s)) => s.clone(),
            Some(v) => serde_json::to_string_pretty(v)?,
            None => "<no value>".to_string(),
        });
    }
    Ok(crate::format::execute_once(format, doc)?)
}

/// Follows `.A.B.0.C`; `.` alone is the whole document.
fn lookup<'a>(doc: &'a Value, path: &str) -> Option<&'a Value> {
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
            None => return None,
        }
    }
    Some(cur)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        let doc = json!({"Config": {"Env": ["A=1", "B=2"], "Cmd": ["/bin/sh"], "Labels": {"x": "y", "a": "b"}},
                         "Layers": [{"Digest": "sha256:1"}], "Os": "linux", "RepoTags": ["a:1", "b:2"]});
        assert_eq!(render(&doc, "{{.Config.Cmd}}").unwrap(), "[/bin/sh]");
        assert_eq!(
            render(&doc, ".Config.Env").unwrap(),
            "[\n  \"A=1\",\n  \"B=2\"\n]"
        );
        assert_eq!(render(&doc, "{{json .Config.Env}}").unwrap(), r#"["A=1","B=2"]"#);
        assert_eq!(
            render(&doc, "os={{.Os}} {{index .Config.Labels \"x\"}}").unwrap(),
            "os=linux y"
        );
        assert_eq!(render(&doc, "{{.Config.Labels}}").unwrap(), "map[a:b x:y]");
        assert_eq!(render(&doc, "{{index .RepoTags 0}}").unwrap(), "a:1");
        assert_eq!(
            render(&doc, "{{range .Layers}}{{.Digest}} {{end}}").unwrap(),
            "sha256:1 "
        );
        assert_eq!(render(&doc, r#"{{join .RepoTags ","}}"#).unwrap(), "a:1,b:2");
        assert_eq!(render(&doc, "{{if .Config.Cmd}}has{{end}}").unwrap(), "has");
        assert_eq!(render(&doc, "{{.Nope}}").unwrap(), "<no value>");
        assert!(render(&doc, "{{if}}").is_err());
        assert!(render(&doc, "{{.Os").is_err());
    }
}
