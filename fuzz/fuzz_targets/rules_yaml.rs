//! Arbitrary text as a YAML rule file: loading returns a ruleset or a clean error, never a
//! panic; a ruleset that loads compiles for the program and the reference evaluator alike (both
//! succeed or both fail), and both reach the same verdict on a sample request.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if common::names_special_files(text) {
        return;
    }
    let Ok(set) = waf_core::RuleSet::from_yaml_str(text, "fuzz.yaml") else {
        return;
    };
    let compiled = waf_core::compile(&set);
    let reference = waf_core::reference::Reference::new(&set);
    assert_eq!(
        compiled.is_ok(),
        reference.is_ok(),
        "compile: {:?}, reference: {:?}",
        compiled.as_ref().err(),
        reference.as_ref().err()
    );
    if let (Ok(program), Ok(reference)) = (compiled, reference) {
        let request = common::sample_request();
        assert_eq!(program.inspect(request), reference.inspect(request));
    }
});
