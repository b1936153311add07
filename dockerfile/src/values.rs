//! Checks of flag and argument values: durations, modes, ports, signals, platforms, checksums and the
//! `--mount` option list. Run at parse time on values without `$`, and again after expansion.

use super::error::Suggestion;

/// "Did you mean": the closest candidate within an edit distance of 2 (or 1 for very short words).
pub(crate) fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Suggestion {
    let w = word.to_ascii_lowercase();
    let limit = if w.len() <= 3 { 1 } else { 2 };
    let best = candidates
        .into_iter()
        .map(|c| (levenshtein(&w, &c.to_ascii_lowercase()), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d);
    Suggestion(best.map(|(_, c)| c.to_string()))
}

/// BuildKit's `suggest.Search` (case-sensitive): the first candidate closest to `word` by fewer than 3
/// edits; none when a candidate is `word` itself.
pub(crate) fn suggest_close<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let mut best: Option<(usize, &str)> = None;
    for c in candidates {
        if c == word {
            return None;
        }
        let d = levenshtein(word, c);
        if d < best.map_or(3, |(b, _)| b) {
            best = Some((d, c));
        }
    }
    best.map(|(_, c)| c.to_string())
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// A Go-style duration (`1h30m`, `500ms`, `1.5s`, `0`) in nanoseconds.
pub fn parse_duration(s: &str) -> Option<i64> {
    if s == "0" {
        return Some(0);
    }
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest.is_empty() {
        return None;
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let num = &rest[..num_len];
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return None;
        }
        let n: f64 = num.parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += n * mult;
    }
    if total > i64::MAX as f64 {
        return None;
    }
    Some(if neg { -(total as i64) } else { total as i64 })
}

/// `--chmod`: octal (`755`, `0644`) or symbolic (`u+x,go-w`, `a=rX`).
pub fn valid_chmod(s: &str) -> bool {
    if !s.is_empty() && s.len() <= 5 && s.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return u32::from_str_radix(s, 8).is_ok_and(|m| m <= 0o7777);
    }
    !s.is_empty()
        && s.split(',').all(|clause| {
            let who_len = clause.bytes().take_while(|b| b"ugoa".contains(b)).count();
            let mut rest = &clause[who_len..];
            if rest.is_empty() {
                return false;
            }
            while let Some(op) = rest.chars().next() {
                if !"+-=".contains(op) {
                    return false;
                }
                rest = &rest[1..];
                let perm_len = rest.bytes().take_while(|b| b"rwxXstugo".contains(b)).count();
                rest = &rest[perm_len..];
            }
            true
        })
}

/// One EXPOSE spec as docker's port parser reads it: `[IP:][HOST_PORT:]PORT[-PORT][/PROTO]`, IPv6 addresses in
/// brackets (`[::1]:80:80`). Only the container part reaches the image, so the host parts are checked and
/// dropped, as BuildKit does (`0.0.0.0:80:80/tcp` exposes `80/tcp`).
pub fn valid_port(s: &str) -> bool {
    exposed_ports_checked(s).is_ok()
}

/// The image-config keys of one EXPOSE spec, as docker writes them: `80` → `80/tcp`,
/// `8000-8002/udp` → `8000/udp 8001/udp 8002/udp`. Empty when the spec is invalid.
pub fn exposed_ports(spec: &str) -> Vec<String> {
    exposed_ports_checked(spec).unwrap_or_default()
}

/// [`exposed_ports`] with the reason a spec is refused.
pub fn exposed_ports_checked(spec: &str) -> Result<Vec<String>, &'static str> {
    // The last `:` part is the container port, the one before it the host port, the rest the address.
    let parts: Vec<&str> = spec.split(':').collect();
    let (ip, host, container) = match parts.as_slice() {
        [c] => (String::new(), "", *c),
        [h, c] => (String::new(), *h, *c),
        [rest @ .., h, c] => (rest.join(":"), *h, *c),
        [] => return Err("no port specified"),
    };
    let ip = match ip.strip_prefix('[') {
        Some(r) => r.strip_suffix(']').ok_or("invalid IP address")?.to_string(),
        None => ip,
    };
    if !ip.is_empty() && ip.parse::<std::net::IpAddr>().is_err() {
        return Err("invalid IP address");
    }
    let (proto, container) = match container.split('/').collect::<Vec<_>>().as_slice() {
        ["", ..] => return Err("no port specified"),
        [p] => ("tcp".to_string(), *p),
        [p, "", ..] => ("tcp".to_string(), *p),
        [p, proto, ..] => (proto.to_ascii_lowercase(), *p),
        [] => return Err("no port specified"),
    };
    let (lo, hi) = port_range(container).ok_or("invalid container port")?;
    if !host.is_empty() {
        let (hlo, hhi) = port_range(host).ok_or("invalid host port")?;
        if hhi - hlo != hi - lo && hi != lo {
            return Err("invalid ranges specified for container and host ports");
        }
    }
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err("invalid protocol");
    }
    Ok((lo..=hi).map(|p| format!("{p}/{proto}")).collect())
}

/// `N` or `N-M` with 16-bit unsigned decimal numbers (Go's `strconv.ParseUint(s, 10, 16)`: digits only).
fn port_range(s: &str) -> Option<(u32, u32)> {
    let num = |p: &str| {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        p.parse::<u16>().ok().map(u32::from)
    };
    match s.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (num(a)?, num(b.split('-').next().unwrap_or(b))?);
            (a <= b).then_some((a, b))
        }
        None => num(s).map(|n| (n, n)),
    }
}

