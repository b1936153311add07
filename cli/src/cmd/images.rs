//! `lamina images` (alias `ls`): the images in the store, like `docker images`: one row per tag, untagged
//! images as `<none>`, SIZE the unpacked size, `--format` and `--filter` as docker reads them.
//!
//! Each row is a JSON object with docker's field names ([`Row::fields`]); the table, `json` and template
//! outputs are all rendered from it by [`crate::format`], so a new column is one more field there.

use std::collections::BTreeSet;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use lamina_store::{Reference, Store};
use serde_json::json;

use crate::format::{Format, Listing};
/// The report commands' `table|json` choice lived here; kept at its old path.
pub use crate::output::TableOrJson as ReportFormat;
use crate::output::{docker_size, docker_size_precision, go_time, human_ago_unix, parse_rfc3339};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Only images of this repository (and tag, if given): `busybox`, `localhost/app:v1`.
    #[arg(value_name = "REPOSITORY[:TAG]")]
    filter: Option<String>,
    /// Show all images (lamina keeps no intermediate images, so this lists what the default lists).
    #[arg(short, long)]
    all: bool,
    /// Only print image IDs.
    #[arg(short, long)]
    quiet: bool,
    /// Don't truncate image IDs.
    #[arg(long)]
    no_trunc: bool,
    /// Show the manifest digests.
    #[arg(long)]
    digests: bool,
    /// Filter as docker does: `dangling=true|false`, `label=KEY[=VALUE]`, `reference=PATTERN`,
    /// `before=IMAGE`, `since=IMAGE`. Repeated keys match any; different keys must all match.
    #[arg(short, long = "filter", value_name = "KEY=VALUE")]
    filters: Vec<String>,
    /// `table` (default), `json` (one object per line), `table TEMPLATE` or a Go template
    /// (`{{.Repository}}:{{.Tag}}`), with docker's field names.
    #[arg(long)]
    format: Option<String>,
}

const HEADERS: &[(&str, &str)] = &[
    ("ID", "IMAGE ID"),
    ("Repository", "REPOSITORY"),
    ("Tag", "TAG"),
    ("Digest", "DIGEST"),
    ("CreatedSince", "CREATED"),
    ("CreatedAt", "CREATED AT"),
    ("Size", "SIZE"),
    ("VirtualSize", "VIRTUAL SIZE"),
    ("SharedSize", "SHARED SIZE"),
    ("UniqueSize", "UNIQUE SIZE"),
    ("Containers", "CONTAINERS"),
    ("Platforms", "PLATFORMS"),
];

const LISTING: Listing = Listing {
    default_table: "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}",
    headers: HEADERS,
};

// With a multi-platform index in the list, the default tables gain a PLATFORMS column (so stores without
// one print exactly as docker does).
const LISTING_PLATFORMS: Listing = Listing {
    default_table: "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}\t{{.Platforms}}",
    headers: HEADERS,
};

const LISTING_DIGESTS_PLATFORMS: Listing = Listing {
    default_table: "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}\t{{.Platforms}}",
    headers: HEADERS,
};

const LISTING_DIGESTS: Listing = Listing {
    default_table: "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}",
    headers: HEADERS,
};

/// One listed name of an image (an image with three tags is three rows).
struct Row {
    reference: Option<Reference>,
    repository: String,
    tag: String,
    id: lamina_store::Digest,
    digest: lamina_store::Digest,
    created: Option<i64>,
    labels: std::collections::BTreeMap<String, String>,
    size: u64,
    /// For a multi-platform index: the platforms of its images in the store.
    platforms: Vec<String>,
}

/// An index's images present in the store: their platforms and total size (shared blobs counted once).
/// `None` for a single image.
fn index_platforms(store: &Store, digest: &lamina_store::Digest) -> Option<(Vec<String>, u64)> {
    let lamina_store::image::Parsed::Index(idx) = store.read_manifest(digest, None).ok()? else {
        return None;
    };
    let mut platforms = Vec::new();
    let mut blobs = std::collections::BTreeMap::new();
    for d in &idx.manifests {
        let (Some(p), Ok(img)) = (&d.platform, store.load_image(&d.digest)) else {
            continue;
        };
        platforms.push(p.to_string());
        blobs.insert(img.config_digest.clone(), img.manifest.config.size);
        for l in &img.layers {
            blobs.insert(l.digest.clone(), l.size);
        }
    }
    Some((platforms, blobs.values().sum()))
}

