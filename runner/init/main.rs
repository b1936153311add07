//! lamina-init: pid 1 of a `lamina run --init` container (`/.lamina-init -- CMD ARGS…`).
//!
//! Built by the runner's build script as a static binary (it runs in any image, libc or not) and
//! put in the container's init layer by the helper. It blocks every signal, starts the command,
//! then waits for signals (the command itself starts with none blocked): SIGCHLD reaps every exited child (orphans re-parented to pid 1 included,
//! so no zombies pile up), any other signal sent with kill(2) is passed on to the command (ones the
//! terminal generates already reach it through its process group), and when the command exits,
//! so does init, with its status (128+N for a signal, as a shell reports it).
//!
//! Blocked signals are never dropped, even for a pid 1 without handlers, so `lamina stop`'s
//! SIGTERM reaches the command. Only std and a few libc symbols std already links.

use std::os::raw::c_int;
use std::os::unix::process::CommandExt;
use std::process::Command;

#[repr(C)]
struct SigSet([u64; 16]);

#[repr(C)]
struct SigInfo {
    signo: c_int,
    errno: c_int,
    code: c_int,
    _rest: [u8; 116],
}

unsafe extern "C" {
    fn sigfillset(set: *mut SigSet) -> c_int;
    fn sigemptyset(set: *mut SigSet) -> c_int;
    fn sigprocmask(how: c_int, set: *const SigSet, old: *mut SigSet) -> c_int;
    fn sigwaitinfo(set: *const SigSet, info: *mut SigInfo) -> c_int;
    fn waitpid(pid: c_int, status: *mut c_int, options: c_int) -> c_int;
    fn kill(pid: c_int, sig: c_int) -> c_int;
}

const SIG_SETMASK: c_int = 2;
const SIGCHLD: c_int = 17;
const WNOHANG: c_int = 1;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cmd = match args.first().map(String::as_str) {
        Some("--") => &args[1..],
        _ => &args[..],
    };
    if cmd.is_empty() {
        eprintln!("lamina-init: no command");
        std::process::exit(125);
    }
    let mut all = SigSet([0; 16]);
    // SAFETY: plain libc calls on a sigset we own.
    unsafe {
        sigfillset(&mut all);
        sigprocmask(SIG_SETMASK, &all, std::ptr::null_mut());
    }
    // The command starts with nothing blocked: std keeps the caller's mask, which is ours.
    let mut command = Command::new(&cmd[0]);
    command.args(&cmd[1..]);
    // SAFETY: only sigemptyset/sigprocmask (async-signal-safe) between fork and exec.
    unsafe {
        command.pre_exec(|| {
            let mut none = SigSet([0; 16]);
            sigemptyset(&mut none);
            sigprocmask(SIG_SETMASK, &none, std::ptr::null_mut());
            Ok(())
        });
    }
    let child = match command.spawn() {
        Ok(c) => c.id() as c_int,
        Err(e) => {
            eprintln!("lamina-init: exec {:?}: {e}", cmd[0]);
            std::process::exit(if e.kind() == std::io::ErrorKind::NotFound { 127 } else { 126 });
        }
    };
    loop {
        let mut info = SigInfo {
            signo: 0,
            errno: 0,
            code: 0,
            _rest: [0; 116],
        };
        // SAFETY: waits on our own sigset; info is large enough for siginfo_t (128 bytes).
        let sig = unsafe { sigwaitinfo(&all, &mut info) };
        if sig < 0 {
            continue;
        }
        if sig == SIGCHLD {
            loop {
                let mut status: c_int = 0;
                // SAFETY: reaps any child; status is ours.
                let pid = unsafe { waitpid(-1, &mut status, WNOHANG) };
                if pid <= 0 {
                    break;
                }
                if pid == child {
                    let code = if status & 0x7f == 0 {
                        (status >> 8) & 0xff
                    } else {
                        128 + (status & 0x7f)
                    };
                    std::process::exit(code);
                }
            }
        } else if info.code <= 0 {
            // SI_USER/SI_QUEUE/SI_TKILL: sent to us on purpose, so it is the command's.
            // SAFETY: signals our own child.
            unsafe { kill(child, sig) };
        }
    }
}
