//! The typed syntax tree: one [`Instruction`] per Dockerfile instruction, every word with its [`Span`].
//! Values are as written (unexpanded) after [`super::parse`]; [`super::graph`] produces copies with
//! the words expanded where BuildKit expands them.

use serde::Serialize;

use super::source::Span;

/// A value and where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Word {
    pub value: String,
    pub span: Span,
}

impl Word {
    pub fn as_str(&self) -> &str {
        &self.value
    }
}

/// `# check=skip=Rule1,Rule2;error=true`
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CheckDirective {
    pub skip: Vec<String>,
    pub skip_all: bool,
    pub error: bool,
}

impl CheckDirective {
    pub fn skips(&self, rule: &str) -> bool {
        self.skip_all || self.skip.iter().any(|r| r.eq_ignore_ascii_case(rule))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Directives {
    pub syntax: Option<Word>,
    pub escape: char,
    pub check: CheckDirective,
}

impl Default for Directives {
    fn default() -> Directives {
        Directives {
            syntax: None,
            escape: '\\',
            check: CheckDirective::default(),
        }
    }
}

/// A parsed Dockerfile.
#[derive(Debug, Clone, Serialize)]
pub struct Dockerfile {
    pub file: String,
    pub directives: Directives,
    pub instructions: Vec<Instruction>,
    pub warnings: Vec<super::Warning>,
    /// The source text, kept for caret snippets of errors found after parsing (expansion, graph).
    #[serde(skip)]
    pub source: String,
}

/// A heredoc body attached to RUN, COPY or ADD.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Heredoc {
    pub name: String,
    /// False when the delimiter was quoted: the body is used verbatim.
    pub expand: bool,
    /// `<<-`: leading tabs were stripped from the body lines.
    pub chomp: bool,
    /// The file descriptor in `3<<EOF`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fd: Option<u32>,
    pub content: String,
    /// The `<<EOF` marker.
    pub span: Span,
    /// The body lines and terminator.
    pub body_span: Span,
}

/// A `--name[=value]` flag as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Flag {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<Word>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Instruction {
    /// The keyword in upper case (`COPY` for `copy`).
    pub keyword: &'static str,
    pub span: Span,
    pub keyword_span: Span,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<Flag>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub heredocs: Vec<Heredoc>,
    #[serde(flatten)]
    pub kind: Kind,
    /// The comment lines right above (BuildKit's `PrevComment`), for descriptions; see
    /// [`Instruction::doc_comment`]. Not serialized: `lamina parse` output stays as it was.
    #[serde(skip)]
    pub comments: Vec<String>,
}

impl Instruction {
    /// BuildKit's description of a stage or ARG named `name`: the first comment line above that starts
    /// with the name and a space, less that prefix (`# base defines first stage` describes `base`).
    pub fn doc_comment(&self, name: &str) -> Option<&str> {
        if name.is_empty() {
            return None;
        }
        let prefix = format!("{name} ");
        self.comments.iter().find_map(|c| c.strip_prefix(&prefix))
    }
}

/// Exec form (`["a", "b"]`) or shell form (the rest of the line, run with the SHELL).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Command {
    Exec(Vec<Word>),
    Shell(Word),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyValue {
    pub key: Word,
    pub value: Word,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArgDecl {
    pub name: Word,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<Word>,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MountType {
    Bind,
    Cache,
    Tmpfs,
    Secret,
    Ssh,
}

impl MountType {
    pub fn as_str(self) -> &'static str {
        match self {
            MountType::Bind => "bind",
            MountType::Cache => "cache",
            MountType::Tmpfs => "tmpfs",
            MountType::Secret => "secret",
            MountType::Ssh => "ssh",
        }
    }
}

/// `RUN --mount=…`. Option values are words (expanded later); defaults BuildKit applies are filled in by
/// [`Mount::effective_target`] and friends rather than invented here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mount {
    #[serde(rename = "type")]
    pub mount_type: MountType,
    pub span: Span,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<Word>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<Word>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<Word>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<Word>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sharing: Option<Word>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<Word>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<Word>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gid: Option<Word>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<Word>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env: Option<Word>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub readonly: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub required: Option<bool>,
}

