//! `lamina build` pulls what a base's ONBUILD triggers name before the build: a base pulled from a
//! registry has `ONBUILD COPY --from=IMAGE`, and IMAGE (named nowhere in the Dockerfile) is pulled too;
//! a trigger's `--from` that names a stage of the child Dockerfile is that stage, not an image.
//! No RUN steps, so no root is needed.

mod registry_support;

use std::path::Path;
use std::process::Output;

use registry_support::{Registry, lamina, ok};

fn run(root: &Path, args: &[&str]) -> Output {
    lamina().arg("--root").arg(root).args(args).output().unwrap()
}

fn context(dir: &Path, files: &[(&str, &str)]) -> String {
    std::fs::create_dir_all(dir).unwrap();
    for (name, text) in files {
        std::fs::write(dir.join(name), text).unwrap();
    }
    dir.display().to_string()
}

#[test]
fn images_named_only_in_onbuild_triggers_are_pulled_before_the_build() {
    let Some(reg) = Registry::start("") else { return };
    let h = reg.host();
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src-store");
    let extra = format!("{h}/extra:1");
    let base = format!("{h}/ob:1");
    let c1 = context(
        &t.path().join("extra"),
        &[
            ("Dockerfile", "FROM scratch\nCOPY a.txt /a.txt\n"),
            ("a.txt", "from extra\n"),
        ],
    );
    ok(
        &run(&src, &["build", "--progress", "plain", "-t", &extra, &c1]),
        "build extra",
    );
    let c2 = context(
        &t.path().join("ob"),
        &[(
            "Dockerfile",
            &format!(
                "FROM scratch\nONBUILD COPY --from={extra} /a.txt /a.txt\nONBUILD COPY --from=kid /k.txt /k.txt\n"
            ),
        )],
    );
    ok(
        &run(&src, &["build", "--progress", "plain", "-t", &base, &c2]),
        "build the base",
    );
    ok(&run(&src, &["push", "--progress", "plain", &extra]), "push extra");
    ok(
        &run(&src, &["push", "--progress", "plain", &base]),
        "push the base",
    );

    // A fresh store: only the base is named in the Dockerfile.
    let dst = t.path().join("dst-store");
    let c3 = context(
        &t.path().join("child"),
        &[
            (
                "Dockerfile",
                &format!("FROM scratch AS kid\nCOPY k.txt /k.txt\nFROM {base}\n"),
            ),
            ("k.txt", "from the kid stage\n"),
        ],
    );
    let out = t.path().join("out");
    let o = run(
        &dst,
        &[
            "build",
            "--progress",
            "plain",
            "-o",
            &format!("type=local,dest={}", out.display()),
            &c3,
        ],
    );
    ok(&o, "build the child");
    assert_eq!(
        std::fs::read_to_string(out.join("a.txt")).unwrap(),
        "from extra\n"
    );
    assert_eq!(
        std::fs::read_to_string(out.join("k.txt")).unwrap(),
        "from the kid stage\n"
    );
}
