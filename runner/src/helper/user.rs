//! Resolve a docker `USER` string against the image's own /etc/passwd and /etc/group (never the
//! host's NSS), like runc's `GetExecUser`.

use super::SetupError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExecUser {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub home: String,
}

struct PasswdEntry<'a> {
    name: &'a str,
    uid: u32,
    gid: u32,
    home: &'a str,
}

struct GroupEntry<'a> {
    name: &'a str,
    gid: u32,
    members: Vec<&'a str>,
}

fn passwd_entries(s: &str) -> impl Iterator<Item = PasswdEntry<'_>> {
    s.lines().filter(|l| !l.starts_with('#')).filter_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        if f.len() < 6 {
            return None;
        }
        Some(PasswdEntry {
            name: f[0],
            uid: f[2].parse().ok()?,
            gid: f[3].parse().ok()?,
            home: f[5],
        })
    })
}

fn group_entries(s: &str) -> impl Iterator<Item = GroupEntry<'_>> {
    s.lines().filter(|l| !l.starts_with('#')).filter_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        if f.len() < 3 {
            return None;
        }
        let members = f
            .get(3)
            .map(|m| m.split(',').filter(|m| !m.is_empty()).collect())
            .unwrap_or_default();
        Some(GroupEntry {
            name: f[0],
            gid: f[2].parse().ok()?,
            members,
        })
    })
}

/// `spec` is `user[:group]` (names or numbers, empty = root); `extra` are `--group-add` values.
pub(crate) fn resolve(
    spec: Option<&str>,
    extra: &[String],
    passwd: Option<&str>,
    group: Option<&str>,
) -> Result<ExecUser, SetupError> {
    let spec = spec.unwrap_or("");
    let (user, grp) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let user = if user.is_empty() { "0" } else { user };
    let passwd = passwd.unwrap_or("");
    let groups = group.unwrap_or("");
    let entry =
        match user.parse::<u32>() {
            Ok(uid) => passwd_entries(passwd).find(|e| e.uid == uid),
            Err(_) => Some(passwd_entries(passwd).find(|e| e.name == user).ok_or_else(|| {
                SetupError::NoSuchUser {
                    user: user.to_string(),
                }
            })?),
        };
    let uid = match &entry {
        Some(e) => e.uid,
        None => user.parse().unwrap_or(0),
    };
    let home = entry
        .as_ref()
        .map(|e| e.home.to_string())
        .unwrap_or_else(|| "/".to_string());
    let lookup_group = |g: &str| -> Result<u32, SetupError> {
        match g.parse::<u32>() {
            Ok(gid) => Ok(gid),
            Err(_) => group_entries(groups)
                .find(|e| e.name == g)
                .map(|e| e.gid)
                .ok_or_else(|| SetupError::NoSuchGroup { group: g.to_string() }),
        }
    };
    let gid = match grp {
        Some(g) if !g.is_empty() => lookup_group(g)?,
        _ => entry.as_ref().map(|e| e.gid).unwrap_or(0),
    };
    // The primary gid is a supplementary one too, as containerd and BuildKit set it since the fix for
    // CVE-2023-25173 (otherwise a file's group permissions could be dodged by dropping it with setgroups).
    let mut additional_gids = vec![gid];
    // Membership is by name, as initgroups(3) does; only when no group was forced, like runc.
    if let (Some(e), None) = (&entry, grp) {
        for g in group_entries(groups) {
            if g.members.contains(&e.name) && g.gid != gid && !additional_gids.contains(&g.gid) {
                additional_gids.push(g.gid);
            }
        }
    }
    for g in extra {
        let gid = lookup_group(g)?;
        if !additional_gids.contains(&gid) {
            additional_gids.push(gid);
        }
    }
    Ok(ExecUser {
        uid,
        gid,
        additional_gids,
        home,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n# comment\nbob:x:1000:1000::/home/bob:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nbob:x:1000:\nwheel:x:10:bob,alice\naudio:x:29:bob\n";

    #[test]
    fn names_and_numbers() {
        let u = resolve(Some("bob"), &[], Some(PASSWD), Some(GROUP)).unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (1000, 1000, "/home/bob"));
        assert_eq!(u.additional_gids, vec![1000, 10, 29]);
        let u = resolve(Some("bob:wheel"), &[], Some(PASSWD), Some(GROUP)).unwrap();
        assert_eq!((u.uid, u.gid), (1000, 10));
        assert_eq!(u.additional_gids, vec![10]);
        let u = resolve(Some("4242:77"), &["audio".into()], Some(PASSWD), Some(GROUP)).unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (4242, 77, "/"));
        assert_eq!(u.additional_gids, vec![77, 29]);
        let u = resolve(None, &[], None, None).unwrap();
        assert_eq!((u.uid, u.gid), (0, 0));
    }

    #[test]
    fn unknown_names_fail() {
        assert!(matches!(
            resolve(Some("eve"), &[], Some(PASSWD), Some(GROUP)),
            Err(SetupError::NoSuchUser { .. })
        ));
        assert!(matches!(
            resolve(Some("bob:nogroup"), &[], Some(PASSWD), Some(GROUP)),
            Err(SetupError::NoSuchGroup { .. })
        ));
    }
}
