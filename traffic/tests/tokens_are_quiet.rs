//! Random tokens in fields the ruleset knows nothing about must not match any rule at paranoia
//! level 1.
//!
//! `rules/signin.yaml` spares the tokens External ID and B2C send (`state`, `code`, the
//! `x-ms-cpim-*` cookies...) from the word-list rules. The application behind the sign-in
//! domain has tokens of its own: session cookies, analytics ids, its own `state`-like
//! parameters. The ruleset cannot name them, so every rule must stay quiet on random base64,
//! base64url, hex, UUIDs and JWTs wherever they are. A pattern of four letters (`msdb`)
//! matches one random base64url token of 64 characters in about 20,000; a sign-in page that
//! sets a few such cookies would block one user in a few thousand.
//!
//! The requests are [`TokenNoise`]'s: 32 tokens each, in query parameters, form fields,
//! cookies and headers. `waf rules tokens rules/` prints the same report.
//!
//! Reproduce: `cargo test --release -p waf-traffic --test tokens_are_quiet -- --nocapture`.
//! For a wider search while writing rules, `WAF_TOKENS_SEED` and `WAF_TOKENS_REQUESTS` replace
//! the seed and the number of requests (CI uses the defaults: 640,000 tokens).

use std::path::Path;

use waf_core::RuleSet;
use waf_traffic::noise::{TokenNoise, DEFAULT_REQUESTS, DEFAULT_SEED};

fn knob(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

#[test]
fn paranoia_level_1_matches_no_random_token() {
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules");
    let set = RuleSet::from_yaml_paths(&[rules]).expect("rules/ loads");
    let seed = knob("WAF_TOKENS_SEED", DEFAULT_SEED);
    let requests = knob("WAF_TOKENS_REQUESTS", DEFAULT_REQUESTS as u64) as usize;
    let report = TokenNoise::new(seed)
        .requests(requests)
        .run(&set)
        .expect("rules/ compiles");
    println!(
        "\n{} random tokens (seed {seed:#x}): {} rule(s) matched",
        report.tokens,
        report.rules.len()
    );
    let found: Vec<String> = report
        .rules
        .iter()
        .map(|r| {
            let examples: Vec<String> = r
                .examples
                .iter()
                .map(|e| format!("  {} = {:?}: found {:?}", e.target, e.value, e.evidence))
                .collect();
            format!(
                "rule {} ({}): {} of {} tokens\n{}",
                r.rule_id,
                r.message,
                r.matches,
                report.tokens,
                examples.join("\n")
            )
        })
        .collect();
    assert!(found.is_empty(), "{}", found.join("\n"));
}
