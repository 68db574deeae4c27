//! Our ruleset on the seeded sign-in requests of the benchmarks and the load test
//! (`authorize_get_seeded`, `login_post_1k_seeded`): every match on them is a false positive.
//!
//! `examples/false_positives.rs` searches millions of seeds for them; each seed it found is a
//! regression test here, named after what the random token spelled. A regression test first
//! checks that its seed still makes a request carrying that text, so a change of the
//! generators cannot turn it into a test of nothing; then that no rule matches the request.
//!
//! Reproduce: `cargo test --release -p waf-benches --test false_positives`.

use std::sync::OnceLock;

use waf_benches::{authorize_get_seeded, login_post_1k_seeded, Ruleset};
use waf_core::{Program, Request};

/// Seeds `0..SWEEP` at paranoia levels 1 and 2: about seven seconds in a release build.
const SWEEP: u64 = 20_000;

fn program(paranoia: u8) -> &'static Program {
    static LEVELS: OnceLock<[Program; 2]> = OnceLock::new();
    let levels = LEVELS.get_or_init(|| {
        [1, 2].map(|level| {
            let set = Ruleset::Ours
                .load(level)
                .unwrap_or_else(|e| panic!("rules/ at level {level}: {e}"));
            waf_core::compile(&set).unwrap_or_else(|e| panic!("rules/ at level {level}: {e}"))
        })
    });
    &levels[usize::from(paranoia.clamp(1, 2)) - 1]
}

/// The request of a seed: the authorize GET when it is odd, the 1 KB login POST when even, as
/// `examples/false_positives.rs` makes them.
fn request(seed: u64) -> Request {
    if seed % 2 == 1 {
        authorize_get_seeded(seed)
    } else {
        login_post_1k_seeded(seed)
    }
}

/// Every match of every level on `seed`'s request, one line each.
fn matches(seed: u64) -> Vec<String> {
    let request = request(seed);
    let mut found = Vec::new();
    for level in [1, 2] {
        for m in program(level).inspect(&request).matches {
            for v in &m.values {
                found.push(format!(
                    "seed {seed}, paranoia {level}: rule {} on {} = {:?}: found {:?}",
                    m.rule_id, v.target, v.value, v.evidence
                ));
            }
        }
    }
    found
}

/// Whether the request carries `text` in its URI, a header or its body, in any case.
fn carries(request: &Request, text: &str) -> bool {
    let text = text.to_ascii_lowercase();
    let has = |bytes: &[u8]| {
        bytes
            .to_ascii_lowercase()
            .windows(text.len())
            .any(|w| w == text.as_bytes())
    };
    has(request.uri())
        || request
            .headers()
            .iter()
            .any(|(name, value)| has(name) || has(value))
        || has(request.body())
}

/// A seed the search found: its request must still carry `text`, and match no rule.
fn assert_quiet(seed: u64, text: &str) {
    assert!(
        carries(&request(seed), text),
        "seed {seed} no longer makes a request with {text:?}: the generators changed, and \
         this test must find a new seed for it (examples/false_positives.rs on the old rule)"
    );
    let found = matches(seed);
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn seeds_of_one_sweep_match_no_rule() {
    let found: Vec<String> = (0..SWEEP).flat_map(matches).collect();
    assert!(
        found.is_empty(),
        "{} matches on clean requests:\n{}",
        found.len(),
        found.join("\n")
    );
}

// 130110, secret file names: `id_rsa` and `id_dsa` are base64url, and matched on their own.

#[test]
fn seed_63840_id_rsa_in_the_cpim_trans_cookie() {
    assert_quiet(63840, "id_rsa");
}

#[test]
fn seed_1542183_id_dsa_in_state() {
    assert_quiet(1542183, "id_dsa");
}

// 132150, Windows commands: B2C names a cookie `x-ms-cpim-cache|<random id>_0`, and the
// random id began with `wmic`.

#[test]
fn seed_518756_wmic_in_a_cpim_cookie_name() {
    assert_quiet(518756, "|wmic");
}

// 133150, PHP function names, and 144120, Java gadget names: plain word lists, on tokens.

#[test]
fn seed_1156710_putenv_in_the_cpim_trans_cookie() {
    assert_quiet(1156710, "putenv");
}

#[test]
fn seed_1485001_lazymap_in_code_challenge() {
    assert_quiet(1485001, "lazymap");
}

// 144210, serialized Java in base64: the stream header, then only a type code's first bits.

#[test]
fn seed_9580084_java_stream_header_in_the_device_fingerprint() {
    assert_quiet(9580084, "s7QAFe");
}

#[test]
fn seed_11291756_java_stream_header_in_the_csrf_token() {
    assert_quiet(11291756, "s7QAFe");
}

// 144210 again: the header's third alignment at the end of the data, then B2C's `==`, which
// cannot follow it in real base64.

#[test]
fn seed_40792786_java_stream_header_before_the_csrf_tokens_padding() {
    assert_quiet(40792786, "s7QAF==");
}
