//! `--chown` (names resolved from the target image's /etc/passwd and /etc/group) and `--chmod` (octal or
//! symbolic, like chmod(1)), and USER resolution for RUN.

use super::BuildError;
use super::view::View;

/// A resolved owner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
}

fn lookup_db(view: &View, file: &str, name: &str) -> Option<(u32, u32)> {
    let data = view.read_file(file)?;
    let text = String::from_utf8_lossy(&data);
    for line in text.lines() {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() >= 3 && f[0] == name {
            let id = f[2].parse().ok()?;
            let gid = f.get(3).and_then(|g| g.parse().ok()).unwrap_or(id);
            return Some((id, gid));
        }
    }
    None
}

/// The uid, primary gid and supplementary gids for a USER spec `user[:group]` in `view`. Numeric ids need no
/// passwd entry (gid then defaults to the passwd entry's, else to 0… docker uses the uid's passwd gid or 0).
pub fn resolve_user(view: &View, spec: &str, line: usize) -> Result<(u32, u32, Vec<u32>), BuildError> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let (uid, mut gid) = if let Ok(n) = user.parse::<u32>() {
        let gid = numeric_passwd_gid(view, n).unwrap_or(0);
        (n, gid)
    } else {
        lookup_db(view, "/etc/passwd", user).ok_or_else(|| BuildError::UnknownUser {
            line,
            name: user.to_string(),
        })?
    };
    if let Some(g) = group {
        gid = resolve_group(view, g, line)?;
    }
    let mut extra = Vec::new();
    if group.is_none()
        && let Some(data) = view.read_file("/etc/group")
    {
        for l in String::from_utf8_lossy(&data).lines() {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() >= 4
                && f[3].split(',').any(|m| m == user)
                && let Ok(g) = f[2].parse::<u32>()
                && g != gid
            {
                extra.push(g);
            }
        }
    }
    Ok((uid, gid, extra))
}

fn numeric_passwd_gid(view: &View, uid: u32) -> Option<u32> {
    let data = view.read_file("/etc/passwd")?;
    String::from_utf8_lossy(&data).lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 4 && f[2].parse() == Ok(uid))
            .then(|| f[3].parse().ok())
            .flatten()
    })
}

fn resolve_group(view: &View, g: &str, line: usize) -> Result<u32, BuildError> {
    if let Ok(n) = g.parse() {
        return Ok(n);
    }
    lookup_db(view, "/etc/group", g)
        .map(|(id, _)| id)
        .ok_or_else(|| BuildError::UnknownGroup {
            line,
            name: g.to_string(),
        })
}

/// `--chown=user[:group]`: like docker, a user without group takes the user's primary group from passwd
/// (numeric user without entry: the same number as gid).
pub fn resolve_chown(view: &View, spec: &str, line: usize) -> Result<Owner, BuildError> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let (uid, pgid) = if let Ok(n) = user.parse::<u32>() {
        (n, if group.is_none() { n } else { 0 })
    } else {
        lookup_db(view, "/etc/passwd", user).ok_or_else(|| BuildError::UnknownUser {
            line,
            name: user.to_string(),
        })?
    };
    let gid = match group {
        Some(g) => resolve_group(view, g, line)?,
        None => pgid,
    };
    Ok(Owner { uid, gid })
}

/// A parsed `--chmod`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Chmod {
    Octal(u32),
    /// Clauses like `u+x,go-w,a=r`, applied in order.
    Symbolic(Vec<(u32, char, String)>),
}

