#![no_main]
//! Word expansion in both modes with both escape characters.

use lamina_builder_fuzz::dockerfile::Expander;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let mut env = |n: &str| match n {
        "a" => Some("hello world".to_string()),
        "e" => Some(String::new()),
        "p" => Some("/usr/lo*cal/bin".to_string()),
        _ => None,
    };
    for esc in ['\\', '`'] {
        let e = Expander::new(esc);
        let _ = e.word(s, &mut env);
        let _ = e.words(s, &mut env);
        let raw = Expander { raw_quotes: true, raw_escapes: true, skip_unset: true, ..e };
        let _ = raw.word(s, &mut env);
    }
});
