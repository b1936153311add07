//! The registry auth handshake: probe `/v2/`, then anonymous, HTTP basic, or the bearer-token flow with
//! scopes (pull, push, and `pull` on the source repository of a cross-repo mount) and identity tokens.
//!
//! Several scopes per request (a push that mounts from another repository needs two) and refreshed
//! tokens are why the handshake is ours. Tokens and secrets are never formatted into errors or logs.

use std::collections::HashMap;

use base64::Engine;
use reqwest::header::{AUTHORIZATION, HeaderValue, WWW_AUTHENTICATE};
use tokio::sync::{Mutex, OnceCell};

use super::RegistryError;
use super::bounded;
use super::credentials::{self, Credential};

/// How the registry wants to be talked to, learned from `GET /v2/`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Challenge {
    None,
    Basic,
    Bearer { realm: String, service: Option<String> },
}

/// What a request should carry.
#[derive(Clone)]
pub(crate) enum Grant {
    Anonymous,
    Basic { username: String, password: String },
    Bearer(String),
}

impl Grant {
    pub(crate) fn header(&self) -> Option<HeaderValue> {
        let s = match self {
            Grant::Anonymous => return None,
            Grant::Basic { username, password } => format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"))
            ),
            Grant::Bearer(t) => format!("Bearer {t}"),
        };
        let mut v = HeaderValue::from_str(&s).ok()?;
        v.set_sensitive(true);
        Some(v)
    }
}

pub(crate) struct Auth {
    registry: String,
    base: String,
    http: reqwest::Client,
    explicit: Option<Credential>,
    auth_file: Option<std::path::PathBuf>,
    challenge: OnceCell<Challenge>,
    credential: OnceCell<Option<Credential>>,
    tokens: Mutex<HashMap<String, String>>,
}

/// `repository:NAME:ACTIONS` scope strings for a request.
pub(crate) fn scopes(repo: &str, push: bool, mount_from: Option<&str>) -> Vec<String> {
    let mut v = vec![format!(
        "repository:{repo}:{}",
        if push { "pull,push" } else { "pull" }
    )];
    if let Some(src) = mount_from.filter(|s| *s != repo) {
        v.push(format!("repository:{src}:pull"));
    }
    v
}