const SIGNALS: &[&str] = &[
    "ABRT", "ALRM", "BUS", "CHLD", "CLD", "CONT", "FPE", "HUP", "ILL", "INT", "IO", "IOT", "KILL", "PIPE",
    "POLL", "PROF", "PWR", "QUIT", "SEGV", "STKFLT", "STOP", "SYS", "TERM", "TRAP", "TSTP", "TTIN", "TTOU",
    "URG", "USR1", "USR2", "VTALRM", "WINCH", "XCPU", "XFSZ",
];

/// STOPSIGNAL: a number 1–64, a name with or without SIG, or RTMIN+n / RTMAX-n.
pub fn valid_signal(s: &str) -> bool {
    if let Ok(n) = s.parse::<u32>() {
        return (1..=64).contains(&n);
    }
    let up = s.to_ascii_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    if SIGNALS.contains(&name) || name == "RTMIN" || name == "RTMAX" {
        return true;
    }
    let rt = |prefix: &str, sep: char| {
        name.strip_prefix(prefix)
            .and_then(|r| r.strip_prefix(sep))
            .and_then(|n| n.parse::<u32>().ok())
            .is_some_and(|n| (1..=15).contains(&n))
    };
    rt("RTMIN", '+') || rt("RTMAX", '-')
}

/// `os/arch[/variant]` or just an architecture or OS name.
pub fn valid_platform(s: &str) -> bool {
    let parts: Vec<&str> = s.split('/').collect();
    parts.len() <= 3
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
        })
}

/// `--checksum=sha256:<hex>` (also sha384, sha512).
pub fn valid_checksum(s: &str) -> bool {
    let Some((alg, hex)) = s.split_once(':') else {
        return false;
    };
    let len = match alg {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return false,
    };
    hex.len() == len
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// tmpfs `size=`: bytes with an optional k/m/g/t/p suffix (and optional b/ib), in binary units as
/// BuildKit reads them (`64m` = 64 MiB, `1.5g` = 1.5 GiB). The one parser of the value: the front end
/// validates with it and the engine hands its result to the runner.
pub fn parse_size(s: &str) -> Option<u64> {
    let l = s.trim().to_ascii_lowercase();
    let num_len = l
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(l.len());
    let n: f64 = l.get(..num_len).filter(|n| !n.is_empty())?.parse().ok()?;
    let unit = l[num_len..].trim_end_matches("ib").trim_end_matches('b');
    let shift = match unit {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        "p" => 50,
        _ => return None,
    };
    let bytes = n * (1u64 << shift) as f64;
    (bytes.is_finite() && bytes < u64::MAX as f64).then(|| bytes.round() as u64)
}

/// Whether [`parse_size`] accepts `s`.
pub fn valid_size(s: &str) -> bool {
    parse_size(s).is_some()
}

/// Values of `--mount` options that have a fixed syntax; `None` when fine, else what was expected.
pub fn mount_value_problem(option: &str, value: &str) -> Option<&'static str> {
    match option {
        "sharing" => {
            (!matches!(value, "shared" | "private" | "locked")).then_some("shared, private or locked")
        }
        "mode" => u32::from_str_radix(value, 8)
            .is_err()
            .then_some("an octal mode like 0755"),
        "uid" | "gid" => value.parse::<u32>().is_err().then_some("a numeric id"),
        "size" => (!valid_size(value)).then_some("a size like 64m"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1m30s"), Some(90_000_000_000));
        assert_eq!(parse_duration("1.5s"), Some(1_500_000_000));
        assert_eq!(parse_duration("0"), Some(0));
        assert_eq!(parse_duration("10"), None);
        assert_eq!(parse_duration("3x"), None);
    }

    #[test]
    fn misc_values() {
        assert!(valid_chmod("755") && valid_chmod("0644") && valid_chmod("u+x,go-w") && valid_chmod("a=rX"));
        assert!(!valid_chmod("999") && !valid_chmod("u") && !valid_chmod("z+x") && !valid_chmod(""));
        assert!(valid_port("80") && valid_port("80/udp") && valid_port("8000-8010/tcp"));
        assert!(!valid_port("80/xyz") && !valid_port("70000") && !valid_port("a"));
        assert_eq!(exposed_ports("80"), vec!["80/tcp"]);
        assert_eq!(exposed_ports("53-54/UDP"), vec!["53/udp", "54/udp"]);
        // Host address and port parts are checked and dropped, as docker's port parser does.
        assert_eq!(exposed_ports("0.0.0.0:80:80/tcp"), vec!["80/tcp"]);
        assert_eq!(exposed_ports("[::1]:8080:80"), vec!["80/tcp"]);
        assert_eq!(exposed_ports("8080:80/udp"), vec!["80/udp"]);
        assert_eq!(exposed_ports("::1:8080:80"), vec!["80/tcp"]);
        assert_eq!(exposed_ports("80/"), vec!["80/tcp"]);
        assert_eq!(exposed_ports("080"), vec!["80/tcp"]);
        assert_eq!(
            exposed_ports("7000-7001:80"),
            vec!["80/tcp"],
            "a host range for one port"
        );
        for bad in [
            "nope:80:80",
            "[::1:80:80",
            "8000-8001:80-82",
            "a:80",
            "/tcp",
            "",
            "+80",
            "80-70",
        ] {
            assert!(exposed_ports_checked(bad).is_err(), "{bad}");
        }
        assert!(
            valid_signal("SIGTERM")
                && valid_signal("kill")
                && valid_signal("9")
                && valid_signal("SIGRTMIN+3")
        );
        assert!(!valid_signal("SIGFOO") && !valid_signal("0"));
        assert_eq!(suggest("COPPY", ["COPY", "RUN"]).0.as_deref(), Some("COPY"));
        assert_eq!(suggest("xyzzy", ["COPY", "RUN"]).0, None);
    }
}
