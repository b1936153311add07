//! The image configuration (the JSON a config blob holds), as docker and OCI tools write it.
//!
//! oci-spec's `ImageConfiguration` drops Docker's `Healthcheck`, `OnBuild`, `Shell` and `ArgsEscaped` and
//! serializes its HashMaps in random order, so lamina has its own type: every field the OCI image spec and
//! Docker's image spec define, and every other field kept verbatim in `extra` (flattened), so reading and
//! writing back a config from another tool loses nothing. Maps are `BTreeMap`s; the bytes that go into a blob
//! come from [`crate::image::canonical_json`] anyway, which sorts every object's keys.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::digest::Digest;
use crate::platform::Platform;

/// Unknown fields, kept as they were.
pub type Extra = BTreeMap<String, Value>;

/// The top level of an image config blob.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ImageConfig {
    /// RFC 3339 creation time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(rename = "os.version", default, skip_serializing_if = "Option::is_none")]
    pub os_version: Option<String>,
    #[serde(rename = "os.features", default, skip_serializing_if = "Option::is_none")]
    pub os_features: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// The runtime defaults (`Cmd`, `Env`, …). Absent in some minimal images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<ContainerConfig>,
    #[serde(default)]
    pub rootfs: RootFs,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<History>,
    /// Fields neither spec names here (Docker's `container`, `container_config`, `docker_version`, …).
    #[serde(flatten)]
    pub extra: Extra,
}

/// `rootfs`: the uncompressed digests of the layers, bottom first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub diff_ids: Vec<Digest>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl Default for RootFs {
    fn default() -> Self {
        RootFs {
            kind: "layers".to_owned(),
            diff_ids: Vec::new(),
            extra: Extra::new(),
        }
    }
}

/// One `history` entry.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// True for entries that did not produce a layer (ENV, CMD, …).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub empty_layer: bool,
    #[serde(flatten)]
    pub extra: Extra,
}

/// The `config` object: what a container started from the image gets by default.
///
/// `Entrypoint`/`Cmd`/`Shell`/`OnBuild` are `Option` because docker distinguishes "not set" (inherit) from
/// set-to-empty.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "nullable_map"
    )]
    pub exposed_ports: BTreeMap<String, Value>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "nullable_vec"
    )]
    pub env: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "nullable_map"
    )]
    pub volumes: BTreeMap<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "nullable_map"
    )]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    /// Docker: the command line is already escaped (Windows); kept for round-trips.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub args_escaped: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<Healthcheck>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_build: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<Vec<String>>,
    /// Everything else (`Hostname`, `Tty`, `StopTimeout`, …).
    #[serde(flatten)]
    pub extra: Extra,
}

/// Docker's HEALTHCHECK; durations are nanoseconds as docker stores them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Healthcheck {
    /// `["NONE"]`, `["CMD", args…]` or `["CMD-SHELL", command]`.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "nullable_vec"
    )]
    pub test: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_period: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_interval: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<i64>,
    #[serde(flatten)]
    pub extra: Extra,
}

fn nullable_vec<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

fn nullable_map<'de, D, V>(d: D) -> Result<BTreeMap<String, V>, D::Error>
where
    D: serde::Deserializer<'de>,
    V: Deserialize<'de>,
{
    Ok(Option::<BTreeMap<String, V>>::deserialize(d)?.unwrap_or_default())
}

impl ImageConfig {
    /// A config for the host platform with no layers, as `FROM scratch` starts.
    pub fn scratch() -> Self {
        let mut c = ImageConfig::default();
        c.set_platform(&Platform::host());
        c
    }

    /// The platform this config says the image is for, as written.
    pub fn platform(&self) -> Platform {
        Platform {
            os_version: self.os_version.clone(),
            os_features: self.os_features.clone(),
            ..Platform::new(self.os.clone(), self.architecture.clone(), self.variant.clone())
        }
    }

    /// Sets os, architecture and variant (and os.version/os.features when `p` has them).
    pub fn set_platform(&mut self, p: &Platform) {
        self.os = p.os.clone();
        self.architecture = p.architecture.clone();
        self.variant = p.variant.clone();
        if p.os_version.is_some() {
            self.os_version = p.os_version.clone();
        }
        if p.os_features.is_some() {
            self.os_features = p.os_features.clone();
        }
    }

    /// The runtime config, created empty if absent.
    pub fn config_mut(&mut self) -> &mut ContainerConfig {
        self.config.get_or_insert_with(ContainerConfig::default)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::canonical_json;

    const DOCKER_CONFIG: &str = r#"{
      "architecture": "amd64",
      "config": {
        "Hostname": "", "User": "app", "Tty": false,
        "ExposedPorts": {"80/tcp": {}},
        "Env": ["PATH=/usr/bin"],
        "Cmd": ["sh"], "Entrypoint": null,
        "Healthcheck": {"Test": ["CMD-SHELL", "true"], "Interval": 30000000000, "Retries": 3},
        "OnBuild": ["RUN echo hi"], "Shell": ["/bin/bash", "-c"], "ArgsEscaped": true,
        "Volumes": null, "WorkingDir": "/srv", "Labels": {"b": "2", "a": "1"}, "StopSignal": "SIGTERM"
      },
      "container": "abc", "docker_version": "20.10.24",
      "created": "2024-01-01T00:00:00Z",
      "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "/bin/sh", "empty_layer": true}],
      "os": "linux",
      "rootfs": {"type": "layers", "diff_ids": ["sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"]}
    }"#;

    #[test]
    fn keeps_docker_fields_and_unknown_ones() {
        let c: ImageConfig = serde_json::from_str(DOCKER_CONFIG).unwrap();
        let cc = c.config.as_ref().unwrap();
        assert_eq!(cc.healthcheck.as_ref().unwrap().interval, Some(30_000_000_000));
        assert_eq!(cc.on_build.as_deref(), Some(&["RUN echo hi".to_owned()][..]));
        assert_eq!(cc.shell.as_ref().unwrap()[0], "/bin/bash");
        assert!(cc.args_escaped);
        assert_eq!(cc.entrypoint, None);
        assert_eq!(cc.extra.get("Hostname"), Some(&Value::String(String::new())));
        assert_eq!(c.extra.get("docker_version").unwrap(), "20.10.24");
        assert!(c.history[0].empty_layer);

        let out: Value = serde_json::from_slice(&canonical_json(&c)).unwrap();
        assert_eq!(out["config"]["Healthcheck"]["Retries"], 3);
        assert_eq!(out["config"]["Tty"], false);
        assert_eq!(out["container"], "abc");
        assert_eq!(out["config"]["ExposedPorts"]["80/tcp"], serde_json::json!({}));
    }

    #[test]
    fn round_trip_is_stable() {
        let c: ImageConfig = serde_json::from_str(DOCKER_CONFIG).unwrap();
        let a = canonical_json(&c);
        let again: ImageConfig = serde_json::from_slice(&a).unwrap();
        assert_eq!(again, c);
        assert_eq!(canonical_json(&again), a);
        let s = String::from_utf8(a).unwrap();
        assert!(s.find("\"architecture\"").unwrap() < s.find("\"config\"").unwrap());
        assert!(s.find("\"a\":\"1\"").unwrap() < s.find("\"b\":\"2\"").unwrap());
        assert!(!s.contains(": "), "canonical JSON has no spaces: {s}");
    }
}
