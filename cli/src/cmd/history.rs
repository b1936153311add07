//! `lamina history IMAGE`: the build steps of an image, newest first, like `docker history`: the top step
//! carries the image ID, the others `<missing>` (their intermediate images don't exist); SIZE is what the
//! step's layer holds unpacked; `--format` takes docker's fields.

use std::process::ExitCode;

use lamina_inspect::config::history;
use serde_json::json;

use super::subject;
use super::transfer::RegistryFlags;
use crate::format::{Format, Listing};
use crate::output::{docker_size, human_ago_unix, parse_rfc3339};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[arg(value_name = "IMAGE", help = subject::IMAGE_HELP)]
    pub image: String,
    /// Don't truncate CREATED BY and the image ID.
    #[arg(long)]
    pub no_trunc: bool,
    /// Only print image IDs.
    #[arg(short, long)]
    pub quiet: bool,
    /// `table` (default), `json` (one object per line), `table TEMPLATE` or a Go template, with docker's
    /// fields: ID, CreatedSince, CreatedAt, CreatedBy, Size, Comment.
    #[arg(long)]
    pub format: Option<String>,
    #[command(flatten)]
    pub registry: RegistryFlags,
}

const LISTING: Listing = Listing {
    default_table: "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}",
    headers: &[
        ("ID", "IMAGE"),
        ("CreatedSince", "CREATED"),
        ("CreatedAt", "CREATED AT"),
        ("CreatedBy", "CREATED BY"),
        ("Size", "SIZE"),
        ("Comment", "COMMENT"),
    ],
};

/// Docker's `stringutils.Ellipsis`: at most `n` characters, the last one `…` when cut.
fn ellipsis(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n - 1).collect::<String>() + "…"
    }
}

pub fn run(cli: &crate::Cli, args: &Args) -> anyhow::Result<ExitCode> {
    let format = Format::parse(args.format.as_deref(), &LISTING)?;
    let view = subject::open_image(cli, &args.image, &args.registry)?;
    let items = history(&view.config, view.layers.len());
    let store = subject::existing_store(cli);
    let layer_size = |i: usize| subject::layer_unpacked_size(store.as_ref(), &view, i);
    let id = view
        .config_digest
        .as_ref()
        .map(|d| super::images::short_id(d, args.no_trunc));
    let rows: Vec<serde_json::Value> = items
        .iter()
        .rev()
        .enumerate()
        .map(|(n, h)| {
            let created = h.created.as_deref().and_then(parse_rfc3339);
            let by = h.created_by.replace('\t', " ");
            json!({
                "Comment": h.comment.clone().unwrap_or_default(),
                "CreatedAt": created.map_or_else(String::new, lamina_store::archive::rfc3339),
                "CreatedBy": if args.no_trunc { by } else { ellipsis(&by, 45) },
                "CreatedSince": created.map_or_else(|| "N/A".to_owned(), human_ago_unix),
                "ID": match (n, &id) {
                    (0, Some(id)) => id.clone(),
                    _ => "<missing>".to_owned(),
                },
                "Size": docker_size(h.layer.map_or(0, layer_size)),
            })
        })
        .collect();
    if args.quiet {
        for r in &rows {
            crate::outln!("{}", r["ID"].as_str().unwrap_or_default());
        }
        return Ok(ExitCode::SUCCESS);
    }
    crate::output::emit(&format.render(&rows, &LISTING)?);
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    #[test]
    fn ellipsis_as_docker() {
        assert_eq!(super::ellipsis("abcdef", 6), "abcdef");
        assert_eq!(super::ellipsis("abcdefg", 6), "abcde…");
    }
}
