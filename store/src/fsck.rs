//! [`fsck`]: re-hash every blob, check that every index.json entry's closure is present and whole, and with
//! `repair` remove corrupt blobs (the image then reports them missing until it is pulled or loaded again)
//! and the index entries (tags) whose manifest is missing or corrupt, which nothing could ever read again.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::digest::Digest;
use crate::layout::{Store, StoreError};
use crate::prune::reachable;
use crate::validate::{Problem, hash_blob, layer_diff_id};

/// A blob and what hashing it gave (its actual digest and size, or nothing if it vanished).
type HashResult = (Digest, Result<Option<(Digest, u64)>, Problem>);

/// Options of [`fsck`].
#[derive(Clone, Copy, Debug, Default)]
pub struct FsckOptions {
    /// Remove corrupt blobs (takes the exclusive store lock).
    pub repair: bool,
    /// Also decompress every reachable layer and check it against its diff_id.
    pub deep: bool,
    /// Hashing threads (0: one per CPU, at most 4).
    pub threads: usize,
}

/// A blob whose content does not match its name.
#[derive(Debug, Clone)]
pub struct Corrupt {
    pub digest: Digest,
    /// What it hashes to, or `None` if it could not be read.
    pub actual: Option<Digest>,
    pub size: u64,
}

/// What fsck found.
#[derive(Debug, Default)]
pub struct FsckReport {
    pub blobs_checked: usize,
    pub bytes_checked: u64,
    pub corrupt: Vec<Corrupt>,
    /// Problems of tagged (or otherwise indexed) images, keyed by the entry's ref.name or digest.
    pub image_problems: Vec<(String, Problem)>,
    /// Corrupt blobs removed by `repair`.
    pub removed: Vec<Digest>,
    /// Index entries removed by `repair` because their manifest is missing or corrupt.
    pub untagged: Vec<Untagged>,
}

/// An index entry (tag, or untagged image) that `repair` removed.
#[derive(Debug, Clone)]
pub struct Untagged {
    /// The entry's ref.name, or its digest when it had none.
    pub name: String,
    pub manifest: Digest,
    /// `missing` or `corrupt`.
    pub reason: &'static str,
}

impl FsckReport {
    pub fn is_clean(&self) -> bool {
        self.corrupt.is_empty() && self.image_problems.is_empty()
    }
}

/// Checks the whole store.
pub fn fsck(store: &Store, opts: FsckOptions) -> Result<FsckReport, StoreError> {
    let _lock = if opts.repair {
        store.lock_exclusive()?
    } else {
        store.lock_shared()?
    };
    let blobs = store.blobs().list()?;
    let threads = match opts.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()).min(4),
        n => n,
    };
    let next = Mutex::new(0usize);
    let results: Mutex<Vec<HashResult>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    let i = {
                        let mut n = next.lock().expect("fsck work counter");
                        let i = *n;
                        *n += 1;
                        i
                    };
                    let Some(d) = blobs.get(i) else { break };
                    let r = hash_blob(store, d);
                    results.lock().expect("fsck results").push((d.clone(), r));
                }
            });
        }
    });
    let mut report = FsckReport::default();
    let mut sizes: BTreeMap<Digest, u64> = BTreeMap::new();
    let mut results = results.into_inner().expect("fsck results");
    results.sort_by(|a, b| a.0.cmp(&b.0));
    for (d, r) in results {
        match r {
            // Vanished between listing and hashing (a concurrent prune can't run, so: removed by hand).
            Ok(None) => {}
            Ok(Some((actual, n))) => {
                report.blobs_checked += 1;
                report.bytes_checked += n;
                sizes.insert(d.clone(), n);
                if actual != d {
                    report.corrupt.push(Corrupt {
                        digest: d,
                        actual: Some(actual),
                        size: n,
                    });
                }
            }
            Err(_) => report.corrupt.push(Corrupt {
                digest: d,
                actual: None,
                size: 0,
            }),
        }
    }

    let mut live = reachable(store)?;
    report.image_problems = std::mem::take(&mut live.problems);
    let corrupt: BTreeMap<&Digest, &Corrupt> = report.corrupt.iter().map(|c| (&c.digest, c)).collect();
    for (d, needed) in &live.blobs {
        let what = needed.what;
        let root = needed.root.clone();
        if let Some(c) = corrupt.get(d) {
            if let Some(actual) = &c.actual {
                report.image_problems.push((
                    root,
                    Problem::Corrupt {
                        what,
                        digest: d.clone(),
                        actual: actual.clone(),
                    },
                ));
            }
            continue;
        }
        match sizes.get(d) {
            None => report.image_problems.push((
                root,
                Problem::Missing {
                    what,
                    digest: d.clone(),
                },
            )),
            Some(&n) if n != needed.descriptor.size => report.image_problems.push((
                root,
                Problem::Size {
                    what,
                    digest: d.clone(),
                    expected: needed.descriptor.size,
                    actual: n,
                },
            )),
            Some(_) => {}
        }
    }
    if opts.deep {
        report.image_problems.extend(deep_check(store, &live, &corrupt));
    }

    if opts.repair {
        for c in &report.corrupt {
            store.blobs().remove(&c.digest)?;
            report.removed.push(c.digest.clone());
        }
        let broken = |d: &Digest| {
            if corrupt.contains_key(d) {
                Some("corrupt")
            } else if !sizes.contains_key(d) {
                Some("missing")
            } else {
                None
            }
        };
        if store
            .read_index()?
            .manifests
            .iter()
            .any(|e| broken(&e.digest).is_some())
        {
            report.untagged = store.update_index(|index| {
                let mut gone = Vec::new();
                index.manifests.retain(|e| {
                    let Some(reason) = broken(&e.digest) else {
                        return true;
                    };
                    gone.push(Untagged {
                        name: e.ref_name().map_or_else(|| e.digest.to_string(), str::to_owned),
                        manifest: e.digest.clone(),
                        reason,
                    });
                    false
                });
                Ok(gone)
            })?;
        }
    }
    Ok(report)
}

/// diff_id checks for every reachable, intact layer.
fn deep_check(
    store: &Store,
    live: &crate::prune::Reachable,
    corrupt: &BTreeMap<&Digest, &Corrupt>,
) -> Vec<(String, Problem)> {
    let mut out = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    let Ok(index) = store.read_index() else {
        return out;
    };
    for root in &index.manifests {
        let name = root
            .ref_name()
            .map(str::to_owned)
            .unwrap_or_else(|| root.digest.to_string());
        let Ok(img) = store.load_image(&root.digest) else {
            continue;
        };
        for l in &img.layers {
            if corrupt.contains_key(&l.digest)
                || !live.blobs.contains_key(&l.digest)
                || !seen.insert(l.digest.clone())
            {
                continue;
            }
            if !store.blobs().contains(&l.digest) {
                continue;
            }
            match layer_diff_id(store, &l.digest) {
                Ok(actual) if actual != l.diff_id => out.push((
                    name.clone(),
                    Problem::DiffId {
                        digest: l.digest.clone(),
                        expected: l.diff_id.clone(),
                        actual,
                    },
                )),
                Ok(_) => {}
                Err(p) => out.push((name.clone(), p)),
            }
        }
    }
    out
}
