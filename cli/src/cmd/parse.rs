//! `lamina parse`: parse a Dockerfile and print its stages and instructions, expanded as the builder
//! would expand them (for tooling and tests).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use lamina_builder::dockerfile::graph::{BuildOptions, Platform};
use lamina_builder::dockerfile::report;

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The Dockerfile (`-` for stdin).
    #[arg(short = 'f', long = "file", default_value = "Dockerfile")]
    pub file: PathBuf,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Stage to build (default: the last one); stages it doesn't need are left out.
    #[arg(long)]
    pub target: Option<String>,
    /// KEY=VALUE, or KEY to take the value from the environment.
    #[arg(long = "build-arg", value_name = "KEY[=VALUE]")]
    pub build_args: Vec<String>,
    /// Target platform (os/arch[/variant]); default: this machine.
    #[arg(long)]
    pub platform: Option<String>,
}

pub fn run(_cli: &crate::Cli, args: &Args) -> anyhow::Result<ExitCode> {
    let (name, src) = if args.file.as_os_str() == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
            .context("reading the Dockerfile from stdin")?;
        ("Dockerfile".to_string(), s)
    } else {
        let s = std::fs::read_to_string(&args.file)
            .with_context(|| format!("reading {}", args.file.display()))?;
        (args.file.display().to_string(), s)
    };
    let mut build_args = BTreeMap::new();
    for a in &args.build_args {
        match a.split_once('=') {
            Some((k, v)) => {
                build_args.insert(k.to_string(), v.to_string());
            }
            None => {
                // Like docker: a bare KEY takes its value from our environment, or is skipped.
                if let Ok(v) = std::env::var(a) {
                    build_args.insert(a.clone(), v);
                }
            }
        }
    }
    let platform = match &args.platform {
        Some(p) => Platform::parse(p)
            .with_context(|| format!("invalid --platform '{p}': expected os/arch[/variant]"))?,
        None => Platform::host(),
    };
    let opts = BuildOptions {
        target: args.target.clone(),
        build_args,
        platform,
        build_platform: Platform::host(),
        named_contexts: Default::default(),
        triggers: Default::default(),
    };
    let rep = match report::report(&src, &name, &opts) {
        Ok(r) => r,
        Err(e) => {
            // A Dockerfile error is the user's: message, then the caret snippet.
            eprintln!("error: {}", e.render());
            return Ok(ExitCode::from(1));
        }
    };
    for w in &rep.warnings {
        eprintln!("{}", w.display(&name));
    }
    match args.format {
        Format::Json => crate::outln!(
            "{}",
            serde_json::to_string_pretty(&rep).context("encoding the report")?
        ),
        Format::Text => crate::out!("{}", report::render_text(&rep)),
    }
    Ok(ExitCode::SUCCESS)
}
