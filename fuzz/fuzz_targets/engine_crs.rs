//! Raw bytes as an HTTP/1.1 request (bytes the parser refuses become the target of a `GET`),
//! inspected by the compiled program of the OWASP CRS 3.3.4 (Debian's `modsecurity-crs`:
//! /etc/modsecurity/crs/crs-setup.conf and /usr/share/modsecurity-crs/rules), loaded once
//! through the SecLang front end, at paranoia 1 and 4. Checks: no panic, and a blocking
//! verdict names the rule that decided it and carries a status. Without the CRS installed the
//! target stops at start-up with a message rather than fuzz nothing.
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use waf_core::rules::seclang::Loader;
use waf_core::{compile, Program};

#[path = "common.rs"]
mod common;

const CRS_SETUP: &str = "/etc/modsecurity/crs/crs-setup.conf";
const CRS_RULES: &str = "/usr/share/modsecurity-crs/rules";

fn programs() -> &'static [Program] {
    static PROGRAMS: OnceLock<Vec<Program>> = OnceLock::new();
    PROGRAMS.get_or_init(|| {
        for path in [CRS_SETUP, CRS_RULES] {
            assert!(
                Path::new(path).exists(),
                "engine_crs: {path} is missing; install the OWASP CRS 3.3.4 \
                 (apt-get install modsecurity-crs, or scripts/setup.sh)"
            );
        }
        let mut loader = Loader::new();
        loader
            .load_str(
                &format!("Include {CRS_SETUP}\nInclude {CRS_RULES}/*.conf\n"),
                "crs.conf",
                None,
            )
            .unwrap_or_else(|e| panic!("engine_crs: the CRS does not load: {e}"));
        let (set, _notes) = loader
            .finish()
            .unwrap_or_else(|e| panic!("engine_crs: the CRS does not load: {e}"));
        [1, 4]
            .into_iter()
            .map(|paranoia| {
                let mut set = set.clone();
                set.settings.paranoia = paranoia;
                compile(&set)
                    .unwrap_or_else(|e| panic!("engine_crs: the CRS does not compile: {e}"))
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
