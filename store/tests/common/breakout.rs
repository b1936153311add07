//! The harness of the breakout battery: a destination root with a canary directory beside it, and a naive
//! control that shows each payload is real.
//!
//! The control is Python's `tarfile` with no filter (the behaviour behind CVE-2007-4559 and its many
//! descendants): it joins names onto the destination and lets the host kernel follow whatever links the
//! archive planted. A payload that moves the control's canary and leaves lamina's alone proves both that the
//! archive is hostile and that the applier confines it.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use lamina_store::layer::{ApplyOptions, ApplyStats, LayerError, WhiteoutMode, apply_layer};

use super::dump;

/// `tarfile` extraction with no filter, member by member so one refused member does not stop the members
/// after it (a naive extractor that keeps going). With a third argument it also applies `SCHILY.xattr.*` records
/// by joined path, following links, as a naive applier that copies xattrs would.
const NAIVE: &str = r#"
import os, sys, tarfile
t = tarfile.open(sys.argv[1], errorlevel=0)
kw = {"filter": "fully_trusted"} if hasattr(tarfile, "fully_trusted_filter") else {}
for m in t.getmembers():
    try:
        t.extract(m, sys.argv[2], **kw)
    except Exception:
        pass
if len(sys.argv) > 3:
    for m in t.getmembers():
        for k, v in m.pax_headers.items():
            if k.startswith("SCHILY.xattr."):
                try:
                    os.setxattr(os.path.join(sys.argv[2], m.name), k[13:], v.encode("utf-8", "surrogateescape"))
                except OSError:
                    pass
"#;

/// A temp dir holding `root` (the destination) and `sentinel` (the canary: a file, a subdir).
pub struct Case {
    _tmp: tempfile::TempDir,
    pub base: PathBuf,
    pub root: PathBuf,
    pub sentinel: PathBuf,
    before: BTreeMap<String, String>,
    before_mode: u32,
}

impl Case {
    pub fn new() -> Case {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().to_path_buf();
        let root = base.join("root");
        let sentinel = base.join("sentinel");
        fs::create_dir(&root).unwrap();
        fs::create_dir(&sentinel).unwrap();
        fs::write(sentinel.join("keep"), b"precious").unwrap();
        fs::create_dir(sentinel.join("sub")).unwrap();
        let before = dump(&sentinel);
        let before_mode = fs::metadata(&sentinel).unwrap().mode();
        Case {
            _tmp: tmp,
            base,
            root,
            sentinel,
            before,
            before_mode,
        }
    }

    pub fn apply(&self, tar: &[u8]) -> Result<ApplyStats, LayerError> {
        apply_layer(tar, &self.root, &ApplyOptions::default())
    }

    pub fn apply_with(&self, tar: &[u8], whiteouts: WhiteoutMode) -> Result<ApplyStats, LayerError> {
        let opts = ApplyOptions {
            whiteouts,
            ..ApplyOptions::default()
        };
        apply_layer(tar, &self.root, &opts)
    }

    /// What changed outside the root: the canary's tree (content, modes, xattrs, links), its link count,
    /// or new names beside the root. Empty when nothing did.
    pub fn outside_changes(&self) -> Vec<String> {
        let mut out = Vec::new();
        let now = dump(&self.sentinel);
        for (k, v) in &now {
            if self.before.get(k) != Some(v) {
                out.push(format!("sentinel/{k}: {v}"));
            }
        }
        for k in self.before.keys() {
            if !now.contains_key(k) {
                out.push(format!("sentinel/{k}: removed"));
            }
        }
        match fs::metadata(self.sentinel.join("keep")) {
            Ok(md) if md.nlink() != 1 => out.push(format!("sentinel/keep: {} links", md.nlink())),
            _ => {}
        }
        if fs::metadata(&self.sentinel).map(|m| m.mode()).ok() != Some(self.before_mode) {
            out.push("sentinel: mode changed or removed".into());
        }
        let mut names: Vec<_> = fs::read_dir(&self.base)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != "root" && n != "sentinel" && n != "layer.tar")
            .collect();
        names.sort();
        out.extend(names.into_iter().map(|n| format!("beside the root: {n}")));
        out
    }

    /// The sentinel is untouched and nothing new appeared beside the root.
    pub fn assert_outside_untouched(&self) {
        let changes = self.outside_changes();
        assert!(
            changes.is_empty(),
            "lamina changed things outside the root: {changes:?}"
        );
    }

    /// The absolute host path of the sentinel, as an archive would name it.
    pub fn abs_sentinel(&self) -> String {
        self.sentinel.to_str().unwrap().to_owned()
    }

    /// Where an absolute archive path lands when the root is `/`.
    pub fn in_root(&self, p: &str) -> PathBuf {
        self.root.join(p.trim_start_matches('/'))
    }

    /// Extracts `tar` into this case's root the naive way (see [`NAIVE`]).
    pub fn naive_extract(&self, tar: &[u8], xattrs: bool) {
        let p = self.base.join("layer.tar");
        fs::write(&p, tar).unwrap();
        let mut cmd = Command::new("python3");
        cmd.arg("-c").arg(NAIVE).arg(&p).arg(&self.root);
        if xattrs {
            cmd.arg("xattrs");
        }
        let out = cmd.output().expect("run python3");
        assert!(
            out.status.success(),
            "naive control crashed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        fs::remove_file(&p).unwrap();
    }
}

/// One breakout payload, built per case because it may name the case's absolute canary path.
pub struct Breakout<F: Fn(&Case) -> Vec<u8>> {
    pub build: F,
    /// The control also applies xattrs (for payloads that attack through xattrs).
    pub xattrs: bool,
}

/// The outcome of running a payload through lamina: the case (for in-root assertions) and the result.
pub struct Outcome {
    pub case: Case,
    pub result: Result<ApplyStats, LayerError>,
}

impl<F: Fn(&Case) -> Vec<u8>> Breakout<F> {
    pub fn new(build: F) -> Self {
        Breakout { build, xattrs: false }
    }

    pub fn with_xattrs(mut self) -> Self {
        self.xattrs = true;
        self
    }

    /// The control breaks out; lamina, in delete mode and (as root) overlay-snapshot mode, does not.
    /// `None` (after a skip) when python3 is missing.
    #[track_caller]
    pub fn run(&self) -> Option<Outcome> {
        if !lamina_testkit::need_tools(&["python3"]) {
            return None;
        }
        let control = Case::new();
        control.naive_extract(&(self.build)(&control), self.xattrs);
        let hit = control.outside_changes();
        assert!(
            !hit.is_empty(),
            "the naive control did not break out: the payload is not real"
        );
        if super::is_root() {
            // The snapshot path (pull, load, import, FROM) applies with overlay whiteouts.
            let c = Case::new();
            let _ = c.apply_with(&(self.build)(&c), WhiteoutMode::Overlay);
            c.assert_outside_untouched();
        }
        let case = Case::new();
        let result = case.apply(&(self.build)(&case));
        case.assert_outside_untouched();
        Some(Outcome { case, result })
    }
}

/// `err` names the archive entry it is about.
pub fn entry_named(err: &LayerError, name: &str) {
    let msg = err.to_string();
    assert!(msg.contains(name), "error {msg:?} should name entry {name:?}");
}

/// `p` resolved on the host, the way a plain `Path::join` + kernel lookup would.
pub fn host_resolves_to(p: &Path) -> Option<PathBuf> {
    fs::canonicalize(p).ok()
}
