//! Arbitrary text as a YAML rule file: an error or a ruleset, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(set) = waf_core::RuleSet::from_yaml_str(text, "fuzz.yaml") {
            let _ = waf_core::compile(&set);
        }
    }
});
