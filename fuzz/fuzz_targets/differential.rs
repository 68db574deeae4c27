//! Raw bytes as an HTTP/1.1 request, inspected by the compiled program and by the reference
//! evaluator, which must reach identical verdicts (the same decision, the same matched rules,
//! values and scores): rules/ at paranoia 1 and 4, and the feature-exercising ruleset of the
//! differential tests (waf-core/tests/data/differential.yaml).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use waf_core::reference::Reference;
use waf_core::{compile, Program, RuleSet};

#[path = "common.rs"]
mod common;

fn engines() -> &'static [(String, Program, Reference)] {
    static ENGINES: OnceLock<Vec<(String, Program, Reference)>> = OnceLock::new();
    ENGINES.get_or_init(|| {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
        let mut sets = Vec::new();
        let features = format!("{root}/waf-core/tests/data/differential.yaml");
        let set = RuleSet::from_yaml_paths(&[&features]).expect("differential.yaml loads");
        sets.push(("differential.yaml".to_string(), set));
        for paranoia in [1, 4] {
            let mut set =
                RuleSet::from_yaml_paths(&[format!("{root}/rules")]).expect("rules/ loads");
            set.settings.paranoia = paranoia;
            sets.push((format!("rules/ at paranoia {paranoia}"), set));
        }
        sets.into_iter()
            .map(|(name, set)| {
                let program = compile(&set).unwrap_or_else(|e| panic!("{name}: {e}"));
                let reference = Reference::new(&set).unwrap_or_else(|e| panic!("{name}: {e}"));
                (name, program, reference)
            })
            .collect()
    })
}

fuzz_target!(|data: &[u8]| {
    let request = common::request_from(data);
    for (name, program, reference) in engines() {
        let fast = program.inspect(&request);
        let slow = reference.inspect(&request);
        assert_eq!(
            fast, slow,
            "{name}: compiled and reference verdicts differ for {request:?}"
        );
    }
});
