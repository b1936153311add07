//! Chunked blob uploads and transfer resume against a real `docker-registry`, through the fault proxy:
//! `OCI-Chunk-Min-Length` is honoured, a chunk that never reached the registry is re-sent from the
//! offset the registry reports, an upload the registry dropped starts over, and an interrupted pull
//! continues with `Range` requests.

mod registry_support;

use std::path::{Path, PathBuf};
use std::process::Output;

use registry_support::*;

/// Tars an OCI layout into an archive and loads it into a fresh store as `localhost/<name>:v1`.
pub fn load_layout(tmp: &Path, layout: &Path, name: &str) -> PathBuf {
    let archive = tmp.join(format!("{name}.tar"));
    let mut b = tar::Builder::new(std::fs::File::create(&archive).unwrap());
    b.append_dir_all(".", layout).unwrap();
    b.finish().unwrap();
    let store = tmp.join(format!("store-{name}"));
    let o = lamina()
        .arg("--root")
        .arg(&store)
        .args(["load", "--name", &format!("localhost/{name}")])
        .arg("-i")
        .arg(&archive)
        .output()
        .unwrap();
    ok(&o, "lamina load");
    store
}

/// A temp dir with a store holding `localhost/NAME:v1`, a small image whose big layer has `big` bytes.
fn image_store(name: &str, big: usize) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    simple_layout(&layout, big);
    let store = load_layout(tmp.path(), &layout, name);
    (tmp, store)
}

