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
            Ok(lines) => {
                for l in lines {
                    crate::outln!("{l}");
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

/// Removes what `q` names; returns docker's lines: `Untagged: NAME` per tag, `Deleted: ID` for an
/// image that had no tag left (an untagged build removed by ID).
fn remove(store: &Store, q: &str, force: bool) -> anyhow::Result<Vec<String>> {
    let found = store.resolve(q)?;
    if let Some(r) = &found.reference
        && r.digest().is_none()
    {
        store.untag(r)?;
        return Ok(vec![format!("Untagged: {}", r.familiar())]);
    }
    let id = store.load_image(found.digest()).map_or_else(
        |_| found.digest().to_string(),
        |img| img.config_digest.to_string(),
    );
    // By ID or digest: every index entry for that manifest.
    let digest = found.descriptor.digest.clone();
    let names = store.update_index(|index| {
        let mut hits: Vec<String> = index
            .manifests
            .iter()
            .filter(|d| d.digest == digest)
            .map(|d| match d.ref_name() {
                None => format!("Deleted: {id}"),
                Some(n) => {
                    let name = Reference::parse(n)
                        .ok()
                        .filter(|r| r.to_string() == n)
                        .map_or_else(|| n.to_owned(), |r| r.familiar());
                    format!("Untagged: {name}")
                }
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
                    hits.iter()
                        .map(|h| h.trim_start_matches("Untagged: "))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
        index.manifests.retain(|d| d.digest != digest);
        // Removed by ID, the image itself is gone from the listing (its blobs go at the next prune).
        if !hits.iter().any(|h| h.starts_with("Deleted: ")) {
            hits.push(format!("Deleted: {id}"));
        }
        Ok(hits)
    })?;
    Ok(names)
}
