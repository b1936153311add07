//! `lamina commit CONTAINER [REPOSITORY[:TAG]]`: the container's changes (its overlay upper dir)
//! become one new layer on top of its image, through the store's layer writer (whiteouts and
//! opaque dirs converted), with the container's config (command, env, workdir, user, labels) as
//! docker does; `-c` applies Dockerfile instructions over it, `-m` is the history comment. A running container is frozen while its upper dir is read (docker's
//! `--pause`, on by default).

use std::process::ExitCode;

use anyhow::{Context, bail};
use lamina_store::Reference;
use lamina_store::config::History;
use lamina_store::image::{LayerDesc, Platform};

use super::container::{start, state};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Dockerfile instruction to apply to the image config (CMD, ENV, LABEL, …); repeatable.
    #[arg(short = 'c', long = "change", value_name = "INSTRUCTION")]
    pub changes: Vec<String>,
    /// Commit message (the history entry's comment).
    #[arg(short = 'm', long)]
    pub message: Option<String>,
    /// Author.
    #[arg(short = 'a', long)]
    pub author: Option<String>,
    /// Freeze a running container while committing.
    #[arg(short = 'p', long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub pause: bool,
    pub container: String,
    /// Name for the new image.
    pub name: Option<String>,
}

pub fn run(cli: &crate::Cli, args: &Args) -> anyhow::Result<ExitCode> {
    let rec = state::find(&cli.store_root(), &args.container)?;
    let req = start::load_request(&rec.dir)?;
    let name = args
        .name
        .as_deref()
        .map(|n| Reference::parse(n).with_context(|| format!("invalid image name {n:?}")))
        .transpose()?;
    if rec.meta.image.starts_with('/') || rec.meta.image.starts_with('.') {
        bail!(
            "container {} runs a rootfs directory, not an image: nothing to commit onto",
            args.container
        );
    }
    let store = super::open_store(cli)?;
    let _lock = store.lock_shared()?;
    let base = store
        .resolve(&rec.meta.image)
        .with_context(|| format!("image {} of container {}", rec.meta.image, args.container))?;
    let mut img = store
        .load_image_for(base.digest(), &Platform::host())
        .with_context(|| format!("loading image {}", rec.meta.image))?;

    let frozen = match rec.cgroup().filter(|c| args.pause && !c.frozen()) {
        Some(cg) => {
            cg.set_frozen(true)
                .with_context(|| format!("pausing {}", args.container))?;
            Some(cg)
        }
        None => None,
    };
    let opts = lamina_store::layer::WriteOptions {
        overlay_upper: true,
        ..Default::default()
    };
    let layer = lamina_store::layer::write_layer(&req.upper_dir, &opts, store.blobs());
    if let Some(cg) = frozen {
        let _ = cg.set_frozen(false);
    }
    let layer = layer.with_context(|| format!("writing the changes of {} as a layer", args.container))?;

    // docker's commit takes the container's config (its command, env, workdir, user, labels),
    // then applies the changes.
    let mut config = img.config.clone();
    let cc = config.config.get_or_insert_with(Default::default);
    if !rec.meta.cmd.is_empty() || !rec.meta.entrypoint.is_empty() {
        cc.entrypoint = (!rec.meta.entrypoint.is_empty()).then(|| rec.meta.entrypoint.clone());
        cc.cmd = Some(rec.meta.cmd.clone());
    }
    cc.env = req.process.env.clone();
    cc.working_dir = Some(req.process.cwd.clone()).filter(|w| w != "/" || cc.working_dir.is_some());
    if let Some(u) = &req.process.user {
        cc.user = Some(u.clone());
    }
    cc.labels.extend(rec.meta.labels.clone());
    for c in &args.changes {
        lamina_store::archive::change::apply_change(&mut config, c)
            .with_context(|| format!("--change {c:?}"))?;
    }
    let created = lamina_store::archive::now_rfc3339();
    config.created = Some(created.clone());
    if args.author.is_some() {
        config.author = args.author.clone();
    }
    config.history.push(History {
        created: Some(created),
        created_by: Some(format!("lamina commit {}", rec.meta.name)),
        author: args.author.clone(),
        comment: args.message.clone(),
        ..Default::default()
    });
    img.layers.push(LayerDesc {
        digest: layer.digest,
        diff_id: layer.diff_id,
        size: layer.size,
        media_type: layer.media_type.to_owned(),
    });
    let new = store.write_image(&config, &img.layers)?;
    match &name {
        Some(n) => store.set_tag(n, new.descriptor())?,
        None => store.add_untagged(new.descriptor())?,
    }
    crate::outln!("{}", new.config_digest);
    Ok(ExitCode::SUCCESS)
}
