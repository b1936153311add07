//! Build facts for `lamina version`: the git commit (from a checkout; `LAMINA_GIT_COMMIT` if a packager sets
//! it; `unknown` from a tarball without `.git`), the build date (SOURCE_DATE_EPOCH when set, for
//! reproducible builds) and rustc's version. Reruns only when the commit moves, so builds stay incremental.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// RFC 3339 UTC of Unix seconds (civil-from-days, Howard Hinnant's algorithm).
fn rfc3339(secs: i64) -> String {
    let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        sod / 3600,
        sod / 60 % 60,
        sod % 60
    )
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=LAMINA_GIT_COMMIT");
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    let commit = std::env::var("LAMINA_GIT_COMMIT")
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| git(&["rev-parse", "--short=12", "HEAD"]));
    if commit.is_some() {
        // HEAD and the branch it names (a worktree's HEAD is in its own git dir, the branch in the common one).
        for p in ["HEAD".to_owned()]
            .into_iter()
            .chain(git(&["symbolic-ref", "-q", "HEAD"]))
            .chain(["packed-refs".to_owned()])
        {
            if let Some(path) = git(&["rev-parse", "--git-path", &p]) {
                println!("cargo:rerun-if-changed={path}");
            }
        }
    }
    let epoch = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64)
        });
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let rustc_version = Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".into());
    println!(
        "cargo:rustc-env=LAMINA_GIT_COMMIT={}",
        commit.as_deref().unwrap_or("unknown")
    );
    println!("cargo:rustc-env=LAMINA_BUILD_DATE={}", rfc3339(epoch));
    println!("cargo:rustc-env=LAMINA_RUSTC_VERSION={rustc_version}");
}
