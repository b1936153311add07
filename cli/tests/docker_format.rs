//! lamina's listings against the reference docker CLIs: testdata/docker-format/ holds an image archive and
//! what docker 20.10 and docker 26 printed for each case of cases.tsv after loading it
//! (scripts/docker-goldens.sh regenerates them). Here the same archive is loaded into a fresh store, the
//! same arguments are given to lamina, and the outputs are compared: JSON lines key by key, other output
//! line by line (listings whose rows tie on their sort key compared as sets).

use std::path::{Path, PathBuf};

mod common;

use common::{lamina, ok};

fn goldens() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/docker-format")
}

/// Keys docker and lamina fill differently on purpose: `CreatedSince` is relative to when the golden was
/// taken; `Digest` is a registry digest in docker (`<none>` after a load) and the manifest digest in lamina.
const SKIP_KEYS: &[&str] = &["CreatedSince", "Digest"];

/// In `ps`, the container's ID and times differ in every run (the state in `Status` is `State`, compared).
const PS_SKIP_KEYS: &[&str] = &["ID", "CreatedAt", "RunningFor", "Status"];

fn compare(case: &str, docker: &str, ours: &str, version: &str) {
    let mut d: Vec<&str> = docker.lines().collect();
    let mut o: Vec<&str> = ours.lines().collect();
    if case.starts_with("images") {
        // Both images have one creation time: docker's row order among them is arbitrary.
        let header = |v: &Vec<&str>| v.first().is_some_and(|l| l.starts_with("REPOSITORY"));
        let (ds, os) = (usize::from(header(&d)), usize::from(header(&o)));
        d[ds..].sort_unstable();
        o[os..].sort_unstable();
    }
    assert_eq!(
        o.len(),
        d.len(),
        "{case} ({version}): line count\ndocker:\n{docker}\nlamina:\n{ours}"
    );
    for (dl, ol) in d.iter().zip(&o) {
        if dl.starts_with('{') {
            let dv: serde_json::Value = serde_json::from_str(dl).unwrap();
            let ov: serde_json::Value = serde_json::from_str(ol)
                .unwrap_or_else(|e| panic!("{case}: lamina's line is not JSON ({e}): {ol}"));
            let skip = if case.starts_with("ps") {
                PS_SKIP_KEYS
            } else {
                SKIP_KEYS
            };
            for (k, v) in dv.as_object().unwrap() {
                if skip.contains(&k.as_str()) {
                    continue;
                }
                assert_eq!(
                    ov.get(k),
                    Some(v),
                    "{case} ({version}): field {k}\ndocker: {dl}\nlamina: {ol}"
                );
            }
        } else {
            assert_eq!(ol, dl, "{case} ({version})\ndocker:\n{docker}\nlamina:\n{ours}");
        }
    }
}

#[test]
fn listings_match_the_docker_cli_field_by_field() {
    let dir = goldens();
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("store");
    ok(&root, &["load", "-i", dir.join("golden.tar").to_str().unwrap()]);
    let versions = versions(&dir);
    let compared = compare_cases(&root, &dir.join("cases.tsv"), &versions);
    assert!(compared >= 20, "only {compared} comparisons");
}

/// The golden dirs, one per docker version.
fn versions(dir: &Path) -> Vec<PathBuf> {
    let versions: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("docker-"))
        .collect();
    assert!(
        versions.len() >= 2,
        "goldens of both docker versions expected in {}",
        dir.display()
    );
    versions
}

/// Runs each case of `cases` in the store at `root` and compares it with every version's golden; returns
/// the number of comparisons.
fn compare_cases(root: &Path, cases: &Path, versions: &[PathBuf]) -> usize {
    let cases = std::fs::read_to_string(cases).unwrap();
    let mut compared = 0;
    for line in cases.lines().filter(|l| !l.trim().is_empty()) {
        let mut f = line.split('\t');
        let case = f.next().unwrap();
        let args: Vec<&str> = f.collect();
        let out = lamina(root, &args);
        assert!(
            out.status.success(),
            "lamina {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let ours = String::from_utf8(out.stdout).unwrap();
        for v in versions {
            let golden = v.join(format!("{case}.txt"));
            let docker =
                std::fs::read_to_string(&golden).unwrap_or_else(|e| panic!("{}: {e}", golden.display()));
            compare(case, &docker, &ours, &v.file_name().unwrap().to_string_lossy());
            compared += 1;
        }
    }
    compared
}

/// `ps` against docker on one exited container: a label of its own and one inherited from its image, the
/// default network, a command long enough to be truncated. The image is made here from the host's busybox
/// as scripts/docker-goldens.sh makes it (only its name and labels reach `ps`).
#[test]
fn ps_matches_the_docker_cli_field_by_field() {
    let busybox = Path::new("/bin/busybox");
    if !lamina_testkit::need_root("ps goldens run a container")
        || !lamina_testkit::need_path(busybox, "busybox-static")
    {
        return;
    }
    let dir = goldens();
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("store");
    let ctx = t.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::copy(busybox, ctx.join("busybox")).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM scratch\nCOPY busybox /bin/busybox\nLABEL org.example.team=platform\n",
    )
    .unwrap();
    let ctx = ctx.to_str().unwrap();
    ok(
        &root,
        &["build", "-q", "--network", "none", "-t", "golden-sh:v1", ctx],
    );
    ok(
        &root,
        &[
            "run",
            "--name",
            "golden-ps",
            "--label",
            "team=platform",
            "golden-sh:v1",
            "/bin/busybox",
            "echo",
            "hello-golden",
        ],
    );
    let compared = compare_cases(&root, &dir.join("cases-ps.tsv"), &versions(&dir));
    assert!(compared >= 10, "only {compared} comparisons");
    ok(&root, &["rm", "golden-ps"]);
}

#[test]
fn json_output_is_one_object_per_line() {
    let dir = goldens();
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("store");
    ok(&root, &["load", "-i", dir.join("golden.tar").to_str().unwrap()]);
    for args in [
        &["images", "--format", "json"][..],
        &["history", "--format", "json", "golden:v1"],
        &["network", "ls", "--format", "json"],
        &["ps", "-a", "--format", "json"],
    ] {
        for l in ok(&root, args).lines() {
            let v: serde_json::Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("{args:?}: {e}: {l}"));
            assert!(v.is_object(), "{args:?}: {l}");
        }
    }
    // A closed pipe on the first line ends lamina quietly: `images -q | head -0` prints nothing on stderr.
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{} --root {} images -q | head -0",
            common::lamina_bin().display(),
            root.display()
        ))
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
}
