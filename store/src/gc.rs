//! GC with a budget, in the spirit of BuildKit's gc policy: [`collect`] removes the least recently used
//! build cache (step records, and with them the blobs and snapshots nothing else keeps), cache mounts and
//! context memos until the store's disk usage is at most `keep_storage`, skipping anything used within
//! `until`. What a tagged image needs (the mark phase of prune.rs) and what a live lease holds is never
//! touched, so the budget is a target, not a guarantee: a store whose images alone exceed it stays over.
//!
//! Sizes are disk usage (allocated blocks, each inode once) like `du`, so "under 30MB" means what `du -s`
//! says. [`GcPolicy`] is the automatic GC after a build: `gc.keepStorage` in `<root>/config.json`, or
//! `LAMINA_GC_KEEP_STORAGE`; off unless one is set.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::buildcache::{self, RecordEntry};
use crate::digest::{Algorithm, Digest};
use crate::layout::{Store, StoreError};
use crate::lease::LeaseScan;
use crate::prune::{PruneReport, Reachable, remove_tree};

/// Errors of GC settings (sizes, durations, the store config).
#[derive(Debug, thiserror::Error)]
pub enum GcConfigError {
    #[error(
        "invalid size {0:?}: expected a number with an optional unit (B, kB, MB, GB, TB, KiB, MiB, GiB, TiB)"
    )]
    Size(String),
    #[error("invalid duration {0:?}: expected a Go duration like 24h, 90m, 1h30m, 45s")]
    Duration(String),
    #[error("{path}: gc.keepStorage")]
    Config {
        path: PathBuf,
        #[source]
        source: Box<GcConfigError>,
    },
    #[error("reading {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path} is not valid JSON")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("LAMINA_GC_KEEP_STORAGE")]
    Env {
        #[source]
        source: Box<GcConfigError>,
    },
}

/// Parses a size like docker's flags take them: `30MB`, `1.5GB`, `512k`, `4MiB`, `1000` (bytes). Decimal
/// units are powers of 1000 (as sizes are printed), binary ones (KiB…) powers of 1024.
pub fn parse_size(s: &str) -> Result<u64, GcConfigError> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = (t[..split].trim(), t[split..].trim());
    let n: f64 = num.parse().map_err(|_| GcConfigError::Size(s.to_owned()))?;
    let mult: f64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "m" | "mb" => 1e6,
        "g" | "gb" => 1e9,
        "t" | "tb" => 1e12,
        "kib" => 1024.0,
        "mib" => 1024.0f64.powi(2),
        "gib" => 1024.0f64.powi(3),
        "tib" => 1024.0f64.powi(4),
        _ => return Err(GcConfigError::Size(s.to_owned())),
    };
    Ok((n * mult).round() as u64)
}

/// Parses a Go duration (`time.ParseDuration`): a sequence of decimal numbers with units ns, us, µs, ms,
/// s, m, h, e.g. `24h`, `90m`, `1h30m`, `1.5h`. Docker's `--filter until=` also takes these.
pub fn parse_duration(s: &str) -> Result<Duration, GcConfigError> {
    let bad = || GcConfigError::Duration(s.to_owned());
    let mut rest = s.trim();
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let n_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let n: f64 = rest[..n_end].parse().map_err(|_| bad())?;
        rest = &rest[n_end..];
        let u_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let secs = match &rest[..u_end] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        total += n * secs;
        rest = &rest[u_end..];
    }
    Duration::try_from_secs_f64(total).map_err(|_| bad())
}

/// What a budgeted GC may remove.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GcOptions {
    /// Stop once the store uses at most this many bytes; `None`: remove every candidate.
    pub keep_storage: Option<u64>,
    /// Keep anything used more recently than this long ago.
    pub until: Option<Duration>,
}

/// The automatic GC after a build.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GcPolicy {
    /// `gc.keepStorage`; `None`: no automatic GC.
    pub keep_storage: Option<u64>,
}

impl GcPolicy {
    /// `LAMINA_GC_KEEP_STORAGE` if set (empty or `0` turns GC off), else `gc.keepStorage` of
    /// `<root>/config.json` (a size string or a number of bytes), else off.
    pub fn load(root: &Path) -> Result<GcPolicy, GcConfigError> {
        if let Some(v) = std::env::var_os("LAMINA_GC_KEEP_STORAGE") {
            let v = v.to_string_lossy();
            let keep = match v.trim() {
                "" | "0" => None,
                s => Some(parse_size(s).map_err(|e| GcConfigError::Env { source: Box::new(e) })?),
            };
            return Ok(GcPolicy { keep_storage: keep });
        }
        let path = root.join("config.json");
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(GcPolicy::default()),
            Err(source) => return Err(GcConfigError::Read { path, source }),
        };
        let v: serde_json::Value = serde_json::from_slice(&bytes).map_err(|source| GcConfigError::Json {
            path: path.clone(),
            source,
        })?;
        let keep = match v.pointer("/gc/keepStorage") {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::Number(n)) => n.as_u64().filter(|&n| n > 0),
            Some(serde_json::Value::String(s)) => Some(parse_size(s).map_err(|e| GcConfigError::Config {
                path: path.clone(),
                source: Box::new(e),
            })?),
            Some(other) => {
                return Err(GcConfigError::Config {
                    path,
                    source: Box::new(GcConfigError::Size(other.to_string())),
                });
            }
        };
        Ok(GcPolicy { keep_storage: keep })
    }
}

