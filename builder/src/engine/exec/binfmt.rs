//! Whether the kernel can run another architecture's binaries: a binfmt_misc handler (QEMU user-mode,
//! as Debian's `qemu-user-static` registers) whose magic matches that architecture's ELF header.
//!
//! The handler must carry the F ("fix binary") flag: the kernel then opens the interpreter when it is
//! registered, so it runs inside a container whose rootfs has no qemu. Without F the kernel looks the
//! interpreter up in the container's rootfs at exec time, where it is not.

use std::path::{Path, PathBuf};

use crate::dockerfile::graph::Platform;

/// Where the kernel exposes binfmt_misc.
pub const BINFMT_DIR: &str = "/proc/sys/fs/binfmt_misc";

/// How to get a handler, for messages.
const INSTALL: &str = "install QEMU user-mode emulation: `apt-get install qemu-user-static` (Debian/Ubuntu; \
     it registers handlers with the F flag), or `docker run --privileged --rm tonistiigi/binfmt --install all`";

/// Why a foreign platform's RUN can't run here.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    #[error("lamina knows no ELF machine for architecture {arch:?}")]
    UnknownArch { arch: String },
    #[error("binfmt_misc is not mounted or disabled at {dir}; {INSTALL}")]
    NoBinfmt { dir: PathBuf },
    #[error("no binfmt_misc handler for {arch} is registered in {dir}; {INSTALL}")]
    NoHandler { arch: String, dir: PathBuf },
    #[error(
        "the binfmt_misc handler {path} for {arch} lacks the F flag, so its interpreter would be looked \
         up inside the build's rootfs; re-register it with F ({INSTALL})"
    )]
    NotFixed { arch: String, path: PathBuf },
}

/// A registered handler that can run the platform's binaries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Handler {
    /// The handler's entry (`…/binfmt_misc/qemu-aarch64`).
    pub entry: PathBuf,
    pub interpreter: String,
}

