//! Solver node keys: a stage's content, not its place. Two stages (of one target's graph or of two
//! targets' graphs) whose resolved definition, platform and inputs are the same are one node and are
//! solved once, as BuildKit merges LLB vertices of equal digest.
//!
//! The key hashes the expanded stage as the front end serializes it, minus what only names or places
//! it: its name and index, `FROM … AS name`, and every source span (a stage copied to another line is the
//! same work; errors then name the first copy's lines, as BuildKit's do). Stage references (the base,
//! `COPY --from`, `RUN --mount from=`, the dependency list) are positions in one graph, so they are
//! replaced by the referenced stage's key: inputs are named by content too.

use serde_json::Value;

use crate::dockerfile::Stage;
use crate::dockerfile::graph::Platform;
use lamina_store::Digest;

/// The key of `stage` on `platform`; `dep_key(pos)` is the key of the stage at graph position `pos`
/// (every stage a stage refers to comes before it, so its key is known).
pub fn stage_key(stage: &Stage, platform: &Platform, dep_key: &dyn Fn(usize) -> Digest) -> Digest {
    // A Stage always serializes (plain data); should that ever fail, a key unique to this position
    // keeps the stage unshared rather than merged wrongly.
    let mut v = match serde_json::to_value(stage) {
        Ok(v) => v,
        Err(_) => return Digest::sha256_of(format!("unshared {} {platform}", stage.index).as_bytes()),
    };
    if let Value::Object(m) = &mut v {
        m.remove("index");
        m.remove("name");
        if let Some(Value::Object(from)) = m.get_mut("from") {
            from.remove("name");
        }
        if let Some(base) = m.get_mut("base") {
            replace_stage_ref(base, dep_key);
        }
        if let Some(Value::Object(refs)) = m.get_mut("trigger_from") {
            for r in refs.values_mut() {
                replace_stage_ref(r, dep_key);
            }
        }
        if let Some(Value::Array(deps)) = m.get_mut("deps") {
            for d in deps.iter_mut() {
                if let Some(pos) = d.as_u64() {
                    *d = Value::String(dep_key(pos as usize).to_string());
                }
            }
        }
        if let Some(Value::Array(steps)) = m.get_mut("steps") {
            for step in steps.iter_mut().filter_map(Value::as_object_mut) {
                let mut named = Vec::new();
                if let Some(r) = step.get_mut("copy_from")
                    && replace_stage_ref(r, dep_key)
                {
                    named.push(None);
                }
                if let Some(Value::Array(mounts)) = step.get_mut("mount_from") {
                    for (j, r) in mounts.iter_mut().enumerate() {
                        if replace_stage_ref(r, dep_key) {
                            named.push(Some(j));
                        }
                    }
                }
                if let Some(Value::Object(ins)) = step.get_mut("instruction") {
                    forget_stage_names(ins, &named);
                }
            }
        }
    }
    strip_spans(&mut v);
    let text = serde_json::json!({ "stage": v, "platform": platform.to_string() }).to_string();
    Digest::sha256_of(text.as_bytes())
}

/// `{"stage": POS}` (a [`Base`](crate::dockerfile::Base) or [`Ref`](crate::dockerfile::graph::Ref)) →
/// `{"stage": KEY}`; whether `v` was a stage reference.
fn replace_stage_ref(v: &mut Value, dep_key: &dyn Fn(usize) -> Digest) -> bool {
    if let Some(slot) = v.as_object_mut().and_then(|o| o.get_mut("stage"))
        && let Some(pos) = slot.as_u64()
    {
        *slot = Value::String(dep_key(pos as usize).to_string());
        return true;
    }
    false
}

/// Drops the stage names an instruction wrote where the step's resolved reference (now a key) says it
/// all: `COPY --from=NAME` (`None` in `refs`) and `from=NAME` of mount `j` (`Some(j)`). The raw flags
/// go too: their typed fields (kept) are what the engine reads, and `--mount`'s text names the stage.
fn forget_stage_names(ins: &mut serde_json::Map<String, Value>, refs: &[Option<usize>]) {
    if refs.is_empty() {
        return;
    }
    if refs.contains(&None) {
        ins.remove("from");
    }
    if let Some(Value::Array(mounts)) = ins.get_mut("mounts") {
        for j in refs.iter().flatten() {
            if let Some(Value::Object(mount)) = mounts.get_mut(*j) {
                mount.remove("from");
            }
        }
    }
    let named_flag = |f: &Value| {
        let name = f.get("name").and_then(Value::as_str);
        (name == Some("from") && refs.contains(&None))
            || (name == Some("mount") && refs.iter().any(Option::is_some))
    };
    if let Some(Value::Array(flags)) = ins.get_mut("flags") {
        flags.retain(|f| !named_flag(f));
    }
}

