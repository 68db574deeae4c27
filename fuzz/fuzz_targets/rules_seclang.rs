//! Arbitrary text as a SecLang (ModSecurity) rule file, through the loader that reads the OWASP
//! CRS (`waf_core::rules::Loader`, which hands `.conf` files to `rules::seclang`): loading and
//! finishing return a ruleset or a clean error, never a panic; a ruleset that loads compiles
//! for the program and the reference evaluator alike (both succeed or both fail), and a
//! compiled program inspects a request without panicking.
//!
//! `Include` and `@pmFromFile` paths are looked up in `fuzz/data/`, which holds a small phrase
//! file and an include so that those directives can succeed.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use waf_core::rules::Loader;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if common::names_special_files(text) {
        return;
    }
    let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/data/fuzz.conf"));
    let mut loader = Loader::new();
    if loader.add_text(path, text).is_err() {
        return;
    }
    let Ok((set, _notes)) = loader.finish() else {
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