impl Row {
    /// Docker's fields for this row, as `docker images --format json` prints them (strings throughout).
    fn fields(&self, no_trunc: bool) -> serde_json::Value {
        json!({
            // The manifest digest, where docker prints a registry digest (`<none>` for an image that was
            // loaded or built): lamina keeps no registry digests apart, and for a pull they are the same.
            "Containers": "N/A",
            "CreatedAt": self.created.map_or_else(|| "N/A".to_owned(), go_time),
            "CreatedSince": self.created.map_or_else(|| "N/A".to_owned(), human_ago_unix),
            "Digest": self.digest.to_string(),
            "ID": short_id(&self.id, no_trunc),
            // lamina's own field: a multi-platform index's platforms (empty for one image).
            "Platforms": self.platforms.join(","),
            "Repository": self.repository,
            "SharedSize": "N/A",
            "Size": docker_size(self.size),
            "Tag": self.tag,
            "UniqueSize": "N/A",
            "VirtualSize": docker_size_precision(self.size, 4),
        })
    }

    fn dangling(&self) -> bool {
        self.reference.is_none()
    }
}

/// An image ID as docker lists it: 12 hex digits, or the whole `sha256:…` with `--no-trunc`.
pub fn short_id(id: &lamina_store::Digest, no_trunc: bool) -> String {
    if no_trunc {
        id.to_string()
    } else {
        id.hex().chars().take(12).collect()
    }
}

