//! Image config comparison. Works on the config blob's JSON so it reads OCI and Docker configs alike (and any
//! typed config that serializes to the same JSON).
//!
//! A config is flattened into `field → value` entries with docker's names (`Env.PATH`, `Labels.maintainer`,
//! `ExposedPorts.80/tcp`, `Volumes./data`, `Cmd`, …); two configs differ where their entries differ. Env,
//! labels, ports and volumes are keyed so a reordered Env is no difference, but a changed variable is one.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

/// One differing config entry; `None` where a side lacks it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ConfigDiff {
    pub field: String,
    pub a: Option<Value>,
    pub b: Option<Value>,
}

/// Entries of the runtime config compared by every diff; `with_history` adds what `--semantic` ignores:
/// creation time, author, history and the layer diff_ids.
pub fn config_entries(config: &Value, with_history: bool) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    let rc = config.get("config").or_else(|| config.get("Config"));
    if let Some(rc) = rc.and_then(Value::as_object) {
        for (key, value) in rc {
            match (key.as_str(), value) {
                (_, Value::Null) => {}
                ("Env", Value::Array(vars)) => {
                    for v in vars.iter().filter_map(Value::as_str) {
                        let (k, val) = v.split_once('=').unwrap_or((v, ""));
                        out.insert(format!("Env.{k}"), Value::String(val.to_string()));
                    }
                }
                ("Labels", Value::Object(m)) => {
                    for (k, v) in m {
                        out.insert(format!("Labels.{k}"), v.clone());
                    }
                }
                ("ExposedPorts" | "Volumes", Value::Object(m)) => {
                    for k in m.keys() {
                        out.insert(format!("{key}.{k}"), Value::Bool(true));
                    }
                }
                // Empty strings and lists mean "unset" to docker; don't report unset vs empty.
                (_, Value::String(s)) if s.is_empty() => {}
                (_, Value::Array(a)) if a.is_empty() && key != "Cmd" && key != "Entrypoint" => {}
                _ => {
                    out.insert(key.clone(), value.clone());
                }
            }
        }
    }
    for (key, name) in [
        ("architecture", "Architecture"),
        ("os", "Os"),
        ("variant", "Variant"),
    ] {
        if let Some(v) = config.get(key).filter(|v| !v.is_null()) {
            out.insert(name.to_string(), v.clone());
        }
    }
    if with_history {
        for (key, name) in [("created", "Created"), ("author", "Author")] {
            if let Some(v) = config.get(key).filter(|v| !v.is_null()) {
                out.insert(name.to_string(), v.clone());
            }
        }
        if let Some(h) = config.get("history").and_then(Value::as_array) {
            for (i, item) in h.iter().enumerate() {
                out.insert(format!("History[{i:03}]"), item.clone());
            }
        }
        if let Some(ids) = config.pointer("/rootfs/diff_ids").and_then(Value::as_array) {
            for (i, id) in ids.iter().enumerate() {
                out.insert(format!("RootFS.DiffIDs[{i:03}]"), id.clone());
            }
        }
    }
    out
}

/// The differing entries of two configs, sorted by field name.
pub fn diff_configs(a: &Value, b: &Value, with_history: bool) -> Vec<ConfigDiff> {
    let ea = config_entries(a, with_history);
    let mut eb = config_entries(b, with_history);
    let mut out = Vec::new();
    for (field, va) in ea {
        match eb.remove(&field) {
            Some(vb) if vb == va => {}
            vb => out.push(ConfigDiff {
                field,
                a: Some(va),
                b: vb,
            }),
        }
    }
    for (field, vb) in eb {
        out.push(ConfigDiff {
            field,
            a: None,
            b: Some(vb),
        });
    }
    out.sort_by(|x, y| x.field.cmp(&y.field));
    out
}

/// One `history` entry of a config, with the layer it produced (if any).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HistoryItem {
    /// Index into the manifest's layers; `None` for empty-layer steps (ENV, CMD, …).
    pub layer: Option<usize>,
    pub created: Option<String>,
    pub created_by: String,
    pub comment: Option<String>,
    pub empty_layer: bool,
}

/// The config's history in order (oldest first), each non-empty step matched to its layer. When history is
/// missing or shorter than the layer list, the remaining layers get items with an empty `created_by`.
pub fn history(config: &Value, layer_count: usize) -> Vec<HistoryItem> {
    let mut out = Vec::new();
    let mut next_layer = 0;
    let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    for h in config
        .get("history")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let empty = h.get("empty_layer").and_then(Value::as_bool).unwrap_or(false);
        let layer = if empty || next_layer >= layer_count {
            None
        } else {
            next_layer += 1;
            Some(next_layer - 1)
        };
        out.push(HistoryItem {
            layer,
            created: s(h, "created"),
            created_by: s(h, "created_by").unwrap_or_default(),
            comment: s(h, "comment"),
            empty_layer: empty,
        });
    }
    for layer in next_layer..layer_count {
        out.push(HistoryItem {
            layer: Some(layer),
            created: None,
            created_by: String::new(),
            comment: None,
            empty_layer: false,
        });
    }
    out
}

/// `created_by` per layer index (empty where history doesn't say).
pub fn created_by_per_layer(config: &Value, layer_count: usize) -> Vec<String> {
    let mut out = vec![String::new(); layer_count];
    for h in history(config, layer_count) {
        if let Some(l) = h.layer {
            out[l] = h.created_by;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keyed_fields_and_history() {
        let a = json!({
            "architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
            "config": {"Env": ["PATH=/bin", "A=1"], "Cmd": ["sh"], "Labels": {"x": "1"},
                       "ExposedPorts": {"80/tcp": {}}, "User": "", "WorkingDir": "/app"},
            "history": [{"created_by": "one"}],
            "rootfs": {"type": "layers", "diff_ids": ["sha256:aa"]}
        });
        let b = json!({
            "architecture": "amd64", "os": "linux", "created": "2025-01-01T00:00:00Z",
            "config": {"Env": ["A=2", "PATH=/bin"], "Cmd": ["sh", "-c"], "Labels": {"y": "1"},
                       "Volumes": {"/data": {}}, "User": "nobody", "WorkingDir": "/app"},
            "history": [{"created_by": "one"}],
            "rootfs": {"type": "layers", "diff_ids": ["sha256:aa"]}
        });
        let fields = |d: Vec<ConfigDiff>| d.into_iter().map(|d| d.field).collect::<Vec<_>>();
        assert_eq!(
            fields(diff_configs(&a, &b, false)),
            vec![
                "Cmd",
                "Env.A",
                "ExposedPorts.80/tcp",
                "Labels.x",
                "Labels.y",
                "User",
                "Volumes./data"
            ]
        );
        assert!(fields(diff_configs(&a, &b, true)).contains(&"Created".to_string()));
        assert!(diff_configs(&a, &a, true).is_empty());
    }

    #[test]
    fn history_matches_layers() {
        let c = json!({"history": [
            {"created_by": "ADD rootfs"}, {"created_by": "ENV A=1", "empty_layer": true}, {"created_by": "RUN x"}
        ]});
        let h = history(&c, 3);
        let layers: Vec<Option<usize>> = h.iter().map(|i| i.layer).collect();
        assert_eq!(layers, vec![Some(0), None, Some(1), Some(2)]);
        assert_eq!(created_by_per_layer(&c, 3), vec!["ADD rootfs", "RUN x", ""]);
    }
}
