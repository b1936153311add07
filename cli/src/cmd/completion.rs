//! `lamina completion bash|zsh|fish|…` (shell completions, clap_complete) and `lamina man DIR` (a man page
//! per command, clap_mangen): both from the clap definition, so they never drift from the flags.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::CommandFactory as _;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The shell: bash, zsh, fish, elvish or powershell.
    shell: clap_complete::Shell,
}

#[derive(clap::Args, Debug)]
pub struct ManArgs {
    /// Directory to write `lamina.1` and `lamina-COMMAND.1` into.
    dir: PathBuf,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let mut cmd = crate::Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "lamina", &mut out);
    crate::output::emit(&String::from_utf8_lossy(&out));
    Ok(ExitCode::SUCCESS)
}

pub fn run_man(args: &ManArgs) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(&args.dir).with_context(|| format!("creating {}", args.dir.display()))?;
    let cmd = crate::Cli::command();
    let mut pages = vec![("lamina".to_owned(), cmd.clone())];
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        pages.push((
            format!("lamina-{}", sub.get_name()),
            sub.clone()
                .display_name(format!("lamina-{}", sub.get_name()))
                .bin_name(format!("lamina {}", sub.get_name())),
        ));
    }
    for (name, c) in pages {
        let mut buf = Vec::new();
        clap_mangen::Man::new(c)
            .render(&mut buf)
            .context("rendering a man page")?;
        let path = args.dir.join(format!("{name}.1"));
        std::fs::write(&path, buf).with_context(|| format!("writing {}", path.display()))?;
        crate::outln!("{}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}
