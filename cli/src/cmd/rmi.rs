//! `lamina rmi IMAGE…`: remove tags. Blobs stay until `lamina prune` (another tag or a running build may
//! still use them).

use std::process::ExitCode;

use lamina_store::{Reference, Store, StoreError};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Images to untag: names, or IDs/digests (which remove every tag of that image).
    #[arg(required = true, value_name = "IMAGE")]
    images: Vec<String>,
    /// Remove every tag of an image given by ID even if it has several.
    #[arg(short, long)]
    force: bool,
}

pub fn run(cli: &crate::Cli, args: &Args) -> anyhow::Result<ExitCode> {
    let store = super::open_store(cli)?;
    let _lock = store.lock_shared()?;
    let mut failed = false;
    for q in &args.images {
        match remove(&store, q, args.force) {
            Ok(names) => {
                for n in names {
                    crate::outln!("Untagged: {n}");
                }
            }
            Err(e) => {
                crate::output::report_error(&e);
                failed = true;
            }
        }
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn remove(store: &Store, q: &str, force: bool) -> anyhow::Result<Vec<String>> {
    let found = store.resolve(q)?;
    if let Some(r) = &found.reference
        && r.digest().is_none()
    {
        store.untag(r)?;
        return Ok(vec![r.familiar()]);
    }
    // By ID or digest: every index entry for that manifest.
    let digest = found.descriptor.digest.clone();
    let names = store.update_index(|index| {
        let hits: Vec<String> = index
            .manifests
            .iter()
            .filter(|d| d.digest == digest)
            .map(|d| {
                d.ref_name()
                    .and_then(|n| Reference::parse(n).ok().filter(|r| r.to_string() == n))
                    .map_or_else(|| d.ref_name().unwrap_or("<none>").to_owned(), |r| r.familiar())
            })
            .collect();
        if hits.is_empty() {
            return Err(StoreError::ImageNotFound(format!("{q} (not tagged)")));
        }
        if hits.len() > 1 && !force {
            return Err(StoreError::Ambiguous {
                query: q.to_owned(),
                candidates: format!(
                    "{} (image is tagged several times; use -f or remove by name)",
                    hits.join(", ")
                ),
            });
        }
        index.manifests.retain(|d| d.digest != digest);
        Ok(hits)
    })?;
    Ok(names)
}