/// Disk usage of a file or tree: allocated bytes, each inode counted once (as `du` does), symlinks not
/// followed.
pub fn disk_usage(path: &Path) -> u64 {
    let mut seen = HashSet::new();
    usage_of(path, &mut seen)
}

fn usage_of(path: &Path, seen: &mut HashSet<(u64, u64)>) -> u64 {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return 0;
    };
    if meta.nlink() > 1 && !meta.is_dir() && !seen.insert((meta.dev(), meta.ino())) {
        return 0;
    }
    let mut total = meta.blocks() * 512;
    if meta.is_dir()
        && let Ok(rd) = fs::read_dir(path)
    {
        for e in rd.flatten() {
            total += usage_of(&e.path(), seen);
        }
    }
    total
}

/// One thing GC may remove.
enum Candidate {
    Record(RecordEntry),
    Mount(buildcache::MountEntry),
    Memo(PathBuf),
}

/// Removes least-recently-used build cache until the store is within `opts.keep_storage`. Call from
/// prune, under the exclusive store lock, after its sweep (so the usage measured is not garbage).
pub(crate) fn collect(
    store: &Store,
    live: &Reachable,
    leases: &LeaseScan,
    opts: &GcOptions,
    dry_run: bool,
    report: &mut PruneReport,
) -> Result<(), StoreError> {
    let cache = store.build_cache()?;
    let (records, junk) = cache.entries();
    for path in junk {
        let size = disk_usage(&path);
        if !dry_run {
            remove_tree(&path).map_err(io_err("remove", &path))?;
        }
        report.cache.push((path, size));
    }
    // How many remaining records name each blob and snapshot: a record's content goes with its last one.
    let mut blob_refs: BTreeMap<Digest, usize> = BTreeMap::new();
    let mut snap_refs: BTreeMap<String, usize> = BTreeMap::new();
    for r in &records {
        *blob_refs.entry(r.record.layer.digest.clone()).or_default() += 1;
        if let Some(s) = &r.record.snapshot {
            *snap_refs.entry(s.clone()).or_default() += 1;
        }
    }

    let mut candidates: Vec<(SystemTime, Candidate)> = Vec::new();
    candidates.extend(records.into_iter().map(|r| (r.last_used, Candidate::Record(r))));
    candidates.extend(
        store
            .cache_mounts()
            .into_iter()
            .map(|m| (m.last_used, Candidate::Mount(m))),
    );
    candidates.extend(
        buildcache::context_memos(store.root())
            .into_iter()
            .map(|(p, t)| (t, Candidate::Memo(p))),
    );
    if let Some(until) = opts.until {
        let cutoff = SystemTime::now()
            .checked_sub(until)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        candidates.retain(|(t, _)| *t <= cutoff);
    }
    // Oldest first; ties by kind order above (records before the mounts and memos they may outlive).
    candidates.sort_by_key(|(t, _)| *t);

    let mut usage = disk_usage(store.root());
    let mut removed_snaps = BTreeSet::new();
    for (_, c) in candidates {
        if opts.keep_storage.is_some_and(|keep| usage <= keep) {
            break;
        }
        match c {
            Candidate::Record(r) => {
                let size = disk_usage(&r.path);
                if !dry_run {
                    remove_tree(&r.path).map_err(io_err("remove build cache record", &r.path))?;
                }
                usage = usage.saturating_sub(size);
                report.cache.push((r.path, size));
                let d = &r.record.layer.digest;
                if let Some(n) = blob_refs.get_mut(d) {
                    *n -= 1;
                    if *n == 0
                        && !live.blobs.contains_key(d)
                        && !leases.protected.blobs.contains(d)
                        && store.blobs().contains(d)
                    {
                        let size = disk_usage(&store.blobs().path(d));
                        if !dry_run {
                            store.blobs().remove(d)?;
                        }
                        usage = usage.saturating_sub(size);
                        report.blobs.push((d.clone(), size));
                    }
                }
                if let Some(s) = &r.record.snapshot
                    && let Some(n) = snap_refs.get_mut(s)
                {
                    *n -= 1;
                    let in_image =
                        Digest::new(Algorithm::Sha256, s).is_ok_and(|c| live.chain_ids.contains(&c));
                    let path = store.snapshots_dir().join(s);
                    if *n == 0
                        && !in_image
                        && !leases.protected.snapshots.contains(s)
                        && fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir())
                    {
                        let size = disk_usage(&path);
                        if !dry_run {
                            crate::prune::remove_snapshot(store, s)?;
                        }
                        usage = usage.saturating_sub(size);
                        removed_snaps.insert(s.clone());
                        report.snapshots.push((path, size));
                    }
                }
            }
            Candidate::Mount(m) => {
                let Some(_held) = buildcache::try_take_mount(&m)? else {
                    continue; // a build is using it
                };
                let size = disk_usage(&m.path);
                if !dry_run {
                    remove_tree(&m.path).map_err(io_err("remove cache mount", &m.path))?;
                    // Unlinked while we hold the use lock under the exclusive store lock: no build has
                    // either file open (see Store::cache_mount).
                    let _ = fs::remove_file(m.path.with_extension("lock"));
                    let _ = fs::remove_file(m.path.with_extension("use"));
                }
                usage = usage.saturating_sub(size);
                report.mounts.push((m.path, size));
            }
            Candidate::Memo(p) => {
                let size = disk_usage(&p);
                if !dry_run {
                    remove_tree(&p).map_err(io_err("remove context memo", &p))?;
                }
                usage = usage.saturating_sub(size);
                report.memos.push((p, size));
            }
        }
    }
    if !dry_run && !removed_snaps.is_empty() {
        remove_dangling_aliases(store, leases);
    }
    Ok(())
}

