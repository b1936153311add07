//! Small in-memory layer tars with exact content, for tests here and in other crates (e.g. the CLI's
//! integration tests). Not for production data: it builds in a `Vec<u8>`.

use std::io::Write;

/// Builds a layer tar entry by entry. Every entry gets uid/gid 0 and mtime [`TarBuilder::mtime`] unless the
/// method says otherwise.
pub struct TarBuilder {
    inner: tar::Builder<Vec<u8>>,
    /// mtime for the next entries.
    pub mtime: u64,
}

impl Default for TarBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl TarBuilder {
    pub fn new() -> Self {
        TarBuilder {
            inner: tar::Builder::new(Vec::new()),
            mtime: 1_700_000_000,
        }
    }

    fn header(&self, kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(self.mtime);
        h.set_size(size);
        h
    }

    pub fn dir(&mut self, path: &str, mode: u32) -> &mut Self {
        let h = self.header(tar::EntryType::Directory, mode, 0);
        self.inner
            .append_data(&mut h.clone(), format!("{path}/"), &[][..])
            .expect("in-memory tar");
        self
    }

    pub fn file(&mut self, path: &str, data: &[u8], mode: u32) -> &mut Self {
        let mut h = self.header(tar::EntryType::Regular, mode, data.len() as u64);
        self.inner.append_data(&mut h, path, data).expect("in-memory tar");
        self
    }

    /// A file whose tar name is written verbatim (up to 100 bytes), even names with `..` that the tar crate's
    /// builder refuses: hostile layers have them.
    pub fn file_raw_name(&mut self, name: &str, data: &[u8], mode: u32) -> &mut Self {
        let mut h = self.header(tar::EntryType::Regular, mode, data.len() as u64);
        let field = &mut h.as_old_mut().name;
        assert!(name.len() <= field.len(), "raw names are limited to 100 bytes");
        field.fill(0);
        field[..name.len()].copy_from_slice(name.as_bytes());
        h.set_cksum();
        self.inner.append(&h, data).expect("in-memory tar");
        self
    }

    /// A file with an owner; ids beyond ustar's range are written as PAX records, as docker does.
    pub fn file_owned(&mut self, path: &str, data: &[u8], mode: u32, uid: u64, gid: u64) -> &mut Self {
        if uid > 0o7777777 || gid > 0o7777777 {
            let mut records = Vec::new();
            for (k, v) in [("uid", uid), ("gid", gid)] {
                let body = format!(" {k}={v}\n");
                // The length prefix counts itself.
                let mut len = body.len() + 1;
                while format!("{len}{body}").len() != len {
                    len += 1;
                }
                write!(records, "{len}{body}").expect("vec write");
            }
            let mut h = self.header(tar::EntryType::XHeader, 0o644, records.len() as u64);
            self.inner
                .append_data(&mut h, "PaxHeaders/x", records.as_slice())
                .expect("in-memory tar");
            let mut h = self.header(tar::EntryType::Regular, mode, data.len() as u64);
            self.inner.append_data(&mut h, path, data).expect("in-memory tar");
        } else {
            let mut h = self.header(tar::EntryType::Regular, mode, data.len() as u64);
            h.set_uid(uid);
            h.set_gid(gid);
            self.inner.append_data(&mut h, path, data).expect("in-memory tar");
        }
        self
    }

    pub fn symlink(&mut self, path: &str, target: &str) -> &mut Self {
        let mut h = self.header(tar::EntryType::Symlink, 0o777, 0);
        self.inner
            .append_link(&mut h, path, target)
            .expect("in-memory tar");
        self
    }

    pub fn hardlink(&mut self, path: &str, target: &str) -> &mut Self {
        let mut h = self.header(tar::EntryType::Link, 0o644, 0);
        self.inner
            .append_link(&mut h, path, target)
            .expect("in-memory tar");
        self
    }

    pub fn fifo(&mut self, path: &str) -> &mut Self {
        let mut h = self.header(tar::EntryType::Fifo, 0o644, 0);
        self.inner
            .append_data(&mut h, path, &[][..])
            .expect("in-memory tar");
        self
    }

    pub fn char_dev(&mut self, path: &str, major: u32, minor: u32) -> &mut Self {
        let mut h = self.header(tar::EntryType::Char, 0o666, 0);
        h.set_device_major(major).expect("gnu header");
        h.set_device_minor(minor).expect("gnu header");
        self.inner
            .append_data(&mut h, path, &[][..])
            .expect("in-memory tar");
        self
    }

    /// A `.wh.NAME` entry deleting `path` from the layers below.
    pub fn whiteout(&mut self, path: &str) -> &mut Self {
        let wh = match path.rsplit_once('/') {
            Some((dir, name)) => format!("{dir}/.wh.{name}"),
            None => format!(".wh.{path}"),
        };
        self.file(&wh, b"", 0o644)
    }

    /// `.wh..wh..opq` in `dir`.
    pub fn opaque(&mut self, dir: &str) -> &mut Self {
        let p = if dir.is_empty() {
            ".wh..wh..opq".to_string()
        } else {
            format!("{dir}/.wh..wh..opq")
        };
        self.file(&p, b"", 0o644)
    }