pub fn run(cli: &crate::Cli, args: &Args) -> anyhow::Result<ExitCode> {
    let listing = if args.digests { &LISTING_DIGESTS } else { &LISTING };
    // Checked before any work: a bad template or filter is the user's error whatever the store holds.
    let format = Format::parse(args.format.as_deref(), listing)?;
    let filters = Filters::parse(&args.filters)?;
    let store = super::open_store(cli)?;
    let _lock = store.lock_shared()?;
    let name_filter = args
        .filter
        .as_deref()
        .map(|f| {
            let r = Reference::parse(f).with_context(|| format!("invalid filter {f:?}"))?;
            // A filter without a tag matches every tag of the repository.
            let has_tag = f.rsplit('/').next().is_some_and(|last| last.contains(':'));
            anyhow::Ok((r, has_tag))
        })
        .transpose()?;
    let mut rows = list(&store)?;
    if let Some((f, has_tag)) = &name_filter {
        rows.retain(|row| {
            row.reference
                .as_ref()
                .is_some_and(|r| r.name() == f.name() && (!*has_tag || r.tag() == f.tag()))
        });
    }
    let (before, since) = (
        filters.time_bound(&store, "before")?,
        filters.time_bound(&store, "since")?,
    );
    rows.retain(|r| filters.matches(r, before, since));

    if args.quiet {
        let mut seen = BTreeSet::new();
        for r in &rows {
            if seen.insert(&r.id) {
                crate::outln!("{}", short_id(&r.id, args.no_trunc));
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let fields: Vec<serde_json::Value> = rows.iter().map(|r| r.fields(args.no_trunc)).collect();
    let (format, listing) = if args.format.is_none() && rows.iter().any(|r| !r.platforms.is_empty()) {
        let listing = if args.digests {
            &LISTING_DIGESTS_PLATFORMS
        } else {
            &LISTING_PLATFORMS
        };
        (Format::parse(None, listing)?, listing)
    } else {
        (format, listing)
    };
    crate::out!("{}", format.render(&fields, listing)?);
    Ok(ExitCode::SUCCESS)
}

/// Every index entry's image, newest first like docker; entries that don't load are warned about.
fn list(store: &Store) -> anyhow::Result<Vec<Row>> {
    let index = store.read_index()?;
    let tagged: BTreeSet<&lamina_store::Digest> = index
        .manifests
        .iter()
        .filter(|e| e.ref_name().is_some())
        .map(|e| &e.digest)
        .collect();
    let mut rows = Vec::new();
    for entry in &index.manifests {
        let reference = entry
            .ref_name()
            .and_then(|n| Reference::parse(n).ok().filter(|r| r.to_string() == n));
        // An untagged entry next to a tag of the same image is not a separate, dangling image.
        if reference.is_none() && tagged.contains(&entry.digest) {
            continue;
        }
        let img = match store.load_image(&entry.digest) {
            Ok(img) => img,
            Err(e) => {
                eprintln!(
                    "warning: skipping {}: {e}",
                    entry.ref_name().map_or(entry.digest.to_string(), str::to_owned)
                );
                continue;
            }
        };
        let (repository, tag) = match &reference {
            Some(r) => {
                let familiar = r.familiar();
                let repo = match r.tag() {
                    Some(t) => familiar
                        .strip_suffix(&format!(":{t}"))
                        .unwrap_or(&familiar)
                        .to_owned(),
                    None => familiar.clone(),
                };
                (repo, r.tag().unwrap_or("<none>").to_owned())
            }
            None => ("<none>".to_owned(), "<none>".to_owned()),
        };
        // An index shows as one image: its digest is its ID, its size that of all its platforms.
        let (id, digest, size, platforms) = match index_platforms(store, &entry.digest) {
            Some((platforms, size)) => (entry.digest.clone(), entry.digest.clone(), size, platforms),
            None => (
                img.config_digest.clone(),
                img.manifest_digest.clone(),
                store.unpacked_size(&img).unwrap_or_else(|_| img.size()),
                Vec::new(),
            ),
        };
        rows.push(Row {
            reference,
            repository,
            tag,
            id,
            digest,
            created: img.config.created.as_deref().and_then(parse_rfc3339),
            labels: img
                .config
                .config
                .as_ref()
                .map(|c| c.labels.clone())
                .unwrap_or_default(),
            size,
            platforms,
        });
    }
    rows.sort_by(|a, b| {
        b.created
            .unwrap_or(i64::MIN)
            .cmp(&a.created.unwrap_or(i64::MIN))
            .then_with(|| a.repository.cmp(&b.repository))
            .then_with(|| a.tag.cmp(&b.tag))
    });
    Ok(rows)
}

/// `--filter KEY=VALUE…`, grouped by key.
struct Filters(std::collections::BTreeMap<String, Vec<String>>);

impl Filters {
    fn parse(given: &[String]) -> anyhow::Result<Filters> {
        let mut m: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        for f in given {
            let Some((k, v)) = f.split_once('=') else {
                bail!("bad format of filter (expected name=value): {f}");
            };
            let k = k.trim().to_ascii_lowercase();
            match k.as_str() {
                "dangling" if !matches!(v, "true" | "false" | "1" | "0") => {
                    bail!("invalid filter 'dangling={v}': use true or false")
                }
                "dangling" | "label" | "reference" | "before" | "since" => {}
                _ => bail!("invalid filter '{k}': images take dangling, label, reference, before, since"),
            }
            m.entry(k).or_default().push(v.to_owned());
        }
        Ok(Filters(m))
    }

    /// The created time of the image a `before=`/`since=` filter names.
    fn time_bound(&self, store: &Store, key: &str) -> anyhow::Result<Option<i64>> {
        let Some(q) = self.0.get(key).and_then(|v| v.first()) else {
            return Ok(None);
        };
        let found = store.resolve(q).with_context(|| format!("--filter {key}={q}"))?;
        let img = store.load_image(found.digest())?;
        Ok(Some(
            img.config.created.as_deref().and_then(parse_rfc3339).unwrap_or(0),
        ))
    }

    fn matches(&self, r: &Row, before: Option<i64>, since: Option<i64>) -> bool {
        let any =
            |key: &str, f: &dyn Fn(&str) -> bool| self.0.get(key).is_none_or(|vs| vs.iter().any(|v| f(v)));
        let created = r.created.unwrap_or(0);
        any("dangling", &|v| r.dangling() == matches!(v, "true" | "1"))
            && any("label", &|v| match v.split_once('=') {
                Some((k, want)) => r.labels.get(k).is_some_and(|have| have == want),
                None => r.labels.contains_key(v),
            })
            && any("reference", &|pattern| {
                r.reference.as_ref().is_some_and(|rf| {
                    let familiar = rf.familiar();
                    let name = familiar
                        .rsplit_once(':')
                        .filter(|(_, t)| !t.contains('/'))
                        .map(|(n, _)| n);
                    lamina_builder::glob::match_component(pattern, &familiar)
                        || name.is_some_and(|n| lamina_builder::glob::match_component(pattern, n))
                })
            })
            && before.is_none_or(|t| created < t)
            && since.is_none_or(|t| created > t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(reference: Option<&str>, created: i64, labels: &[(&str, &str)]) -> Row {
        Row {
            reference: reference.map(|r| Reference::parse(r).unwrap()),
            repository: String::new(),
            tag: String::new(),
            id: lamina_store::Digest::sha256_of(b"x"),
            digest: lamina_store::Digest::sha256_of(b"m"),
            created: Some(created),
            labels: labels.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect(),
            size: 4_261_000,
            platforms: Vec::new(),
        }
    }

    fn f(given: &[&str]) -> Filters {
        Filters::parse(&given.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn filters_match_as_docker() {
        let tagged = row(Some("localhost/app:v1"), 100, &[("team", "a")]);
        let dangling = row(None, 200, &[]);
        assert!(f(&["dangling=true"]).matches(&dangling, None, None));
        assert!(!f(&["dangling=true"]).matches(&tagged, None, None));
        assert!(f(&["dangling=false"]).matches(&tagged, None, None));
        assert!(f(&["label=team"]).matches(&tagged, None, None));
        assert!(f(&["label=team=a"]).matches(&tagged, None, None));
        assert!(!f(&["label=team=b"]).matches(&tagged, None, None));
        assert!(
            f(&["label=team=b", "label=team=a"]).matches(&tagged, None, None),
            "same key: any"
        );
        assert!(
            !f(&["label=team", "dangling=true"]).matches(&tagged, None, None),
            "keys: all"
        );
        assert!(f(&["reference=localhost/*"]).matches(&tagged, None, None));
        assert!(f(&["reference=localhost/app:v*"]).matches(&tagged, None, None));
        assert!(!f(&["reference=app"]).matches(&tagged, None, None));
        assert!(!f(&["reference=*"]).matches(&dangling, None, None));
        let none = f(&[]);
        assert!(none.matches(&tagged, Some(150), None) && !none.matches(&dangling, Some(150), None));
        assert!(none.matches(&dangling, None, Some(150)) && !none.matches(&tagged, None, Some(150)));
        assert!(Filters::parse(&["color=red".into()]).is_err());
        assert!(Filters::parse(&["dangling=maybe".into()]).is_err());
    }

    #[test]
    fn rows_carry_docker_fields() {
        let r = row(Some("busybox:latest"), 1_700_000_000, &[]);
        let v = r.fields(false);
        assert_eq!(v["ID"], lamina_store::Digest::sha256_of(b"x").hex()[..12]);
        assert_eq!(v["Size"], "4.26MB");
        assert_eq!(v["CreatedAt"], "2023-11-14 22:13:20 +0000 UTC");
        assert_eq!(
            r.fields(true)["ID"],
            lamina_store::Digest::sha256_of(b"x").to_string()
        );
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            [
                "Containers",
                "CreatedAt",
                "CreatedSince",
                "Digest",
                "ID",
                // lamina's one addition (a multi-platform index's platforms).
                "Platforms",
                "Repository",
                "SharedSize",
                "Size",
                "Tag",
                "UniqueSize",
                "VirtualSize"
            ]
        );
    }
}
