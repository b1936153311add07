//! `lamina tree IMAGE [PATH]`: the flattened file tree like `tree -h --du`: directories show the content
//! bytes below them, files their size, symlinks their target.

use std::collections::HashMap;
use std::process::ExitCode;

use anyhow::bail;
use lamina_inspect::diff::flatten_image;
use lamina_inspect::entry::{base_name, clean_path, parent};
use lamina_inspect::{Kind, Tree};
use serde_json::json;

use super::subject;
use super::transfer::RegistryFlags;
use crate::output::human_size;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[arg(value_name = "IMAGE", help = subject::IMAGE_HELP)]
    pub image: String,
    /// Show only this directory (default: /).
    pub path: Option<String>,
    /// Descend at most this many levels.
    #[arg(short = 'L', long = "level")]
    pub level: Option<usize>,
    /// `tree` (default) or `json` (flat list sorted by path).
    #[arg(long, default_value = "tree", value_parser = ["tree", "json"])]
    pub format: String,
    #[command(flatten)]
    pub registry: RegistryFlags,
}

pub fn run(cli: &crate::Cli, args: &Args) -> anyhow::Result<ExitCode> {
    let view = subject::open_image(cli, &args.image, &args.registry)?;
    let flat = flatten_image(&view, 0)?;
    let tree = flat.tree;
    let root = clean_path(args.path.as_deref().unwrap_or("/"));
    if !root.is_empty() && tree.get(&root).is_none() {
        bail!(
            "{}: no such path in {}",
            args.path.as_deref().unwrap_or(""),
            view.name
        );
    }
    let sizes = tree.dir_sizes();
    if args.format == "json" {
        let depth_ok = |p: &str| {
            let rel = if root.is_empty() {
                p
            } else {
                p.strip_prefix(&root).unwrap_or(p).trim_start_matches('/')
            };
            args.level.is_none_or(|l| rel.split('/').count() <= l)
        };
        let items: Vec<_> = tree
            .iter()
            .filter(|(p, _)| root.is_empty() || *p == &root || p.starts_with(&format!("{root}/")))
            .filter(|(p, _)| depth_ok(p))
            .map(|(p, n)| {
                let size = if n.meta.is_dir() { sizes.get(p.as_str()).copied().unwrap_or(0) } else { n.meta.size };
                json!({"path": p, "type": n.meta.kind, "size": size, "mode": format!("{:04o}", n.meta.mode),
                       "uid": n.meta.uid, "gid": n.meta.gid, "link": n.meta.link, "digest": n.meta.hash, "layer": n.layer})
            })
            .collect();
        crate::output::emit(&format!("{}\n", serde_json::to_string_pretty(&items)?));
        return Ok(ExitCode::SUCCESS);
    }
    crate::output::emit(&render(&tree, &sizes, &root, args.level));
    Ok(ExitCode::SUCCESS)
}

fn render<'t>(
    tree: &'t Tree,
    sizes: &std::collections::BTreeMap<String, u64>,
    root: &str,
    level: Option<usize>,
) -> String {
    let mut children: HashMap<&'t str, Vec<&'t str>> = HashMap::new();
    for (p, _) in tree.iter() {
        children.entry(parent(p)).or_default().push(p.as_str());
    }
    for v in children.values_mut() {
        v.sort_by(|a, b| base_name(a).cmp(base_name(b)));
    }
    let size_of = |p: &str| -> u64 {
        match tree.get(p) {
            Some(n) if !n.meta.is_dir() => n.meta.size,
            _ => sizes.get(p).copied().unwrap_or(0),
        }
    };
    let mut out = String::new();
    let label = if root.is_empty() {
        "/".to_string()
    } else {
        format!("/{root}")
    };
    out.push_str(&format!("[{:>8}]  {label}\n", human_size(size_of(root))));
    let (mut dirs, mut files) = (0usize, 0usize);
    // (path, prefix for its children, depth)
    let mut stack: Vec<(&'t str, String, usize, bool)> = Vec::new();
    let push_children =
        |stack: &mut Vec<(&'t str, String, usize, bool)>, dir: &str, prefix: &str, depth: usize| {
            if let Some(kids) = children.get(dir) {
                for (i, k) in kids.iter().enumerate().rev() {
                    stack.push((k, prefix.to_string(), depth, i + 1 == kids.len()));
                }
            }
        };
    push_children(&mut stack, root, "", 1);
    while let Some((p, prefix, depth, last)) = stack.pop() {
        let node = tree.get(p).expect("listed path exists");
        let branch = if last { "└── " } else { "├── " };
        let mut name = base_name(p).to_string();
        if let Some(l) = node.meta.link.as_deref() {
            name.push_str(if node.meta.kind == Kind::Hardlink {
                " => /"
            } else {
                " -> "
            });
            name.push_str(l);
        }
        out.push_str(&format!(
            "{prefix}{branch}[{:>8}]  {name}\n",
            human_size(size_of(p))
        ));
        if node.meta.is_dir() {
            dirs += 1;
            if level.is_none_or(|l| depth < l) {
                let child_prefix = format!("{prefix}{}", if last { "    " } else { "│   " });
                push_children(&mut stack, p, &child_prefix, depth + 1);
            }
        } else {
            files += 1;
        }
    }
    out.push_str(&format!("\n{dirs} directories, {files} files\n"));
    out
}
