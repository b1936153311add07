//! `lamina kill`: send a signal to a running container's main process.

use std::process::ExitCode;

use anyhow::{Context, bail};

use super::container::state;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Signal name or number.
    #[arg(short = 's', long = "signal", default_value = "KILL")]
    pub signal: String,
    /// Container names or ids.
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub fn run(cli: &crate::Cli, args: &Args) -> anyhow::Result<ExitCode> {
    let root = cli.store_root();
    let sig = parse_signal(&args.signal)?;
    for c in &args.containers {
        let rec = state::find(&root, c)?;
        let pid = rec
            .pid()
            .with_context(|| format!("container {c} is not running"))?;
        send(pid, sig).with_context(|| format!("signalling container {c}"))?;
        crate::outln!("{c}");
    }
    Ok(ExitCode::SUCCESS)
}

pub fn send(pid: i32, sig: rustix::process::Signal) -> std::io::Result<()> {
    let pid = rustix::process::Pid::from_raw(pid)
        .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    rustix::process::kill_process(pid, sig).map_err(Into::into)
}

pub fn parse_signal(s: &str) -> anyhow::Result<rustix::process::Signal> {
    use rustix::process::Signal as S;
    let name = s.trim_start_matches("SIG").to_ascii_uppercase();
    let sig = match name.as_str() {
        "KILL" | "9" => S::KILL,
        "TERM" | "15" => S::TERM,
        "INT" | "2" => S::INT,
        "HUP" | "1" => S::HUP,
        "QUIT" | "3" => S::QUIT,
        "USR1" | "10" => S::USR1,
        "USR2" | "12" => S::USR2,
        "STOP" | "19" => S::STOP,
        "CONT" | "18" => S::CONT,
        "WINCH" | "28" => S::WINCH,
        "ALRM" | "14" => S::ALARM,
        _ => bail!("unknown signal {s:?}"),
    };
    Ok(sig)
}
