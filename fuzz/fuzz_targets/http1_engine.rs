//! Arbitrary bytes as a raw HTTP/1.1 request: parsed, then inspected by the compiled program and
//! by the reference evaluator, which must agree.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use waf_core::reference::Reference;
use waf_core::{compile, Program, RuleSet};

fn engines() -> &'static (Program, Reference) {
    static ENGINES: OnceLock<(Program, Reference)> = OnceLock::new();
    ENGINES.get_or_init(|| {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../rules");
        let mut set = RuleSet::from_yaml_paths(&[dir]).expect("rules/ loads");
        set.settings.paranoia = 4;
        (compile(&set).expect("rules/ compiles"), Reference::new(&set).expect("rules/ compiles"))
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = waf_core::parse::http1::parse_request(data) {
        let (program, reference) = engines();
        assert_eq!(program.inspect(&request), reference.inspect(&request));
    }
});