impl Auth {
    pub(crate) fn new(
        registry: &str,
        base: &str,
        http: reqwest::Client,
        explicit: Option<Credential>,
        auth_file: Option<std::path::PathBuf>,
    ) -> Self {
        Auth {
            registry: registry.to_owned(),
            base: base.to_owned(),
            http,
            explicit,
            auth_file,
            challenge: OnceCell::new(),
            credential: OnceCell::new(),
            tokens: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) async fn credential(&self) -> Result<Option<Credential>, RegistryError> {
        if let Some(c) = &self.explicit {
            return Ok(Some(c.clone()));
        }
        let registry = self.registry.clone();
        let file = self.auth_file.clone();
        self.credential
            .get_or_try_init(|| async move {
                // Credential helpers are processes: keep them off the async workers.
                tokio::task::spawn_blocking(move || credentials::lookup(&registry, file.as_deref()))
                    .await
                    .unwrap_or(Ok(None))
            })
            .await
            .cloned()
    }

    pub(crate) async fn challenge(&self) -> Result<Challenge, RegistryError> {
        self.challenge
            .get_or_try_init(|| async {
                let url = format!("{}/v2/", self.base);
                let mut last = None;
                for attempt in 0..4u32 {
                    match self.http.get(&url).send().await {
                        Ok(res) if res.status().is_server_error() || res.status().as_u16() == 429 => {
                            last = Some(RegistryError::Status {
                                url: url.clone(),
                                status: res.status().as_u16(),
                                message: String::new(),
                            });
                        }
                        Ok(res) => {
                            let header = res.headers().get(WWW_AUTHENTICATE).and_then(|h| h.to_str().ok());
                            return match (res.status().as_u16(), header) {
                                (401, Some(h)) => {
                                    parse_challenge(h).ok_or_else(|| RegistryError::BadChallenge {
                                        registry: self.registry.clone(),
                                        challenge: h.chars().take(200).collect(),
                                    })
                                }
                                (401, None) => Ok(Challenge::Basic),
                                _ => Ok(Challenge::None),
                            };
                        }
                        Err(source) => {
                            last = Some(RegistryError::Http {
                                op: "GET",
                                url: url.clone(),
                                source,
                            })
                        }
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(200 << attempt)).await;
                }
                Err(last.expect("loop ran"))
            })
            .await
            .cloned()
    }

    /// Forgets cached tokens (after a 401: the token expired or lacked a scope).
    pub(crate) async fn invalidate(&self) {
        self.tokens.lock().await.clear();
    }

    /// The grant for requests to `repo` with the given scopes.
    pub(crate) async fn grant(&self, repo: &str, scopes: &[String]) -> Result<Grant, RegistryError> {
        match self.challenge().await? {
            Challenge::None => Ok(Grant::Anonymous),
            Challenge::Basic => match self.credential().await? {
                Some(Credential::Basic { username, password }) => Ok(Grant::Basic { username, password }),
                _ => Err(RegistryError::NoCredentials {
                    registry: self.registry.clone(),
                    repository: repo.to_owned(),
                }),
            },
            Challenge::Bearer { realm, service } => {
                let key = scopes.join(" ");
                if let Some(t) = self.tokens.lock().await.get(&key) {
                    return Ok(Grant::Bearer(t.clone()));
                }
                let token = self.fetch_token(&realm, service.as_deref(), scopes).await?;
                self.tokens.lock().await.insert(key, token.clone());
                Ok(Grant::Bearer(token))
            }
        }
    }

    async fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scopes: &[String],
    ) -> Result<String, RegistryError> {
        let cred = self.credential().await?;
        let mut last = None;
        for attempt in 0..4u32 {
            let req = match &cred {
                Some(Credential::IdentityToken(refresh)) => {
                    let mut form = vec![
                        ("grant_type", "refresh_token".to_owned()),
                        ("refresh_token", refresh.clone()),
                        ("client_id", "lamina".to_owned()),
                        ("scope", scopes.join(" ")),
                    ];
                    if let Some(s) = service {
                        form.push(("service", s.to_owned()));
                    }
                    self.http.post(realm).form(&form)
                }
                other => {
                    let mut query: Vec<(&str, &str)> = scopes.iter().map(|s| ("scope", s.as_str())).collect();
                    if let Some(s) = service {
                        query.push(("service", s));
                    }
                    let mut req = self.http.get(realm).query(&query);
                    if let Some(Credential::Basic { username, password }) = other {
                        req = req
                            .query(&[("account", username)])
                            .basic_auth(username, Some(password));
                    }
                    req
                }
            };
            match req.send().await {
                Ok(res) if res.status().is_success() => {
                    let body = bounded::read_body(res, bounded::MAX_TOKEN_BODY, "token response").await?;
                    #[derive(serde::Deserialize)]
                    struct Token {
                        token: Option<String>,
                        access_token: Option<String>,
                    }
                    let t: Token =
                        serde_json::from_slice(&body).map_err(|source| RegistryError::BadToken {
                            registry: self.registry.clone(),
                            source,
                        })?;
                    return t
                        .token
                        .or(t.access_token)
                        .filter(|t| !t.is_empty())
                        .ok_or_else(|| RegistryError::BadToken {
                            registry: self.registry.clone(),
                            source: serde::de::Error::missing_field("token"),
                        });
                }
                Ok(res) if res.status().is_server_error() || res.status().as_u16() == 429 => {
                    last = Some(RegistryError::TokenRefused {
                        registry: self.registry.clone(),
                        realm: realm.to_owned(),
                        status: res.status().as_u16(),
                    });
                }
                Ok(res) => {
                    return Err(RegistryError::TokenRefused {
                        registry: self.registry.clone(),
                        realm: realm.to_owned(),
                        status: res.status().as_u16(),
                    });
                }
                Err(source) if source.is_redirect() => {
                    return Err(RegistryError::http("GET token from", realm)(source));
                }
                Err(source) => {
                    last = Some(RegistryError::Http {
                        op: "GET token from",
                        url: realm.to_owned(),
                        source,
                    })
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(200 << attempt)).await;
        }
        Err(last.expect("loop ran"))
    }

    /// Applies the grant to a request built with our own reqwest client.
    pub(crate) async fn apply(
        &self,
        req: reqwest::RequestBuilder,
        repo: &str,
        scopes: &[String],
    ) -> Result<reqwest::RequestBuilder, RegistryError> {
        Ok(match self.grant(repo, scopes).await?.header() {
            Some(h) => req.header(AUTHORIZATION, h),
            None => req,
        })
    }
}

/// Parses `Bearer realm="…",service="…"` or `Basic realm="…"`.
pub(crate) fn parse_challenge(h: &str) -> Option<Challenge> {
    let (scheme, rest) = h.trim().split_once(' ').unwrap_or((h.trim(), ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut params = HashMap::new();
    let mut s = rest.trim();
    while !s.is_empty() {
        let (key, after) = s.split_once('=')?;
        let key = key.trim().to_ascii_lowercase();
        let after = after.trim_start();
        let (value, next) = if let Some(q) = after.strip_prefix('"') {
            let end = q.find('"')?;
            (&q[..end], &q[end + 1..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim(), &after[end..])
        };
        params.insert(key, value.to_owned());
        s = next.trim_start().trim_start_matches(',').trim_start();
    }
    let realm = params.remove("realm")?;
    if !(realm.starts_with("https://") || realm.starts_with("http://")) {
        return None;
    }
    Some(Challenge::Bearer {
        realm,
        service: params.remove("service"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into())
            })
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(parse_challenge("Bearer service=x"), None);
        assert_eq!(parse_challenge(r#"Bearer realm="file:///etc/passwd""#), None);
        assert_eq!(
            scopes("a/b", true, Some("c")),
            vec![
                "repository:a/b:pull,push".to_owned(),
                "repository:c:pull".to_owned()
            ]
        );
    }
}