/// Drops `snapshots/<diff_id>` aliases and `l/` links whose snapshot is gone (unless a lease named them).
fn remove_dangling_aliases(store: &Store, leases: &LeaseScan) {
    for dir in [store.snapshots_dir(), store.snapshots_dir().join("l")] {
        let Ok(rd) = fs::read_dir(&dir) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if e.file_type().is_ok_and(|t| t.is_symlink())
                && fs::metadata(&p).is_err()
                && !leases.protected.snapshots.contains(&name)
            {
                let _ = fs::remove_file(&p);
            }
        }
    }
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |source| StoreError::Io {
        op,
        path: path.to_owned(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_in_docker_units() {
        assert_eq!(parse_size("30MB").unwrap(), 30_000_000);
        assert_eq!(parse_size("1.5GB").unwrap(), 1_500_000_000);
        assert_eq!(parse_size("4MiB").unwrap(), 4 << 20);
        assert_eq!(parse_size("1000").unwrap(), 1000);
        assert!(parse_size("12 parsecs").is_err());
        assert!(parse_size("MB").is_err());
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_duration("24h").unwrap(), Duration::from_secs(86400));
        assert_eq!(parse_duration("90m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("1h30m10s").unwrap(), Duration::from_secs(5410));
        assert_eq!(parse_duration("1.5h").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("300ms").unwrap(), Duration::from_millis(300));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        for bad in ["", "24", "h", "10d", "1h-5m", "-1h"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn policy_from_config_file() {
        let t = tempfile::tempdir().unwrap();
        // The env var would override the file; this test only runs meaningfully without it.
        if std::env::var_os("LAMINA_GC_KEEP_STORAGE").is_some() {
            return;
        }
        assert_eq!(GcPolicy::load(t.path()).unwrap().keep_storage, None);
        fs::write(t.path().join("config.json"), r#"{"gc":{"keepStorage":"2GB"}}"#).unwrap();
        assert_eq!(
            GcPolicy::load(t.path()).unwrap().keep_storage,
            Some(2_000_000_000)
        );
        fs::write(t.path().join("config.json"), r#"{"gc":{"keepStorage":1234}}"#).unwrap();
        assert_eq!(GcPolicy::load(t.path()).unwrap().keep_storage, Some(1234));
        fs::write(t.path().join("config.json"), r#"{"gc":{"keepStorage":"lots"}}"#).unwrap();
        assert!(GcPolicy::load(t.path()).is_err());
    }

    #[test]
    fn disk_usage_counts_hardlinks_once() {
        let t = tempfile::tempdir().unwrap();
        fs::write(t.path().join("a"), vec![7u8; 64 * 1024]).unwrap();
        let one = disk_usage(t.path());
        fs::hard_link(t.path().join("a"), t.path().join("b")).unwrap();
        assert_eq!(disk_usage(t.path()), one);
        assert!(one >= 64 * 1024);
    }
}
