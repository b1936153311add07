//! Credentials: read from docker's `config.json` (`auths`, `credsStore`, `credHelpers`) and podman's
//! `auth.json` through the `docker_credential` crate; written back in docker's format by `login`/`logout`.
//!
//! Secrets never reach logs or error messages: [`Credential`]'s `Debug` redacts them.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine;
use docker_credential::{CredentialRetrievalError, DockerCredential};

use super::RegistryError;

/// What we present to a registry.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    Basic {
        username: String,
        password: String,
    },
    /// An OAuth2 refresh token (docker's `identitytoken`), exchanged at the token server.
    IdentityToken(String),
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::Basic { username, .. } => write!(f, "Basic({username}, <redacted>)"),
            Credential::IdentityToken(_) => write!(f, "IdentityToken(<redacted>)"),
        }
    }
}

impl From<DockerCredential> for Credential {
    fn from(c: DockerCredential) -> Self {
        match c {
            DockerCredential::IdentityToken(t) => Credential::IdentityToken(t),
            DockerCredential::UsernamePassword(username, password) => {
                Credential::Basic { username, password }
            }
        }
    }
}

/// The key docker uses for a registry in `auths` and for helpers.
pub fn server_key(registry: &str) -> String {
    if registry == crate::reference::DEFAULT_REGISTRY {
        "https://index.docker.io/v1/".to_owned()
    } else {
        registry.to_owned()
    }
}

/// docker's config dir: `$DOCKER_CONFIG` or `~/.docker`.
pub fn docker_config_path() -> Option<PathBuf> {
    std::env::var_os("DOCKER_CONFIG")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker")))
        .map(|d| d.join("config.json"))
}

/// Looks up credentials for `registry`: an explicit auth file first, then docker's config, then podman's.
pub fn lookup(registry: &str, auth_file: Option<&Path>) -> Result<Option<Credential>, RegistryError> {
    let key = server_key(registry);
    let classify = |r: Result<DockerCredential, CredentialRetrievalError>| match r {
        Ok(c) => Ok(Some(Credential::from(c))),
        Err(
            CredentialRetrievalError::NoCredentialConfigured
            | CredentialRetrievalError::ConfigNotFound
            | CredentialRetrievalError::ConfigReadError,
        ) => Ok(None),
        Err(source) => Err(RegistryError::Credentials {
            registry: registry.to_owned(),
            source,
        }),
    };
    if let Some(path) = auth_file {
        let f = std::fs::File::open(path).map_err(RegistryError::io("open auth file", path))?;
        let r = docker_credential::get_credential_from_reader(std::io::BufReader::new(f), &key);
        return classify(r);
    }
    if let Some(c) = classify(docker_credential::get_credential(&key))? {
        return Ok(Some(c));
    }
    classify(docker_credential::get_podman_credential(&key))
}

/// Stores credentials the way `docker login` does: in the helper named by `credsStore`/`credHelpers`
/// if configured, else base64 in `auths`. Returns the file that was written or the helper used.
pub fn store(
    registry: &str,
    username: &str,
    password: &str,
    config_path: &Path,
) -> Result<String, RegistryError> {
    let key = server_key(registry);
    let mut config = read_config(config_path)?;
    if let Some(helper) = helper_for(&config, &key) {
        let payload = serde_json::json!({"ServerURL": key, "Username": username, "Secret": password});
        run_helper(&helper, "store", registry, &payload.to_string())?;
        // docker records the registry with an empty entry so `docker logout` knows about it.
        auths_mut(&mut config).insert(key, serde_json::json!({}));
        write_config(config_path, &config)?;
        return Ok(format!("credential helper docker-credential-{helper}"));
    }
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
    auths_mut(&mut config).insert(key, serde_json::json!({ "auth": auth }));
    write_config(config_path, &config)?;
    Ok(config_path.display().to_string())
}

/// Removes stored credentials; `Ok(false)` when there were none.
pub fn erase(registry: &str, config_path: &Path) -> Result<bool, RegistryError> {
    let key = server_key(registry);
    let mut config = read_config(config_path)?;
    let mut found = false;
    if let Some(helper) = helper_for(&config, &key) {
        found |= run_helper(&helper, "erase", registry, &key).is_ok();
    }
    found |= auths_mut(&mut config).remove(&key).is_some();
    if found {
        write_config(config_path, &config)?;
    }
    Ok(found)
}

