//! Random tokens in fields the ruleset knows nothing about must not match any rule at paranoia
//! level 1.
//!
//! `rules/signin.yaml` spares the tokens External ID and B2C send (`state`, `code`, the
//! `x-ms-cpim-*` cookies...) from the word-list rules. The application behind the sign-in
//! domain has tokens of its own: session cookies, analytics ids, its own `state`-like
//! parameters. The ruleset cannot name them, so every rule must stay quiet on random base64,
//! base64url, hex and UUIDs wherever they are. A pattern of four letters (`msdb`) matches one
//! random base64url token of 64 characters in about 20,000; a sign-in page that sets a few such
//! cookies would block one user in a few thousand.
//!
//! Each request carries 32 tokens: 16 cookies and 16 query parameters, as the browser sends
//! them (standard base64 raw in a cookie, `%2B`/`%2F`-encoded in the query, where the rules'
//! `url_decode_uni` still reads a `+` as a space).
//!
//! Reproduce: `cargo test --release -p waf-traffic --test tokens_are_quiet -- --nocapture`.
//! For a wider search while writing rules, `WAF_TOKENS_SEED` and `WAF_TOKENS_REQUESTS` replace
//! the seed and the number of requests (CI uses the defaults: about 640,000 tokens).

use std::collections::BTreeMap;
use std::path::Path;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use waf_core::{compile, Request, RuleSet};
use waf_traffic::tokens;

const SEED: u64 = 0x7043_454e;
const REQUESTS: usize = 20_000;

fn knob(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// One random token of a common shape, 16 to 96 characters long.
fn token(rng: &mut ChaCha8Rng) -> String {
    match rng.gen_range(0..5) {
        0 | 1 => tokens::base64url_between(rng, 16, 96),
        2 => {
            let mut bytes = vec![0u8; rng.gen_range(12..=72)];
            rng.fill(&mut bytes[..]);
            STANDARD.encode(bytes)
        }
        3 => {
            let mut bytes = vec![0u8; rng.gen_range(8..=48)];
            rng.fill(&mut bytes[..]);
            bytes.iter().map(|b| format!("{b:02x}")).collect()
        }
        _ => tokens::uuid(rng),
    }
}

fn request(rng: &mut ChaCha8Rng) -> Request {
    let mut uri = String::from("/contoso.onmicrosoft.com/B2C_1_signin/oauth2/v2.0/authorize?");
    let mut cookies = Vec::new();
    for i in 0..16 {
        let value = token(rng).replace('+', "%2B").replace('/', "%2F");
        uri.push_str(&format!("app_p{i}={value}&"));
        cookies.push(format!("app_c{i}={}", token(rng)));
    }
    uri.pop();
    Request::builder()
        .uri(uri)
        .header("Host", "login.contoso.com")
        .header("User-Agent", "Mozilla/5.0 (Windows NT 10.0; Win64; x64)")
        .header("Accept", "text/html")
        .header("Cookie", cookies.join("; "))
        .build()
}

#[test]
fn paranoia_level_1_matches_no_random_token() {
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules");
    let set = RuleSet::from_yaml_paths(&[rules]).expect("rules/ loads");
    let program = compile(&set).expect("rules/ compiles");
    let seed = knob("WAF_TOKENS_SEED", SEED);
    let requests = knob("WAF_TOKENS_REQUESTS", REQUESTS as u64);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut by_rule: BTreeMap<String, usize> = BTreeMap::new();
    let mut examples = Vec::new();
    for _ in 0..requests {
        let verdict = program.inspect(&request(&mut rng));
        for m in &verdict.matches {
            *by_rule.entry(m.rule_id.to_string()).or_default() += 1;
            if examples.len() < 10 {
                let v = m.values.first();
                examples.push(format!(
                    "{} on {} = {:?}",
                    m.rule_id,
                    v.map(|v| v.target.as_str()).unwrap_or(""),
                    v.map(|v| v.value.as_str()).unwrap_or("")
                ));
            }
        }
    }
    println!(
        "\n{} random tokens (seed {seed:#x}): matches per rule {by_rule:?}",
        requests * 32
    );
    assert!(
        by_rule.is_empty(),
        "rules matched random tokens {by_rule:?}:\n{}",
        examples.join("\n")
    );
}