fn push(store: &Path, src: &str, dest: &str, env: &[(&str, &str)]) -> Output {
    let mut c = lamina();
    c.arg("--root")
        .arg(store)
        .args(["push", "--progress", "plain", src, dest]);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

/// Every blob of `from` is in `to` with the same bytes.
fn assert_same_blobs(from: &Path, to: &Path) {
    let mut n = 0;
    for e in std::fs::read_dir(from.join("blobs/sha256")).unwrap().flatten() {
        let theirs = std::fs::read(to.join("blobs/sha256").join(e.file_name()))
            .unwrap_or_else(|_| panic!("blob {:?} missing after the round trip", e.file_name()));
        assert!(
            std::fs::read(e.path()).unwrap() == theirs,
            "blob {:?} differs",
            e.file_name()
        );
        n += 1;
    }
    assert!(n >= 4, "too few blobs compared ({n})");
}

fn pull_into(host: &str, reference: &str, store: &Path) {
    let o = lamina()
        .arg("--root")
        .arg(store)
        .args(["pull", "--progress", "plain", &format!("{host}/{reference}")])
        .output()
        .unwrap();
    ok(&o, "lamina pull");
    assert_store_sound(store);
}

/// `(start, end)` of a logged `Content-Range: start-end`.
fn range_of(line: &str) -> Option<(u64, u64)> {
    let r = line.split_whitespace().find(|w| {
        w.split_once('-')
            .is_some_and(|(a, b)| a.parse::<u64>().is_ok() && b.parse::<u64>().is_ok())
    })?;
    let (a, b) = r.split_once('-')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

const MIB: u64 = 1 << 20;

#[test]
fn chunked_push_honours_min_length_and_resumes_a_lost_chunk() {
    let Some(reg) = Registry::start("") else { return };
    let (tmp, store) = image_store("chunky", 5 << 20);
    let proxy = Proxy::start(
        reg.port,
        Faults {
            reset_patch: 35,
            chunk_min_length: Some(MIB),
            seed: 11,
            ..Default::default()
        },
    );
    let ph = format!("127.0.0.1:{}", proxy.port);
    // Asks for 256 KiB chunks; the registry's minimum (1 MiB) must win.
    let o = push(
        &store,
        "localhost/chunky:v1",
        &format!("{ph}/up/chunky:v1"),
        &[
            ("LAMINA_PUSH_MODE", "chunked"),
            ("LAMINA_PUSH_CHUNK_SIZE", "256K"),
        ],
    );
    ok(&o, "chunked push through a resetting proxy");
    let log = proxy.log.lock().unwrap().clone();
    let faults: Vec<_> = log
        .iter()
        .filter(|l| l.starts_with("FAULT reset PATCH"))
        .collect();
    assert!(
        !faults.is_empty(),
        "the proxy reset no PATCH: test is vacuous\n{log:#?}"
    );
    let posts = log
        .iter()
        .filter(|l| l.starts_with("202 POST") && l.contains("/blobs/uploads/"))
        .count();
    assert_eq!(
        posts, 3,
        "each blob needs one upload session, none restarted:\n{log:#?}"
    );
    let patches: Vec<(u64, u64)> = log
        .iter()
        .filter(|l| l.starts_with("202 PATCH"))
        .map(|l| range_of(l).expect("PATCH without Content-Range"))
        .collect();
    assert!(patches.len() >= 6, "a 5 MiB layer in 1 MiB chunks: {patches:?}");
    assert!(
        patches.iter().all(|(a, b)| b - a < MIB),
        "chunk larger than asked: {patches:?}"
    );
    let short = patches.iter().filter(|(a, b)| b - a + 1 < MIB).count();
    assert!(
        short <= 3,
        "only the last chunk of each blob may be under OCI-Chunk-Min-Length: {patches:?}"
    );
    for f in &faults {
        let r = range_of(f).unwrap();
        assert!(
            patches.contains(&r),
            "the chunk lost at {r:?} was not re-sent from the same offset:\n{log:#?}"
        );
    }
    assert!(
        log.iter()
            .any(|l| l.starts_with("204 GET") && l.contains("/blobs/uploads/")),
        "no upload status query after a failed chunk:\n{log:#?}"
    );
    assert!(!log.iter().any(|l| l.starts_with("416")), "{log:#?}");

    let back = tmp.path().join("back");
    pull_into(&reg.host(), "up/chunky:v1", &back);
    assert_same_blobs(&store, &back);
}

#[test]
fn chunked_push_starts_over_when_the_registry_drops_a_broken_upload() {
    let Some(reg) = Registry::start("") else { return };
    let (tmp, store) = image_store("halves", 4 << 20);
    // The registry keeps half a chunk, so the session's offset is wrong and distribution drops it.
    // Three such faults: each costs a whole new session; the retry budget (which only a new high-water
    // mark refills, so a registry that always drops sessions can't loop forever) covers them.
    let proxy = Proxy::start(
        reg.port,
        Faults {
            half_patch: 40,
            half_patch_max: 3,
            seed: 5,
            ..Default::default()
        },
    );
    let ph = format!("127.0.0.1:{}", proxy.port);
    let o = push(
        &store,
        "localhost/halves:v1",
        &format!("{ph}/up/halves:v1"),
        &[("LAMINA_PUSH_MODE", "chunked"), ("LAMINA_PUSH_CHUNK_SIZE", "1M")],
    );
    ok(&o, "chunked push through a proxy that breaks PATCHes half-way");
    let log = proxy.log.lock().unwrap().clone();
    let faults = log.iter().filter(|l| l.starts_with("FAULT half PATCH")).count();
    assert!(faults > 0, "no PATCH was broken: test is vacuous\n{log:#?}");
    let posts = log
        .iter()
        .filter(|l| l.starts_with("202 POST") && l.contains("/blobs/uploads/"))
        .count();
    assert!(
        posts > 3,
        "a dropped session must be replaced by a new one:\n{log:#?}"
    );
    let back = tmp.path().join("back");
    pull_into(&reg.host(), "up/halves:v1", &back);
    assert_same_blobs(&store, &back);
}

#[test]
fn auto_mode_pushes_small_blobs_in_one_put() {
    let Some(reg) = Registry::start("") else { return };
    let (tmp, store) = image_store("auto", 3 << 20);
    let proxy = Proxy::start(reg.port, Faults::default());
    let ph = format!("127.0.0.1:{}", proxy.port);
    // Threshold 2 MiB: the 3 MiB layer goes in chunks, config and small layer in one PUT each.
    let o = push(
        &store,
        "localhost/auto:v1",
        &format!("{ph}/up/auto:v1"),
        &[
            ("LAMINA_PUSH_CHUNKED_THRESHOLD", "2M"),
            ("LAMINA_PUSH_CHUNK_SIZE", "1M"),
        ],
    );
    ok(&o, "auto-mode push");
    let log = proxy.log.lock().unwrap().clone();
    let patches = log.iter().filter(|l| l.starts_with("202 PATCH")).count();
    assert_eq!(patches, 4, "3 MiB + gzip overhead in 1 MiB chunks:\n{log:#?}");
    let puts_with_body = log
        .iter()
        .filter(|l| l.starts_with("201 PUT") && l.contains("/blobs/uploads/"))
        .count();
    assert_eq!(puts_with_body, 3, "{log:#?}");
    let back = tmp.path().join("back");
    pull_into(&reg.host(), "up/auto:v1", &back);
    assert_same_blobs(&store, &back);

    // A bad knob is a clear user error.
    let o = push(
        &store,
        "localhost/auto:v1",
        &format!("{}/up/auto2:v1", reg.host()),
        &[("LAMINA_PUSH_MODE", "sometimes")],
    );
    assert_eq!(o.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("push-mode") && stderr.contains("sometimes"),
        "{stderr}"
    );
}

#[test]
fn interrupted_pull_resumes_with_range_requests() {
    let Some(reg) = Registry::start("") else { return };
    let (tmp, store) = image_store("resume", 4 << 20);
    ok(
        &push(
            &store,
            "localhost/resume:v1",
            &format!("{}/dl/resume:v1", reg.host()),
            &[],
        ),
        "push",
    );
    // Every blob response over 1 KiB is cut in half: only resuming ever finishes.
    let proxy = Proxy::start(
        reg.port,
        Faults {
            reset_mid_blob: 100,
            ..Default::default()
        },
    );
    let ph = format!("127.0.0.1:{}", proxy.port);
    let back = tmp.path().join("back");
    pull_into(&ph, "dl/resume:v1", &back);
    assert_same_blobs(&store, &back);
    let log = proxy.log.lock().unwrap().clone();
    let resets: Vec<_> = log.iter().filter(|l| l.starts_with("FAULT reset")).collect();
    let from_zero = resets.iter().filter(|l| !l.contains("bytes=")).count();
    assert!(resets.len() >= 8, "too few resets for a 4 MiB layer:\n{log:#?}");
    assert!(
        from_zero <= 2,
        "after a reset the download must resume with Range, not start over:\n{log:#?}"
    );
    assert!(
        log.iter().any(|l| l.starts_with("206 GET bytes=")),
        "the last piece should be a partial response:\n{log:#?}"
    );
}

#[test]
fn chunked_registry_to_registry_copy_resumes_a_lost_chunk() {
    let Some(src) = Registry::start("") else { return };
    let Some(dst) = Registry::start("") else { return };
    let (tmp, store) = image_store("copied", 3 << 20);
    ok(
        &push(
            &store,
            "localhost/copied:v1",
            &format!("{}/c/img:v1", src.host()),
            &[],
        ),
        "push to the source registry",
    );
    let proxy = Proxy::start(
        dst.port,
        Faults {
            reset_patch: 30,
            seed: 3,
            ..Default::default()
        },
    );
    let o = lamina()
        .args([
            "copy",
            "--progress",
            "plain",
            &format!("{}/c/img:v1", src.host()),
            &format!("docker://127.0.0.1:{}/c/copy:v1", proxy.port),
        ])
        .env("LAMINA_PUSH_MODE", "chunked")
        .env("LAMINA_PUSH_CHUNK_SIZE", "512K")
        .output()
        .unwrap();
    ok(&o, "chunked copy through a resetting proxy");
    let log = proxy.log.lock().unwrap().clone();
    assert!(
        log.iter().any(|l| l.starts_with("FAULT reset PATCH")),
        "no PATCH was reset: test is vacuous\n{log:#?}"
    );
    let posts = log
        .iter()
        .filter(|l| l.starts_with("202 POST") && l.contains("/blobs/uploads/"))
        .count();
    assert_eq!(posts, 3, "lost chunks resume in the same session:\n{log:#?}");
    assert!(
        log.iter().filter(|l| l.starts_with("202 PATCH")).count() >= 7,
        "{log:#?}"
    );
    let back = tmp.path().join("back");
    pull_into(&dst.host(), "c/copy:v1", &back);
    assert_same_blobs(&store, &back);
}

/// A registry that drops the upload session on every chunk: each restart gets as far as the last one,
/// never further, so the retry budget runs out and the push fails — no endless restarts, no manifest.
#[test]
fn chunked_push_gives_up_when_sessions_always_break() {
    let Some(reg) = Registry::start("") else { return };
    let (_tmp, store) = image_store("doomed", 4 << 20);
    let proxy = Proxy::start(
        reg.port,
        Faults {
            half_patch: 100,
            seed: 9,
            ..Default::default()
        },
    );
    let started = std::time::Instant::now();
    let o = push(
        &store,
        "localhost/doomed:v1",
        &format!("127.0.0.1:{}/up/doomed:v1", proxy.port),
        &[("LAMINA_PUSH_MODE", "chunked"), ("LAMINA_PUSH_CHUNK_SIZE", "1M")],
    );
    assert!(!o.status.success(), "a push whose every chunk breaks must fail");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("up/doomed"), "the error names the repository: {err}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(60),
        "gave up in bounded time"
    );
    let o = skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{}/up/doomed:v1", reg.host()),
    ]);
    assert!(!o.status.success(), "no manifest without its blobs");
}