/// Drops every `span`, `keyword_span`, `body_span`… field: where a word was written is not what it does.
fn strip_spans(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|k, _| !k.ends_with("span"));
            m.values_mut().for_each(strip_spans);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_spans),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dockerfile::{BuildGraph, BuildOptions, parse};

    /// Each named stage's key (the graph orders stages dependencies first, not as written).
    fn keys(src: &str) -> std::collections::HashMap<String, Digest> {
        let df = parse(src, "Dockerfile").unwrap();
        let g = BuildGraph::new(&df, &BuildOptions::default()).unwrap();
        let host = Platform::host();
        let mut out: Vec<Digest> = Vec::new();
        for st in &g.stages {
            let k = stage_key(st, &host, &|p| out[p].clone());
            out.push(k);
        }
        g.stages
            .iter()
            .zip(out)
            .filter_map(|(st, k)| Some((st.name.clone()?, k)))
            .collect()
    }

    #[test]
    fn names_and_lines_do_not_change_a_key() {
        let k = keys(
            "FROM busybox AS a\nRUN echo hi\n\n\nFROM busybox AS b\nRUN   echo hi\nFROM scratch\nCOPY --from=a /x /a\nCOPY --from=b /x /b\n",
        );
        assert_eq!(k["a"], k["b"], "a and b do the same work");
    }

    #[test]
    fn what_a_stage_runs_or_reads_changes_its_key() {
        let k = keys(
            "FROM busybox AS a\nRUN echo hi\nFROM busybox AS b\nRUN echo ho\nFROM alpine AS c\nRUN echo hi\nFROM scratch\nCOPY --from=a /x /a\nCOPY --from=b /x /b\nCOPY --from=c /x /c\n",
        );
        assert_ne!(k["a"], k["b"], "another command");
        assert_ne!(k["a"], k["c"], "another base");
    }

    #[test]
    fn inputs_are_keyed_by_content_not_position() {
        // d1 and d2 copy from stages at different positions that do the same work: same key.
        let k = keys(
            "FROM busybox AS a\nRUN echo hi\nFROM busybox AS b\nRUN echo hi\n\
             FROM scratch AS d1\nCOPY --from=a /x /x\nFROM scratch AS d2\nCOPY --from=b /x /x\n\
             FROM scratch\nCOPY --from=d1 /x /1\nCOPY --from=d2 /x /2\n",
        );
        assert_eq!(k["d1"], k["d2"]);
        assert_ne!(k["a"], k["d1"]);
    }

    #[test]
    fn mounts_from_equal_stages_are_equal_inputs() {
        let k = keys(
            "FROM busybox AS a\nRUN echo hi\nFROM busybox AS b\nRUN echo hi\n\
             FROM busybox AS r1\nRUN --mount=type=bind,from=a,target=/m cat /m/x\n\
             FROM busybox AS r2\nRUN --mount=type=bind,from=b,target=/m cat /m/x\n\
             FROM busybox AS r3\nRUN --mount=type=bind,from=b,target=/n cat /m/x\n\
             FROM scratch\nCOPY --from=r1 /x /1\nCOPY --from=r2 /x /2\nCOPY --from=r3 /x /3\n",
        );
        assert_eq!(k["r1"], k["r2"], "the same mount of equal stages");
        assert_ne!(k["r2"], k["r3"], "another mount target");
    }

    #[test]
    fn the_platform_is_part_of_the_key() {
        let df = parse("FROM busybox\nRUN echo hi\n", "Dockerfile").unwrap();
        let g = BuildGraph::new(&df, &BuildOptions::default()).unwrap();
        let none = |_: usize| -> Digest { unreachable!("no stage refs") };
        let a = stage_key(&g.stages[0], &Platform::parse("linux/amd64").unwrap(), &none);
        let b = stage_key(&g.stages[0], &Platform::parse("linux/arm64").unwrap(), &none);
        assert_ne!(a, b);
    }
}
