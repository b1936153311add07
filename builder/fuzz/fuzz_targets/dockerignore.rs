#![no_main]
//! `.dockerignore` patterns (first line half) against paths (second half).

use lamina_builder_fuzz::dockerfile::dockerignore::{MatchCache, Matcher};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let (pats, paths) = s.split_once("\n\n").unwrap_or((s, "a/b/c"));
    let Ok(m) = Matcher::parse(pats, ".dockerignore") else { return };
    let mut cache = MatchCache::new();
    for p in paths.lines() {
        let a = m.is_excluded(p);
        let clean = lamina_builder_fuzz::dockerfile::dockerignore::clean_path(p);
        if !clean.starts_with('/') && !clean.starts_with("..") && clean != "." {
            assert_eq!(cache.is_excluded(&m, &clean), a, "cache disagrees for {p:?}");
        }
        let _ = m.can_skip_dir(p);
    }
});