/// A source registry that ignores Range: a chunked registry→registry copy would fetch the whole blob
/// again for every chunk; instead it notices on the second chunk and streams the blob in one upload.
#[test]
fn chunked_copy_from_a_source_ignoring_range_streams_once() {
    let Some(src) = Registry::start("") else { return };
    let Some(dst) = Registry::start("") else { return };
    let (tmp, store) = image_store("norange", 3 << 20);
    ok(
        &push(
            &store,
            "localhost/norange:v1",
            &format!("{}/c/img:v1", src.host()),
            &[],
        ),
        "push to the source registry",
    );
    let proxy = Proxy::start(
        src.port,
        Faults {
            strip_range: true,
            ..Default::default()
        },
    );
    let o = lamina()
        .args([
            "copy",
            "--progress",
            "plain",
            &format!("127.0.0.1:{}/c/img:v1", proxy.port),
            &format!("docker://{}/c/copy:v1", dst.host()),
        ])
        .env("LAMINA_PUSH_MODE", "chunked")
        .env("LAMINA_PUSH_CHUNK_SIZE", "512K")
        .output()
        .unwrap();
    ok(&o, "chunked copy from a Range-ignoring source");
    let log = proxy.log.lock().unwrap().clone();
    let mut per_blob = std::collections::BTreeMap::<String, usize>::new();
    for l in log
        .iter()
        .filter(|l| l.contains(" GET ") && l.contains("/blobs/sha256:"))
    {
        *per_blob
            .entry(l.rsplit('/').next().unwrap().to_owned())
            .or_default() += 1;
    }
    assert!(
        !per_blob.is_empty(),
        "no blob GETs went through the proxy:\n{log:#?}"
    );
    assert!(
        per_blob.values().all(|n| *n <= 2),
        "each blob fetched at most twice (the chunk that finds Range ignored, then one stream), not once per chunk: {per_blob:?}"
    );
    let back = tmp.path().join("back");
    pull_into(&dst.host(), "c/copy:v1", &back);
    assert_same_blobs(&store, &back);
}