pub fn parse_chmod(s: &str, line: usize) -> Result<Chmod, BuildError> {
    let bad = || BuildError::BadChmod {
        line,
        value: s.to_string(),
    };
    if !s.is_empty() && s.chars().all(|c| c.is_digit(8)) {
        let v = u32::from_str_radix(s, 8).map_err(|_| bad())?;
        if v > 0o7777 {
            return Err(bad());
        }
        return Ok(Chmod::Octal(v));
    }
    let mut clauses = Vec::new();
    for clause in s.split(',') {
        let opi = clause.find(['+', '-', '=']).ok_or_else(bad)?;
        let (who, rest) = clause.split_at(opi);
        let mut mask = 0;
        for c in who.chars() {
            mask |= match c {
                'u' => 0o4700,
                'g' => 0o2070,
                'o' => 0o1007,
                'a' => 0o7777,
                _ => return Err(bad()),
            };
        }
        if who.is_empty() {
            mask = 0o7777;
        }
        let op = rest.chars().next().ok_or_else(bad)?;
        let perms = &rest[1..];
        if !perms.chars().all(|c| "rwxXst".contains(c)) {
            return Err(bad());
        }
        clauses.push((mask, op, perms.to_string()));
    }
    Ok(Chmod::Symbolic(clauses))
}

impl Chmod {
    /// The new permission bits for an entry with `mode` (perm bits only), `is_dir` for `X`.
    pub fn apply(&self, mode: u32, is_dir: bool) -> u32 {
        match self {
            // Today's BuildKit keeps setuid/setgid/sticky (`--chmod=4755`); 20.10's BuildKit 0.8 dropped them.
            Chmod::Octal(v) => *v & 0o7777,
            Chmod::Symbolic(clauses) => {
                let mut m = mode & 0o7777;
                for (mask, op, perms) in clauses {
                    let mut bits = 0;
                    for c in perms.chars() {
                        bits |= match c {
                            'r' => 0o444,
                            'w' => 0o222,
                            'x' => 0o111,
                            'X' if is_dir || m & 0o111 != 0 => 0o111,
                            's' => 0o6000,
                            't' => 0o1000,
                            _ => 0,
                        };
                    }
                    let bits = bits & mask;
                    match op {
                        '+' => m |= bits,
                        '-' => m &= !bits,
                        _ => m = (m & !(mask & 0o777 | mask & 0o7000)) | bits,
                    }
                }
                m
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn chmod_forms() {
        assert_eq!(parse_chmod("755", 1).unwrap().apply(0o600, false), 0o755);
        assert_eq!(parse_chmod("u+x", 1).unwrap().apply(0o644, false), 0o744);
        assert_eq!(parse_chmod("go-r,u=rw", 1).unwrap().apply(0o755, false), 0o611);
        assert_eq!(parse_chmod("a+X", 1).unwrap().apply(0o644, true), 0o755);
        assert_eq!(parse_chmod("a+X", 1).unwrap().apply(0o644, false), 0o644);
        assert!(parse_chmod("99", 1).is_err());
        assert!(parse_chmod("q+x", 1).is_err());
    }

    #[test]
    fn chown_from_target_passwd() {
        let t = tempfile::tempdir().unwrap();
        fs::create_dir_all(t.path().join("etc")).unwrap();
        fs::write(
            t.path().join("etc/passwd"),
            "root:x:0:0::/:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n",
        )
        .unwrap();
        fs::write(
            t.path().join("etc/group"),
            "root:x:0:\nstaff:x:50:app\napp:x:1001:\n",
        )
        .unwrap();
        let v = View::new(vec![t.path().to_path_buf()]);
        assert_eq!(
            resolve_chown(&v, "app", 1).unwrap(),
            Owner { uid: 1000, gid: 1001 }
        );
        assert_eq!(
            resolve_chown(&v, "app:staff", 1).unwrap(),
            Owner { uid: 1000, gid: 50 }
        );
        assert_eq!(resolve_chown(&v, "42", 1).unwrap(), Owner { uid: 42, gid: 42 });
        assert_eq!(
            resolve_chown(&v, "42:staff", 1).unwrap(),
            Owner { uid: 42, gid: 50 }
        );
        assert!(matches!(
            resolve_chown(&v, "nobody", 7),
            Err(BuildError::UnknownUser { line: 7, .. })
        ));
        assert_eq!(resolve_user(&v, "app", 1).unwrap(), (1000, 1001, vec![50]));
    }
}