impl Mount {
    /// Read-only unless asked otherwise: bind mounts default to read-only, the rest to read-write.
    pub fn is_readonly(&self) -> bool {
        self.readonly.unwrap_or(self.mount_type == MountType::Bind)
    }

    /// tmpfs `size=` in bytes (0: the kernel's default); the front end rejected sizes that don't parse.
    pub fn size_bytes(&self) -> u64 {
        self.size
            .as_ref()
            .and_then(|w| super::values::parse_size(&w.value))
            .unwrap_or(0)
    }

    fn number(w: &Option<Word>) -> Option<u32> {
        w.as_ref().and_then(|w| w.value.parse().ok())
    }

    /// `uid=`/`gid=` (default 0).
    pub fn owner(&self) -> (u32, u32) {
        (
            Self::number(&self.uid).unwrap_or(0),
            Self::number(&self.gid).unwrap_or(0),
        )
    }

    /// `mode=` (octal), else `default`.
    pub fn mode_or(&self, default: u32) -> u32 {
        self.mode
            .as_ref()
            .and_then(|m| u32::from_str_radix(&m.value, 8).ok())
            .unwrap_or(default)
    }

    /// The id BuildKit uses: given, else the target (cache), the target's base name (secret), `default` (ssh).
    pub fn effective_id(&self) -> Option<String> {
        if let Some(id) = &self.id {
            return Some(id.value.clone());
        }
        match self.mount_type {
            MountType::Cache => self.target.as_ref().map(|t| t.value.clone()),
            MountType::Secret => self.target.as_ref().map(|t| {
                t.value
                    .trim_end_matches('/')
                    .rsplit('/')
                    .next()
                    .unwrap_or("")
                    .to_string()
            }),
            MountType::Ssh => Some("default".into()),
            _ => None,
        }
    }

    /// Where the mount appears: given, else `/run/secrets/<id>` for secrets and the agent socket for ssh.
    pub fn effective_target(&self) -> Option<String> {
        if let Some(t) = &self.target {
            return Some(t.value.clone());
        }
        match self.mount_type {
            MountType::Secret if self.env.is_none() => {
                self.effective_id().map(|id| format!("/run/secrets/{id}"))
            }
            MountType::Ssh => Some("/run/buildkit/ssh_agent.0".into()),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Network {
    Default,
    None,
    Host,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Security {
    Sandbox,
    Insecure,
}

/// COPY and ADD share sources/destination and most flags.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CopyArgs {
    /// Sources as written; heredoc sources appear as `<<NAME` words and in `Instruction::heredocs`.
    pub sources: Vec<Word>,
    pub dest: Word,
    /// JSON array form was used.
    pub json: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<Word>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chown: Option<Word>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chmod: Option<Word>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub link: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub parents: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<Word>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checksum: Option<Word>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub keep_git_dir: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unpack: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HealthcheckArgs {
    /// None for `HEALTHCHECK NONE`.
    pub command: Option<Command>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<Word>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Word>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_period: Option<Word>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_interval: Option<Word>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retries: Option<Word>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Kind {
    From {
        image: Word,
        #[serde(skip_serializing_if = "Option::is_none")]
        name: Option<Word>,
        #[serde(skip_serializing_if = "Option::is_none")]
        platform: Option<Word>,
    },
    Run {
        command: Command,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        mounts: Vec<Mount>,
        #[serde(skip_serializing_if = "Option::is_none")]
        network: Option<Network>,
        #[serde(skip_serializing_if = "Option::is_none")]
        security: Option<Security>,
    },
    Cmd {
        command: Command,
    },
    Entrypoint {
        command: Command,
    },
    Shell {
        shell: Vec<Word>,
    },
    Label {
        labels: Vec<KeyValue>,
    },
    Env {
        vars: Vec<KeyValue>,
    },
    Maintainer {
        name: Word,
    },
    Expose {
        ports: Vec<Word>,
    },
    Add(CopyArgs),
    Copy(CopyArgs),
    Volume {
        paths: Vec<Word>,
    },
    User {
        user: Word,
    },
    Workdir {
        path: Word,
    },
    Arg {
        args: Vec<ArgDecl>,
    },
    Onbuild {
        /// The trigger as written, stored in the image config.
        expression: String,
        trigger: Box<Instruction>,
    },
    Stopsignal {
        signal: Word,
    },
    Healthcheck(HealthcheckArgs),
}
