//! `--progress json`: one JSON object per line and nothing else: every event with its wall-clock time
//! (`time`, RFC 3339 in UTC with milliseconds) and seconds since the build started (`elapsed`), step ids,
//! log lines as `log` events, and a final `result` event.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use super::Event;

#[derive(serde::Serialize)]
struct Line<'a> {
    time: String,
    elapsed: f64,
    #[serde(flatten)]
    event: &'a Event,
}

/// The JSON line of `e`.
pub(super) fn line(e: &Event, start: Instant) -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = lamina_store::archive::rfc3339(now.as_secs() as i64);
    let time = format!("{}.{:03}Z", secs.trim_end_matches('Z'), now.subsec_millis());
    let elapsed = (start.elapsed().as_secs_f64() * 1000.0).round() / 1000.0;
    serde_json::to_string(&Line {
        time,
        elapsed,
        event: e,
    })
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_carry_time_and_the_event() {
        let l = line(
            &Event::Log {
                id: 3,
                line: "hi \"there\"".into(),
            },
            Instant::now(),
        );
        let v: serde_json::Value = serde_json::from_str(&l).unwrap();
        assert_eq!(v["event"], "log");
        assert_eq!(v["id"], 3);
        assert_eq!(v["line"], "hi \"there\"");
        let t = v["time"].as_str().unwrap();
        assert!(
            t.len() == 24 && t.ends_with('Z') && t.as_bytes()[19] == b'.',
            "{t}"
        );
        assert!(v["elapsed"].as_f64().unwrap() >= 0.0);
        assert!(!l.contains('\n'));
    }
}
