//! Raw bytes as an HTTP/1.1 request (bytes the parser refuses become the target of a `GET`),
//! inspected by the compiled program of our ruleset, rules/, at paranoia 1 and 4. Checks: no
//! panic, and the verdict is consistent — a blocking verdict names the rule that decided it
//! and carries a status.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use waf_core::{compile, Program, RuleSet};

#[path = "common.rs"]
mod common;

fn programs() -> &'static [Program] {
    static PROGRAMS: OnceLock<Vec<Program>> = OnceLock::new();
    PROGRAMS.get_or_init(|| {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../rules");
        [1, 4]
            .into_iter()
            .map(|paranoia| {
                let mut set = RuleSet::from_yaml_paths(&[dir]).expect("rules/ loads");
                set.settings.paranoia = paranoia;
                compile(&set).expect("rules/ compiles")
            })
            .collect()
    })
}

fuzz_target!(|data: &[u8]| {
    let request = common::request_from(data);
    for program in programs() {
        let verdict = program.inspect(&request);
        common::check_verdict(&verdict);
    }
});
