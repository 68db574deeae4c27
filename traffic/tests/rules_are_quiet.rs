//! The false-positive test of our ruleset: 5,000 generated benign sign-in requests through
//! `rules/` at paranoia levels 1 and 2. Level 1 must block none of them; level 2 is reported.
//!
//! Reproduce: `cargo test --release -p waf-traffic --test rules_are_quiet -- --nocapture`.
//! For a wider search while writing rules, `WAF_QUIET_SEED` and `WAF_QUIET_REQUESTS` replace the
//! seed and the number of requests of the level-1 and level-2 runs (CI uses the defaults).

use std::collections::BTreeMap;
use std::path::Path;

use waf_core::{compile, RuleSet};
use waf_traffic::{Flow, SignInTraffic};

const SEED: u64 = 0x5161_4e49;
const REQUESTS: usize = 5_000;

/// Blocked requests per flow, and the first few blocked requests in full.
fn seed() -> u64 {
    std::env::var("WAF_QUIET_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(SEED)
}

fn requests() -> usize {
    std::env::var("WAF_QUIET_REQUESTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(REQUESTS)
}

fn run(paranoia: u8) -> (BTreeMap<Flow, (usize, usize)>, Vec<String>) {
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules");
    let mut set = RuleSet::from_yaml_paths(&[rules]).expect("rules/ loads");
    set.settings.paranoia = paranoia;
    let program = compile(&set).expect("rules/ compiles");
    let mut by_flow: BTreeMap<Flow, (usize, usize)> = BTreeMap::new();
    let mut examples = Vec::new();
    for (i, sample) in SignInTraffic::new(seed()).take(requests()).enumerate() {
        let verdict = program.inspect(&sample.request);
        let entry = by_flow.entry(sample.flow).or_default();
        entry.0 += 1;
        if verdict.block_status().is_some() {
            entry.1 += 1;
            if examples.len() < 5 {
                let rules: Vec<String> = verdict
                    .matches
                    .iter()
                    .map(|m| {
                        let v = m.values.first();
                        format!(
                            "{} on {} = {:?}",
                            m.rule_id,
                            v.map(|v| v.target.as_str()).unwrap_or(""),
                            v.map(|v| v.value.as_str()).unwrap_or("")
                        )
                    })
                    .collect();
                examples.push(format!(
                    "request {i} ({:?}): {}\n  {}",
                    sample.flow,
                    String::from_utf8_lossy(sample.request.uri()),
                    rules.join("\n  ")
                ));
            }
        }
    }
    (by_flow, examples)
}

fn report(paranoia: u8, by_flow: &BTreeMap<Flow, (usize, usize)>) -> usize {
    println!(
        "\nparanoia level {paranoia}: blocked / requests per flow (seed {:#x})",
        seed()
    );
    let mut blocked = 0;
    for (flow, (n, b)) in by_flow {
        println!("  {:<28} {b:>4} / {n}", format!("{flow:?}"));
        blocked += b;
    }
    println!("  {:<28} {blocked:>4} / {}", "all", requests());
    blocked
}

#[test]
fn paranoia_level_1_blocks_no_sign_in() {
    let (by_flow, examples) = run(1);
    let blocked = report(1, &by_flow);
    assert_eq!(blocked, 0, "false positives:\n{}", examples.join("\n"));
    assert_eq!(by_flow.len(), Flow::ALL.len(), "every flow was generated");
}

#[test]
fn paranoia_level_2_is_reported() {
    let (by_flow, examples) = run(2);
    let blocked = report(2, &by_flow);
    for e in &examples {
        println!("{e}");
    }
    // Level 2 may cost some sign-ins; the figure is in the output. It must stay rare.
    assert!(
        blocked * 100 <= requests(),
        "{blocked} of {} blocked at level 2",
        requests()
    );
}

/// The stream really holds what makes sign-in traffic hard for a WAF.
#[test]
fn the_traffic_holds_the_hard_cases() {
    let all: Vec<Vec<u8>> = SignInTraffic::new(SEED)
        .take(REQUESTS)
        .map(|s| {
            let r = &s.request;
            let mut bytes = r.uri().to_vec();
            for (n, v) in r.headers().iter() {
                bytes.extend_from_slice(n);
                bytes.extend_from_slice(v);
            }
            bytes.extend_from_slice(r.body());
            bytes
        })
        .collect();
    let contains = |needle: &str| {
        all.iter()
            .filter(|b| b.windows(needle.len()).any(|w| w == needle.as_bytes()))
            .count()
    };
    for needle in [
        "O%27Brien",                     // an apostrophe in a name (form-encoded)
        "%C3%93+S%C3%BAilleabh%C3%A1in", // Ó Súilleabháin
        "Johnson+%26+Sons",              // an ampersand in a company name
        "%27+OR+1%3D1+--",               // a password that reads like SQL injection
        "%3Cscript%3E",                  // and one that reads like XSS
        "SAMLResponse=",
        "id_token=eyJ",
        "diags=%7B",      // B2C's diags JSON
        "attributes=%7B", // native sign-up's JSON in a form field
        "x-client-current-telemetry5|863,0,,,|,",
        "x-ms-cpim-sso:contoso.onmicrosoft.com_0=m1.",
        "sort%3Ddate%28desc%29", // parentheses in the app's part of MSAL's state
        "Sign-out_%28FAQ%29%23after", // and in a post-logout redirect, before a fragment
        "client_assertion=eyJ",  // a confidential client's signed assertion
        "extension_Bio=Hi%21+I%27m+Zo%C3%AB.%0ARole%3A", // a second line that reads like a header
        "extension_Website=https%3A%2F%2F", // a URL in a profile field
    ] {
        assert!(contains(needle) > 0, "no request contains {needle}");
    }
}

/// Levels 3 and 4 are meant for detection-only mode or tuned sites; their cost in sign-ins is
/// printed, not held to a bound. Run with `-- --ignored --nocapture`.
#[test]
#[ignore]
fn levels_3_and_4_are_reported() {
    for paranoia in [3, 4] {
        let (by_flow, examples) = run(paranoia);
        report(paranoia, &by_flow);
        for e in &examples {
            println!("{e}");
        }
    }
}