fn helper_for(config: &serde_json::Value, key: &str) -> Option<String> {
    config
        .get("credHelpers")
        .and_then(|h| h.get(key))
        .or_else(|| config.get("credsStore"))
        .and_then(|v| v.as_str())
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn auths_mut(config: &mut serde_json::Value) -> &mut serde_json::Map<String, serde_json::Value> {
    if !config.get("auths").is_some_and(|a| a.is_object()) {
        config["auths"] = serde_json::json!({});
    }
    config["auths"]
        .as_object_mut()
        .expect("auths was just made an object")
}

fn read_config(path: &Path) -> Result<serde_json::Value, RegistryError> {
    match std::fs::read(path) {
        Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => Ok(serde_json::json!({})),
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| RegistryError::BadFile {
            what: "docker config",
            path: path.to_owned(),
            source,
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(serde_json::json!({})),
        Err(e) => Err(RegistryError::Io {
            op: "read",
            path: path.to_owned(),
            source: e,
        }),
    }
}

/// Written temp-then-rename with mode 0600: the file holds secrets.
fn write_config(path: &Path, config: &serde_json::Value) -> Result<(), RegistryError> {
    use std::os::unix::fs::PermissionsExt;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(RegistryError::io("create directory", dir))?;
    let mut tmp =
        tempfile::NamedTempFile::new_in(dir).map_err(RegistryError::io("create temp file in", dir))?;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(RegistryError::io("chmod", tmp.path()))?;
    let text = serde_json::to_string_pretty(config).expect("a JSON value serializes");
    tmp.write_all(text.as_bytes())
        .and_then(|()| tmp.write_all(b"\n"))
        .map_err(RegistryError::io("write", path))?;
    tmp.persist(path).map_err(|e| RegistryError::Io {
        op: "rename into place",
        path: path.to_owned(),
        source: e.error,
    })?;
    Ok(())
}

fn run_helper(helper: &str, op: &'static str, registry: &str, input: &str) -> Result<(), RegistryError> {
    let name = format!("docker-credential-{helper}");
    let fail = |stderr: String| RegistryError::Helper {
        helper: helper.to_owned(),
        op,
        registry: registry.to_owned(),
        stderr,
    };
    let mut child = Command::new(&name)
        .arg(op)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(format!("cannot run {name}: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input.as_bytes())
            .map_err(|e| fail(e.to_string()))?;
    }
    let out = child.wait_with_output().map_err(|e| fail(e.to_string()))?;
    if out.status.success() {
        Ok(())
    } else {
        // Helpers print their message on stdout; neither stream ever contains the secret we sent.
        let msg = String::from_utf8_lossy(if out.stderr.is_empty() {
            &out.stdout
        } else {
            &out.stderr
        });
        Err(fail(msg.trim().to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_logout_round_trip_keeps_other_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, r#"{"auths":{"other.io":{"auth":"eDp5"}},"psFormat":"x"}"#).unwrap();
        store("localhost:5000", "alice", "s3cret", &path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("psFormat") && text.contains("other.io"));
        assert!(!text.contains("s3cret"), "password stored in clear");
        let c = lookup("localhost:5000", Some(&path)).unwrap().unwrap();
        assert_eq!(
            c,
            Credential::Basic {
                username: "alice".into(),
                password: "s3cret".into()
            }
        );
        assert!(!format!("{c:?}").contains("s3cret"));
        assert!(erase("localhost:5000", &path).unwrap());
        assert!(!erase("localhost:5000", &path).unwrap());
        assert_eq!(lookup("localhost:5000", Some(&path)).unwrap(), None);
        assert!(std::fs::read_to_string(&path).unwrap().contains("other.io"));
    }

    #[test]
    fn docker_hub_key() {
        assert_eq!(server_key("docker.io"), "https://index.docker.io/v1/");
        assert_eq!(server_key("quay.io"), "quay.io");
    }
}
