#![no_main]
//! Parse, build the graph and render the report for arbitrary text: errors are fine, panics are not.

use lamina_builder_fuzz::dockerfile::{self, graph};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else { return };
    let Ok(df) = dockerfile::parse(src, "Dockerfile") else { return };
    let mut opts = graph::BuildOptions::default();
    opts.build_args.insert("A".into(), "x y".into());
    if let Ok(g) = graph::BuildGraph::new(&df, &opts) {
        for pos in 0..g.stages.len() {
            let _ = g.expand_stage(pos, vec![("PATH".into(), "/bin".into())]);
        }
    }
    let _ = dockerfile::report::report(src, "Dockerfile", &opts).map(|r| serde_json::to_string(&r));
});