/// Upload locations come from the registry: when one points at another host, lamina's chunked upload
/// sends it no credentials (the push then fails with the registry's 401), while the registry itself
/// got them all along.
#[test]
fn upload_to_another_host_gets_no_credentials() {
    if !have("htpasswd") {
        lamina_testkit::skip("htpasswd (apache2-utils) missing");
        return;
    }
    let (tmp, store) = image_store("creds", 2 << 20);
    let pw = std::process::Command::new("htpasswd")
        .args(["-Bbn", "alice", "s3cret-pw"])
        .output()
        .unwrap();
    std::fs::write(tmp.path().join("htpasswd"), &pw.stdout).unwrap();
    let auth = format!(
        "auth:\n  htpasswd:\n    realm: lamina-test\n    path: {}\n",
        tmp.path().join("htpasswd").display()
    );
    let Some(reg) = Registry::start(&auth) else { return };
    let proxy = Proxy::start(
        reg.port,
        Faults {
            upload_location_host: Some("localhost".into()),
            ..Default::default()
        },
    );
    let mut c = lamina();
    c.arg("--root").arg(&store).args([
        "push",
        "--progress",
        "plain",
        "--creds",
        "alice:s3cret-pw",
        "localhost/creds:v1",
        &format!("127.0.0.1:{}/up/creds:v1", proxy.port),
    ]);
    c.env("LAMINA_PUSH_MODE", "chunked")
        .env("LAMINA_PUSH_CHUNK_SIZE", "512K");
    let o = c.output().unwrap();
    assert!(
        !o.status.success(),
        "the other host can't accept the upload without credentials"
    );
    let log = proxy.log.lock().unwrap().clone();
    assert!(
        log.iter()
            .any(|l| l.starts_with("AUTH ") && l.contains(" 127.0.0.1:")),
        "credentials never reached the registry: test is vacuous\n{log:#?}"
    );
    assert!(
        log.iter().any(|l| !l.starts_with("AUTH ") && l.contains("PATCH")),
        "no upload went to the rewritten location: test is vacuous\n{log:#?}"
    );
    let leaked: Vec<_> = log
        .iter()
        .filter(|l| l.starts_with("AUTH ") && l.contains(" localhost:"))
        .collect();
    assert!(leaked.is_empty(), "credentials sent to another host: {leaked:#?}");
}