/// The first 20 bytes of an executable ELF file for `arch` (class, byte order, e_type, e_machine):
/// what QEMU's handler magics are written against.
fn elf_header(arch: &str) -> Option<[u8; 20]> {
    // (64-bit, little-endian, e_machine)
    let (wide, little, machine): (bool, bool, u16) = match arch {
        "amd64" => (true, true, 62),
        "arm64" => (true, true, 183),
        "arm" => (false, true, 40),
        "386" => (false, true, 3),
        "ppc64le" => (true, true, 21),
        "ppc64" => (true, false, 21),
        "s390x" => (true, false, 22),
        "riscv64" => (true, true, 243),
        "mips64le" => (true, true, 8),
        "loong64" => (true, true, 258),
        _ => return None,
    };
    let mut h = [0u8; 20];
    h[..4].copy_from_slice(b"\x7fELF");
    h[4] = if wide { 2 } else { 1 };
    h[5] = if little { 1 } else { 2 };
    h[6] = 1;
    let (ty, m) = if little {
        (2u16.to_le_bytes(), machine.to_le_bytes())
    } else {
        (2u16.to_be_bytes(), machine.to_be_bytes())
    };
    h[16..18].copy_from_slice(&ty);
    h[18..20].copy_from_slice(&m);
    Some(h)
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// One handler entry's fields, when it is an enabled magic handler.
struct Entry {
    interpreter: String,
    flags: String,
    offset: usize,
    magic: Vec<u8>,
    mask: Option<Vec<u8>>,
}

fn parse_entry(text: &str) -> Option<Entry> {
    let mut lines = text.lines();
    if lines.next()? != "enabled" {
        return None;
    }
    let (mut interpreter, mut flags, mut offset, mut magic, mut mask) = (None, String::new(), 0, None, None);
    for l in lines {
        if let Some(v) = l.strip_prefix("interpreter ") {
            interpreter = Some(v.to_string());
        } else if let Some(v) = l.strip_prefix("flags:") {
            flags = v.trim().to_string();
        } else if let Some(v) = l.strip_prefix("offset ") {
            offset = v.trim().parse().ok()?;
        } else if let Some(v) = l.strip_prefix("magic ") {
            magic = unhex(v.trim());
        } else if let Some(v) = l.strip_prefix("mask ") {
            mask = unhex(v.trim());
        }
    }
    Some(Entry {
        interpreter: interpreter?,
        flags,
        offset,
        magic: magic?,
        mask,
    })
}

impl Entry {
    /// The kernel's test: header bytes at `offset`, masked, equal the magic.
    fn matches(&self, header: &[u8]) -> bool {
        self.magic.iter().enumerate().all(|(i, m)| {
            let Some(b) = header.get(self.offset + i) else {
                return false;
            };
            let k = self
                .mask
                .as_ref()
                .and_then(|mk| mk.get(i))
                .copied()
                .unwrap_or(0xff);
            b & k == m & k
        })
    }
}

/// The handler in `dir` (binfmt_misc's mount) that runs `platform`'s binaries.
pub fn find_handler(dir: &Path, platform: &Platform) -> Result<Handler, EmulatorError> {
    let arch = platform.architecture.as_str();
    let header = elf_header(arch).ok_or_else(|| EmulatorError::UnknownArch { arch: arch.into() })?;
    let status = std::fs::read_to_string(dir.join("status")).unwrap_or_default();
    if status.trim() != "enabled" {
        return Err(EmulatorError::NoBinfmt { dir: dir.into() });
    }
    let entries = std::fs::read_dir(dir).map_err(|_| EmulatorError::NoBinfmt { dir: dir.into() })?;
    let mut unfixed = None;
    for e in entries.flatten() {
        let name = e.file_name();
        if name == "status" || name == "register" {
            continue;
        }
        let Some(entry) = std::fs::read_to_string(e.path())
            .ok()
            .as_deref()
            .and_then(parse_entry)
        else {
            continue;
        };
        if !entry.matches(&header) {
            continue;
        }
        if entry.flags.contains('F') {
            return Ok(Handler {
                entry: e.path(),
                interpreter: entry.interpreter,
            });
        }
        unfixed = Some(e.path());
    }
    Err(match unfixed {
        Some(path) => EmulatorError::NotFixed {
            arch: arch.into(),
            path,
        },
        None => EmulatorError::NoHandler {
            arch: arch.into(),
            dir: dir.into(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // Debian's qemu-aarch64 entry as the kernel shows it.
    const AARCH64: &str = "enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: PF\noffset 0\n\
        magic 7f454c460201010000000000000000000200b700\nmask ffffffffffffff00fffffffffffffffffeffffff\n";

    fn dir(entries: &[(&str, &str)]) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("status"), "enabled\n").unwrap();
        std::fs::write(d.path().join("register"), "").unwrap();
        for (n, t) in entries {
            std::fs::write(d.path().join(n), t).unwrap();
        }
        d
    }

    fn arm64() -> Platform {
        Platform::parse("linux/arm64").unwrap()
    }

    #[test]
    fn finds_the_handler_whose_magic_matches() {
        let d = dir(&[("qemu-aarch64", AARCH64)]);
        let h = find_handler(d.path(), &arm64()).unwrap();
        assert_eq!(h.interpreter, "/usr/libexec/qemu-binfmt/aarch64-binfmt-P");
        let e = find_handler(d.path(), &Platform::parse("linux/s390x").unwrap()).unwrap_err();
        assert!(matches!(e, EmulatorError::NoHandler { .. }), "{e}");
        assert!(e.to_string().contains("apt-get install qemu-user-static"), "{e}");
    }

    #[test]
    fn a_handler_without_f_or_disabled_does_not_count() {
        let d = dir(&[("qemu-aarch64", &AARCH64.replace("flags: PF", "flags: P"))]);
        let e = find_handler(d.path(), &arm64()).unwrap_err();
        assert!(matches!(e, EmulatorError::NotFixed { .. }), "{e}");
        let d = dir(&[("qemu-aarch64", &AARCH64.replace("enabled", "disabled"))]);
        assert!(matches!(
            find_handler(d.path(), &arm64()),
            Err(EmulatorError::NoHandler { .. })
        ));
    }

    #[test]
    fn no_binfmt_mount_is_its_own_error() {
        let d = tempfile::tempdir().unwrap();
        assert!(matches!(
            find_handler(d.path(), &arm64()),
            Err(EmulatorError::NoBinfmt { .. })
        ));
    }
}
