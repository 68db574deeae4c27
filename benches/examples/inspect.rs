//! Inspects one kind of request over and over with one ruleset: a harness for profilers and
//! instruction counters, where criterion's own work would blur the picture.
//!
//! ```text
//! cargo run --release -p waf-benches --example inspect -- crs 1 authorize 2000
//! valgrind --tool=callgrind --toggle-collect='waf_core::engine::run*' \
//!     target/release/examples/inspect crs 1 login 200
//! ```
//!
//! Arguments: the ruleset (`ours`, `crs` or `crs-signin`), the paranoia level, the request
//! (`authorize`, `login`, `json`, `saml`, or `field`: one clean 16 KiB form field) and how many
//! inspections (each of another of up to 1,024 variants; `INSPECT_VARIANTS=1` inspects one
//! request over and over, every value of which the engine's memos know after the first;
//! `INSPECT_PROFILE=20` adds the 20 costliest rules, as `waf profile` lists them). It
//! prints the mean time per inspection; under callgrind, the instruction count of
//! `engine::run` divided by the inspections is the figure that does not move with the load
//! of a shared machine.
//!
//! `INSPECT_PEER=1` inspects the same requests with ModSecurity 3 and the CRS instead (the
//! benchmarks' peer, `waf_benches::modsecurity`; the ruleset argument must be `crs`), for
//! the peer's own instruction count:
//!
//! ```text
//! INSPECT_PEER=1 valgrind --tool=callgrind \
//!     --toggle-collect='waf_benches::modsecurity::ModSecurity::inspect*' \
//!     target/release/examples/inspect crs 1 authorize 64
//! ```
//!
//! `INSPECT_THRASH=2` writes to 2 MiB of other memory before each inspection, and times the
//! inspections alone. In the proxy, sockets, HTTP and the other connections run between two
//! inspections and evict much of the program from the core's caches, which a loop of
//! inspections never does: the engine's in-proxy time (the load test's `inspection` column)
//! is well above this example's plain figure. Under callgrind's cache simulator, with the
//! last level set to this CPU's 1 MiB second-level cache, the misses it counts are the ones
//! the proxy pays:
//!
//! ```text
//! INSPECT_THRASH=2 valgrind --tool=callgrind --cache-sim=yes --LL=1048576,16,64 \
//!     --toggle-collect='waf_core::engine::run*' target/release/examples/inspect ours 1 authorize 512
//! ```

use std::process::ExitCode;
use std::time::Instant;

use waf_benches::{
    authorize_get_seeded, field_16k, json_16k_seeded, login_post_1k_seeded, saml_acs_seeded,
    variants, Ruleset,
};

/// The `waf` binary's allocator, so that the figures are the proxy's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [ruleset, paranoia, request, iterations] = args.as_slice() else {
        eprintln!(
            "usage: inspect <ours|crs|crs-signin> <paranoia 1-4> <authorize|login|json|saml|field> <iterations>"
        );
        return ExitCode::from(2);
    };
    let ruleset: Ruleset = match ruleset.parse() {
        Ok(ruleset) => ruleset,
        Err(e) => {
            eprintln!("inspect: {e}");
            return ExitCode::from(2);
        }
    };
    let make = match request.as_str() {
        "authorize" => authorize_get_seeded,
        "login" => login_post_1k_seeded,
        "json" => json_16k_seeded,
        "saml" => saml_acs_seeded,
        "field" => |seed| field_16k(seed, false),
        other => {
            eprintln!("inspect: unknown request {other:?} (authorize, login, json, saml or field)");
            return ExitCode::from(2);
        }
    };
    let (Ok(paranoia), Ok(iterations)) = (paranoia.parse::<u8>(), iterations.parse::<usize>())
    else {
        eprintln!("inspect: the paranoia level and the iterations are numbers");
        return ExitCode::from(2);
    };
    let set = match ruleset.load(paranoia) {
        Ok(set) => set,
        Err(e) => {
            eprintln!("inspect: {e}");
            return ExitCode::FAILURE;
        }
    };
    let program = match waf_core::compile(&set) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("inspect: {e}");
            return ExitCode::FAILURE;
        }
    };
    // As many variants as the engine bench cycles (see `VARIANTS` there): fewer, cycled, would
    // find their fresh tokens in the engine's per-thread memos.
    let wanted = std::env::var("INSPECT_VARIANTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024usize);
    let requests = variants(make, wanted.min(iterations).max(1));
    // `INSPECT_PROFILE=N`: time every rule too, and list the N costliest (0: all).
    let profile_top: Option<usize> = std::env::var("INSPECT_PROFILE")
        .ok()
        .and_then(|v| v.parse().ok());
    if std::env::var_os("INSPECT_PEER").is_some() {
        return inspect_with_modsecurity(ruleset, paranoia, &requests, iterations);
    }
    let thrash_mib: usize = std::env::var("INSPECT_THRASH")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut other = vec![0u8; thrash_mib << 20];
    let mut profile = waf_core::profile::Profile::new();
    let mut blocked = 0usize;
    let mut elapsed = std::time::Duration::ZERO;
    for i in 0..iterations {
        // One write per cache line.
        for line in other.chunks_mut(64) {
            if let Some(b) = line.first_mut() {
                *b = b.wrapping_add(1);
            }
        }
        let request = &requests[i % requests.len()];
        let start = Instant::now();
        let verdict = match profile_top {
            Some(_) => program.inspect_profiled(request, &mut profile),
            None => program.inspect(request),
        };
        elapsed += start.elapsed();
        blocked += usize::from(verdict.is_blocking());
    }
    println!(
        "{} inspections, {:.1} µs each, {blocked} blocked",
        iterations,
        elapsed.as_secs_f64() * 1e6 / iterations.max(1) as f64
    );
    if let Some(top) = profile_top {
        println!("\n{}", profile.table(top));
    }
    ExitCode::SUCCESS
}

/// The loop of `main`, with ModSecurity 3 and the CRS as the inspector.
fn inspect_with_modsecurity(
    ruleset: Ruleset,
    paranoia: u8,
    requests: &[waf_core::Request],
    iterations: usize,
) -> ExitCode {
    if !matches!(ruleset, Ruleset::Crs) {
        eprintln!("inspect: INSPECT_PEER runs the CRS only");
        return ExitCode::from(2);
    }
    let peer = match waf_benches::modsecurity::ModSecurity::with_crs(paranoia) {
        Ok(peer) => peer,
        Err(e) => {
            eprintln!("inspect: ModSecurity: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (mut blocked, mut failed) = (0usize, 0usize);
    let start = Instant::now();
    for i in 0..iterations {
        match peer.inspect(&requests[i % requests.len()]) {
            Ok(Some(_)) => blocked += 1,
            Ok(None) => {}
            Err(_) => failed += 1,
        }
    }
    let elapsed = start.elapsed();
    println!(
        "{} inspections, {:.1} µs each, {blocked} blocked, {failed} failed (ModSecurity)",
        iterations,
        elapsed.as_secs_f64() * 1e6 / iterations.max(1) as f64
    );
    ExitCode::SUCCESS
}
