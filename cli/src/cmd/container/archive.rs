//! Tar streams of a tree for `lamina cp`: entries named under a chosen prefix, symlinks kept as
//! links (never followed below the top), and applied on the other side by the store's in-root
//! layer applier, so neither a hostile name nor a hostile link leaves the destination directory.

use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use anyhow::{Context, bail};

/// Writes `src` (a file, directory or symlink on a path the caller trusts to stay put: a frozen or
/// stopped container's view, or the user's own host files) to `out` as a tar whose top entry is
/// `prefix` (`.` puts a directory's contents at the top).
pub fn write_tree<W: Write>(src: &Path, follow_top: bool, prefix: &str, out: W) -> anyhow::Result<W> {
    let mut b = tar::Builder::new(out);
    b.follow_symlinks(false);
    let meta = if follow_top {
        std::fs::metadata(src)
    } else {
        std::fs::symlink_metadata(src)
    }
    .with_context(|| format!("cannot stat {}", src.display()))?;
    add(&mut b, src, &meta, Path::new(prefix))?;
    b.into_inner().context("finishing the tar stream")
}

fn add<W: Write>(
    b: &mut tar::Builder<W>,
    path: &Path,
    meta: &std::fs::Metadata,
    name: &Path,
) -> anyhow::Result<()> {
    let ft = meta.file_type();
    let mut h = tar::Header::new_gnu();
    h.set_metadata_in_mode(meta, tar::HeaderMode::Complete);
    let err = || format!("archiving {}", path.display());
    if ft.is_dir() {
        if name != Path::new(".") {
            h.set_entry_type(tar::EntryType::Directory);
            h.set_size(0);
            b.append_data(&mut h, name, std::io::empty()).with_context(err)?;
        }
        let mut entries: Vec<_> = std::fs::read_dir(path)
            .with_context(err)?
            .collect::<Result<_, _>>()
            .with_context(err)?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let fname = e.file_name();
            // The applier on the other side takes these as whiteouts: never let a file named so
            // delete something there.
            if fname.as_encoded_bytes().starts_with(b".wh.") {
                eprintln!(
                    "lamina: skipping {}: whiteout names are not copied",
                    e.path().display()
                );
                continue;
            }
            let m = std::fs::symlink_metadata(e.path()).with_context(err)?;
            add(b, &e.path(), &m, &name.join(&fname))?;
        }
    } else if ft.is_symlink() {
        let target = std::fs::read_link(path).with_context(err)?;
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        b.append_link(&mut h, name, &target).with_context(err)?;
    } else if ft.is_file() {
        let f = std::fs::File::open(path).with_context(err)?;
        h.set_size(meta.len());
        b.append_data(&mut h, name, f).with_context(err)?;
    } else if ft.is_fifo() || ft.is_char_device() || ft.is_block_device() {
        h.set_entry_type(if ft.is_fifo() {
            tar::EntryType::Fifo
        } else if ft.is_char_device() {
            tar::EntryType::Char
        } else {
            tar::EntryType::Block
        });
        h.set_size(0);
        let rdev = meta.rdev();
        h.set_device_major(rustix::fs::major(rdev)).with_context(err)?;
        h.set_device_minor(rustix::fs::minor(rdev)).with_context(err)?;
        b.append_data(&mut h, name, std::io::empty()).with_context(err)?;
    } else {
        bail!("cannot copy {}: a socket", path.display());
    }
    Ok(())
}

/// A tar of one symlink, `name` → `target` (a link resolved as an fd, whose target `readlinkat`
/// gave: its `/proc/self/fd` name would read as the magic link instead).
pub fn write_link<W: Write>(name: &str, target: &Path, out: W) -> anyhow::Result<W> {
    let mut b = tar::Builder::new(out);
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_mode(0o777);
    h.set_size(0);
    b.append_link(&mut h, name, target)
        .context("archiving a symlink")?;
    b.into_inner().context("finishing the tar stream")
}

/// Applies the tar read from `r` into the directory `dest` (a path the kernel resolves to the
/// right directory; names in the stream resolve inside it).
pub fn apply_into<R: std::io::Read>(r: R, dest: &Path) -> anyhow::Result<()> {
    let opts = lamina_store::layer::ApplyOptions::default();
    lamina_store::layer::apply_layer(r, dest, &opts)
        .with_context(|| format!("copying into {}", dest.display()))?;
    Ok(())
}

/// Runs `produce` (writing a tar) on a thread, feeding `consume` through a pipe: the copy streams.
pub fn piped(
    produce: impl FnOnce(std::fs::File) -> anyhow::Result<()> + Send + 'static,
    consume: impl FnOnce(std::fs::File) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).context("creating a pipe")?;
    let t = std::thread::spawn(move || produce(std::fs::File::from(w)));
    let consumed = consume(std::fs::File::from(r));
    let produced = t.join().map_err(|_| anyhow::anyhow!("the tar writer panicked"))?;
    // The consumer's error first: a writer that lost its reader fails with EPIPE, which says less.
    consumed.and(produced)
}