    pub fn finish(self) -> Vec<u8> {
        self.inner.into_inner().expect("in-memory tar")
    }
}

/// A test image: layer tars (uncompressed) plus the runtime config and history.
#[derive(Clone, Debug, Default)]
pub struct TestImage {
    pub layers: Vec<Vec<u8>>,
    /// The config's `config` object (Env, Cmd, …).
    pub runtime: serde_json::Value,
    /// `created_by` per layer (history gets one entry per layer).
    pub created_by: Vec<String>,
    pub created: String,
    /// Store layers gzip-compressed (else plain tar).
    pub gzip: bool,
}

fn put_blob(dir: &std::path::Path, data: &[u8]) -> std::io::Result<lamina_store::Digest> {
    let d = lamina_store::Digest::sha256_of(data);
    let p = dir.join("blobs/sha256");
    std::fs::create_dir_all(&p)?;
    std::fs::write(p.join(d.hex()), data)?;
    Ok(d)
}

impl TestImage {
    /// The config JSON this image gets.
    pub fn config_json(&self) -> serde_json::Value {
        let diff_ids: Vec<String> = self
            .layers
            .iter()
            .map(|l| lamina_store::Digest::sha256_of(l).to_string())
            .collect();
        let history: Vec<serde_json::Value> = (0..self.layers.len())
            .map(|i| serde_json::json!({"created": self.created, "created_by": self.created_by.get(i).cloned().unwrap_or_default()}))
            .collect();
        serde_json::json!({
            "architecture": "amd64", "os": "linux", "created": self.created,
            "config": self.runtime,
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": history,
        })
    }

    /// Writes the image into the OCI layout at `dir` (created or extended) tagged `ref_name`; returns the
    /// manifest digest.
    pub fn write_oci_layout(
        &self,
        dir: &std::path::Path,
        ref_name: &str,
    ) -> std::io::Result<lamina_store::Digest> {
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        let mut layer_descs = Vec::new();
        for l in &self.layers {
            let (blob, mt) = if self.gzip {
                let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                enc.write_all(l)?;
                (enc.finish()?, "application/vnd.oci.image.layer.v1.tar+gzip")
            } else {
                (l.clone(), "application/vnd.oci.image.layer.v1.tar")
            };
            let d = put_blob(dir, &blob)?;
            layer_descs
                .push(serde_json::json!({"mediaType": mt, "digest": d.to_string(), "size": blob.len()}));
        }
        let config = serde_json::to_vec(&self.config_json())?;
        let cd = put_blob(dir, &config)?;
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd.to_string(), "size": config.len()},
            "layers": layer_descs,
        }))?;
        let md = put_blob(dir, &manifest)?;
        let idx_path = dir.join("index.json");
        let mut index: serde_json::Value = match std::fs::read(&idx_path) {
            Ok(b) => serde_json::from_slice(&b)?,
            Err(_) => serde_json::json!({"schemaVersion": 2, "manifests": []}),
        };
        let list = index["manifests"].as_array_mut().expect("index manifests");
        list.retain(|m| m["annotations"]["org.opencontainers.image.ref.name"] != ref_name);
        list.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": md.to_string(), "size": manifest.len(),
            "annotations": {"org.opencontainers.image.ref.name": ref_name},
        }));
        std::fs::write(idx_path, serde_json::to_vec(&index)?)?;
        Ok(md)
    }

    /// Writes an `oci-archive` tar at `path` holding this image tagged `ref_name`.
    pub fn write_oci_archive(&self, path: &std::path::Path, ref_name: &str) -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        self.write_oci_layout(dir.path(), ref_name)?;
        let mut b = tar::Builder::new(std::fs::File::create(path)?);
        b.append_dir_all(".", dir.path())?;
        b.into_inner()?.sync_all()
    }

    /// Writes a `docker save`-style tar at `path` (old layout: `<id>/layer.tar`, `<hex>.json`).
    pub fn write_docker_archive(&self, path: &std::path::Path, repo_tag: &str) -> std::io::Result<()> {
        let mut b = tar::Builder::new(std::fs::File::create(path)?);
        let mut add = |name: &str, data: &[u8]| -> std::io::Result<()> {
            let mut h = tar::Header::new_gnu();
            h.set_mode(0o644);
            h.set_size(data.len() as u64);
            b.append_data(&mut h, name, data)
        };
        let config = serde_json::to_vec(&self.config_json())?;
        let config_name = format!("{}.json", lamina_store::Digest::sha256_of(&config).hex());
        add(&config_name, &config)?;
        let mut layer_names = Vec::new();
        for (i, l) in self.layers.iter().enumerate() {
            let name = format!("{:064x}/layer.tar", i + 1);
            add(&name, l)?;
            layer_names.push(name);
        }
        let manifest =
            serde_json::json!([{"Config": config_name, "RepoTags": [repo_tag], "Layers": layer_names}]);
        add("manifest.json", &serde_json::to_vec(&manifest)?)?;
        b.into_inner()?.sync_all()
    }
}
