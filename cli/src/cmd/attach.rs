//! `lamina attach CONTAINER`: connect this terminal to a detached `-t` container's terminal, through
//! the socket its monitor serves (`lamina_runner::tty`). The detach keys (docker's `ctrl-p,ctrl-q` by
//! default) leave it running; otherwise attach ends when the container does, with its exit code.

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use lamina_runner::tty::{DEFAULT_DETACH_KEYS, DetachKeys, DetachScanner, Frame, RawMode, winsize};

use super::container::state;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Key sequence that detaches and leaves the container running.
    #[arg(long = "detach-keys", default_value = DEFAULT_DETACH_KEYS, value_name = "KEYS")]
    pub detach_keys: String,
    /// Do not send our stdin to the container.
    #[arg(long = "no-stdin")]
    pub no_stdin: bool,
    /// Accepted for docker compatibility: with a terminal, signals are keys the container's
    /// terminal turns into signals itself.
    #[arg(long = "sig-proxy", default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub sig_proxy: bool,
    /// Container name or id.
    pub container: String,
}

pub fn run(cli: &crate::Cli, args: &Args) -> anyhow::Result<ExitCode> {
    let keys: DetachKeys = args.detach_keys.parse()?;
    let root = cli.store_root();
    let rec = state::find(&root, &args.container)?;
    if !rec.running() {
        bail!("container {} is not running", args.container);
    }
    if !rec.meta.tty || !rec.meta.detached {
        bail!(
            "container {} has no terminal to attach to (it was not started with -dt); follow its output with `lamina logs -f {}`",
            args.container,
            args.container
        );
    }
    let path = rec.dir.join(state::ATTACH_SOCKET);
    let sock = lamina_runner::connect_attach(&path).with_context(|| {
        format!(
            "connecting to the terminal of {} ({})",
            args.container,
            path.display()
        )
    })?;
    let writer = Arc::new(Mutex::new(sock.try_clone()?));
    if let Some(size) = winsize(std::io::stdout().as_fd()).or_else(|| winsize(std::io::stdin().as_fd())) {
        let _ = Frame::Resize(size).write_to(&mut *writer.lock().unwrap_or_else(|e| e.into_inner()));
    }
    let raw = RawMode::stdin();
    let detached = Arc::new(AtomicBool::new(false));
    if !args.no_stdin {
        let (w, d, s) = (writer.clone(), detached.clone(), sock.try_clone()?);
        std::thread::spawn(move || send_input(&w, DetachScanner::new(&keys), &d, &s));
    }
    if let Ok(mut winch) = signal_hook::iterator::Signals::new([signal_hook::consts::SIGWINCH]) {
        let w = writer.clone();
        std::thread::spawn(move || {
            for _ in winch.forever() {
                if let Some(size) = winsize(std::io::stdout().as_fd()) {
                    let _ = Frame::Resize(size).write_to(&mut *w.lock().unwrap_or_else(|e| e.into_inner()));
                }
            }
        });
    }
    let mut out = std::io::stdout();
    let mut reader = &sock;
    let mut buf = [0u8; 16 * 1024];
    while let Ok(n) = reader.read(&mut buf) {
        if n == 0 || out.write_all(&buf[..n]).and_then(|()| out.flush()).is_err() {
            break;
        }
    }
    drop(raw);
    if detached.load(Ordering::SeqCst) {
        return Ok(ExitCode::SUCCESS);
    }
    Ok(ExitCode::from(exit_code(&rec.dir).clamp(0, 255) as u8))
}

/// Stdin → input frames, until stdin ends or the detach keys are typed (which hang up the socket,
/// ending the output copy too).
fn send_input(
    writer: &Mutex<std::os::unix::net::UnixStream>,
    mut scanner: DetachScanner,
    detached: &AtomicBool,
    sock: &std::os::unix::net::UnixStream,
) {
    let mut stdin = std::io::stdin().lock();
    let mut buf = [0u8; 4096];
    while let Ok(n) = stdin.read(&mut buf) {
        if n == 0 {
            return;
        }
        let (pass, done) = scanner.feed(&buf[..n]);
        let mut w = writer.lock().unwrap_or_else(|e| e.into_inner());
        if !pass.is_empty() && Frame::Input(pass).write_to(&mut *w).is_err() {
            return;
        }
        if done {
            detached.store(true, Ordering::SeqCst);
            let _ = sock.shutdown(std::net::Shutdown::Both);
            return;
        }
    }
}

/// The container's exit code once its monitor has recorded it (it does so right after the terminal
/// closes); 125 if it never does.
fn exit_code(dir: &std::path::Path) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(rec) = state::load(dir)
            && let Some(o) = rec.status.as_ref().and_then(|s| s.outcome)
        {
            return o.exit_code;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    125
}
