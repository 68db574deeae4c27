//! Inspects many clean sign-in requests, each with fresh tokens, and prints every rule that
//! matched one: on these requests, every match is a false positive.
//!
//! ```text
//! cargo run --release -p waf-benches --example false_positives -- ours 1 2000000
//! ```
//!
//! Arguments: the ruleset (`ours`, `crs`, or `crs-signin`: the CRS with
//! `crs/signin-exclusions.conf`), the paranoia level, how many requests, and optionally the
//! first seed (0 by default). Seed `n` makes the authorize GET when `n` is odd
//! and the 1 KB login POST when it is even (`waf_benches::authorize_get_seeded` and
//! `login_post_1k_seeded`, the requests of the criterion suites and of the load test), so a
//! line names the seed that reproduces it. It exits 1 when a request was blocked.
//!
//! Why: a random token spells a rule's word now and then. `state`, `code_challenge`, the
//! `x-ms-cpim-*` cookies and the device fingerprint are drawn afresh for every sign-in, and a
//! rule that matches one random token in a million blocks a sign-in every few hundred
//! thousand. The load test sends about 200,000 sign-ins a run and sees such a match once in
//! a few runs, with the value lost; this finds them in process, about fifteen million per hour
//! and core, with the value and the seed (split the seeds over cores with the first-seed
//! argument).

use std::process::ExitCode;

use waf_benches::{authorize_get_seeded, login_post_1k_seeded, Ruleset};

/// The `waf` binary's allocator, as in the other examples.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (ruleset, paranoia, count, first) = match args.as_slice() {
        [r, p, n] => (r, p, n, "0"),
        [r, p, n, s] => (r, p, n, s.as_str()),
        _ => {
            eprintln!("usage: false_positives <ours|crs|crs-signin> <paranoia 1-4> <requests> [first seed]");
            return ExitCode::from(2);
        }
    };
    let ruleset: Ruleset = match ruleset.parse() {
        Ok(ruleset) => ruleset,
        Err(e) => {
            eprintln!("false_positives: {e}");
            return ExitCode::from(2);
        }
    };
    let (Ok(paranoia), Ok(count), Ok(first)) = (
        paranoia.parse::<u8>(),
        count.parse::<u64>(),
        first.parse::<u64>(),
    ) else {
        eprintln!("false_positives: the paranoia level, the requests and the seed are numbers");
        return ExitCode::from(2);
    };
    let program = match ruleset.load(paranoia).map(|set| waf_core::compile(&set)) {
        Ok(Ok(program)) => program,
        Ok(Err(e)) => {
            eprintln!("false_positives: {e}");
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("false_positives: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (mut matched, mut blocked) = (0u64, 0u64);
    for seed in first..first.saturating_add(count) {
        let (kind, request) = if seed % 2 == 1 {
            ("authorize", authorize_get_seeded(seed))
        } else {
            ("login", login_post_1k_seeded(seed))
        };
        let verdict = program.inspect(&request);
        if verdict.matches.is_empty() {
            continue;
        }
        matched += 1;
        blocked += u64::from(verdict.is_blocking());
        for m in &verdict.matches {
            for v in &m.values {
                println!(
                    "seed {seed} ({kind}): rule {} on {} = {:?}, after {:?}: {} found {:?}",
                    m.rule_id, v.target, v.value, v.transforms, v.operator, v.evidence
                );
            }
        }
    }
    eprintln!("{count} requests from seed {first}: {matched} matched a rule, {blocked} blocked");
    if blocked > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
