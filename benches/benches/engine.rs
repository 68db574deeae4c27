//! The engine's benchmarks: compiled program against the reference evaluator, per-request
//! inspection with our ruleset and the OWASP CRS, matcher throughput, growth with the rule count,
//! compile time. See `benches/README.md` for what each group measures.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, BenchmarkId, Criterion, Throughput};
use waf_benches::modsecurity::ModSecurity;
use waf_benches::{
    authorize_get_seeded, field_16k, json_16k_seeded, login_post_1k_seeded, saml_acs_seeded,
    synthetic_ruleset, variants, wire_size, Ruleset, DEFAULT_SEED,
};
use waf_core::reference::Reference;
use waf_core::rules::Mode;
use waf_core::{compile, Request, RuleSet};

/// The `waf` binary's allocator, so that the figures are the proxy's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Regex rules of the ruleset the inputs are measured against (plus phrase lists and
/// libinjection rules).
const RULES: usize = 500;

/// Each benchmark cycles through this many variants of its request (other tokens, ids and
/// cookies, as from one sign-in to the next; the headers and most parameters stay the same,
/// as they do from one browser). The compiled engine remembers, per thread, what recurring
/// values opened and libinjection's verdicts on them. A few variants, cycled, would let it
/// remember the fresh tokens too and measure only those memos: this many hold more fresh
/// values than both memos together, so each token is fresh again when it comes round.
const VARIANTS: usize = 1024;

/// Calls `inspect` on the next variant each time.
struct Cycle<'a> {
    requests: &'a [Request],
    next: usize,
}

impl<'a> Cycle<'a> {
    fn new(requests: &'a [Request]) -> Cycle<'a> {
        Cycle { requests, next: 0 }
    }

    fn next(&mut self) -> &'a Request {
        let r = &self.requests[self.next % self.requests.len()];
        self.next += 1;
        r
    }
}

fn ruleset(n_regex: usize) -> RuleSet {
    RuleSet::from_yaml_str(&synthetic_ruleset(n_regex, DEFAULT_SEED), "synthetic.yaml")
        .expect("the synthetic ruleset parses")
}

/// Short runs: the suite has to finish in minutes on two shared cores.
fn configure() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20)
}

/// `{input}/compiled` and `{input}/reference` on the same ruleset and requests.
fn compiled_vs_reference(c: &mut Criterion, name: &str, requests: &[Request]) {
    let set = ruleset(RULES);
    let program = compile(&set).expect("the synthetic ruleset compiles");
    let reference = Reference::new(&set).expect("the synthetic ruleset compiles");
    // A benchmark of a blocked request would measure the early exit, not inspection.
    for r in requests {
        assert!(
            program.inspect(r).matches.is_empty(),
            "{name} must be clean"
        );
    }
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Bytes(wire_size(&requests[0]) as u64));
    let mut cycle = Cycle::new(requests);
    group.bench_function("compiled", |b| {
        b.iter(|| program.inspect(black_box(cycle.next())))
    });
    group.bench_function("reference", |b| {
        b.iter(|| reference.inspect(black_box(cycle.next())))
    });
    group.finish();
}

fn login_post(c: &mut Criterion) {
    compiled_vs_reference(
        c,
        "login_post_1k",
        &variants(login_post_1k_seeded, VARIANTS),
    );
}

fn json_body(c: &mut Criterion) {
    compiled_vs_reference(c, "json_16k", &variants(json_16k_seeded, VARIANTS));
}

/// The compiled program on the login POST with 100, 1,000 and 5,000 regex rules: the literal
/// gates should keep the per-request cost nearly flat.
fn rule_count(c: &mut Criterion) {
    let requests = variants(login_post_1k_seeded, VARIANTS);
    let mut group = c.benchmark_group("rule_count");
    group.throughput(Throughput::Bytes(wire_size(&requests[0]) as u64));
    for n in [100, 1000, 5000] {
        let program = compile(&ruleset(n)).expect("the synthetic ruleset compiles");
        for r in &requests {
            assert!(program.inspect(r).matches.is_empty());
        }
        let mut cycle = Cycle::new(&requests);
        group.bench_with_input(BenchmarkId::from_parameter(n), &program, |b, program| {
            b.iter(|| program.inspect(black_box(cycle.next())))
        });
    }
    group.finish();
}

/// Compiling the 500-rule synthetic set, our ruleset (all levels) and the CRS at paranoia
/// level 1 (parsing excluded: `compile` from a loaded `RuleSet`).
fn compile_time(c: &mut Criterion) {
    let mut group = c.benchmark_group("compile");
    group.sample_size(10);
    for (name, set) in [
        (format!("synthetic_{RULES}"), ruleset(RULES)),
        ("ours_pl4".to_string(), load(Ruleset::Ours, 4)),
        ("crs_pl1".to_string(), load(Ruleset::Crs, 1)),
    ] {
        group.bench_with_input(BenchmarkId::from_parameter(name), &set, |b, set| {
            b.iter(|| compile(black_box(set)).expect("compiles"))
        });
    }
    group.finish();
}

fn load(ruleset: Ruleset, paranoia: u8) -> RuleSet {
    ruleset
        .load(paranoia)
        .unwrap_or_else(|e| panic!("{e}: install Debian's modsecurity-crs (scripts/setup.sh does)"))
}

/// The four requests of a sign-in domain, each with its variants.
fn sign_in_requests() -> [(&'static str, Vec<Request>); 4] {
    [
        ("authorize_get", variants(authorize_get_seeded, VARIANTS)),
        ("login_post_1k", variants(login_post_1k_seeded, VARIANTS)),
        ("json_16k", variants(json_16k_seeded, VARIANTS)),
        ("saml_acs", variants(saml_acs_seeded, VARIANTS)),
    ]
}

/// One inspection of each sign-in request with our ruleset at paranoia levels 1 and 4 and with
/// the CRS at level 1: `inspect/<ruleset>/<request>`. Every request passes; a blocked one
/// would measure the early exit. The CRS takes a few clean requests for attacks (its 942100
/// on random tokens); the variants it blocks are left out rather than measured.
fn inspect(c: &mut Criterion) {
    for (name, ruleset, paranoia) in [
        ("ours_pl1", Ruleset::Ours, 1),
        ("ours_pl4", Ruleset::Ours, 4),
        ("crs_pl1", Ruleset::Crs, 1),
    ] {
        let program = compile(&load(ruleset, paranoia)).expect("compiles");
        let mut group = c.benchmark_group(format!("inspect/{name}"));
        for (request, mut requests) in sign_in_requests() {
            requests.retain(|r| !program.inspect(r).is_blocking());
            assert!(
                requests.len() >= VARIANTS / 2,
                "{name} blocks most {request} variants"
            );
            group.throughput(Throughput::Bytes(wire_size(&requests[0]) as u64));
            let mut cycle = Cycle::new(&requests);
            group.bench_function(request, |b| {
                b.iter(|| program.inspect(black_box(cycle.next())))
            });
        }
        group.finish();
    }
    // The peer on the same requests: `inspect/modsecurity_crs_pl1/<request>`.
    let peer = match ModSecurity::with_crs(1) {
        Ok(peer) => peer,
        Err(e) => {
            println!("inspect/modsecurity_crs_pl1: not measured: {e}");
            return;
        }
    };
    let mut group = c.benchmark_group("inspect/modsecurity_crs_pl1");
    for (request, requests) in peer_requests() {
        let requests = peer_variants(&peer, request, &requests);
        group.throughput(Throughput::Bytes(wire_size(&requests[0]) as u64));
        let mut cycle = Cycle::new(&requests);
        group.bench_function(request, |b| {
            b.iter(|| peer.inspect(black_box(cycle.next())))
        });
    }
    group.finish();
}

/// The sign-in requests ModSecurity is measured on: all but `json_16k`, which it blocks (and
/// takes about 0.2 s over).
fn peer_requests() -> impl Iterator<Item = (&'static str, Vec<Request>)> {
    sign_in_requests()
        .into_iter()
        .filter(|(request, _)| *request != "json_16k")
}

/// The first [`PEER_VARIANTS`] variants that ModSecurity passes. It remembers nothing from one
/// request to the next, so fewer variants measure it as well, and checking all 1,024 would
/// take it longer than the benchmark.
fn peer_variants(peer: &ModSecurity, request: &str, requests: &[Request]) -> Vec<Request> {
    const PEER_VARIANTS: usize = 64;
    let passed: Vec<Request> = requests
        .iter()
        .take(2 * PEER_VARIANTS)
        .filter(|r| peer.inspect(r).is_ok_and(|v| v.is_none()))
        .take(PEER_VARIANTS)
        .cloned()
        .collect();
    assert!(
        passed.len() >= PEER_VARIANTS / 2,
        "ModSecurity blocks most {request} variants"
    );
    passed
}

/// Matcher throughput: one 16 KiB form field of prose, without an attack (`miss`) and with
/// attacks strewn through it (`hit`), inspected in detection-only mode so that a hit does not
/// end the inspection early; reported in bytes of the request per second.
fn matcher_16k(c: &mut Criterion) {
    for (name, ruleset) in [("ours_pl1", Ruleset::Ours), ("crs_pl1", Ruleset::Crs)] {
        let mut set = load(ruleset, 1);
        set.settings.mode = Mode::DetectOnly;
        let program = compile(&set).expect("compiles");
        let mut group = c.benchmark_group(format!("matcher_16k/{name}"));
        for (kind, attacks) in [("miss", false), ("hit", true)] {
            let requests: Vec<Request> = (1..=VARIANTS as u64)
                .map(|seed| field_16k(seed, attacks))
                .collect();
            let verdict = program.inspect(&requests[0]);
            assert_eq!(
                verdict.block_status().is_some(),
                attacks,
                "{name} {kind}: {verdict:?}"
            );
            group.throughput(Throughput::Bytes(wire_size(&requests[0]) as u64));
            let mut cycle = Cycle::new(&requests);
            group.bench_function(kind, |b| {
                b.iter(|| program.inspect(black_box(cycle.next())))
            });
        }
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = configure();
    targets = login_post, json_body, inspect, matcher_16k, rule_count, compile_time
}

/// Mean time of `f` per call, over `rounds` interleaved with the other measurements.
fn per_call(f: &mut dyn FnMut(), calls: u32) -> Duration {
    let start = Instant::now();
    for _ in 0..calls {
        f();
    }
    start.elapsed() / calls
}

/// The ratios the targets are stated in, measured in one run with the two sides interleaved
/// (round after round) so that noise from the shared machine falls on both alike.
fn ratios() {
    const ROUNDS: usize = 5;
    println!("\nratios (interleaved, {ROUNDS} rounds; targets: reference/compiled >= 20, 1000/100 rules < 2):");
    let set = ruleset(RULES);
    let program = compile(&set).expect("compiles");
    let reference = Reference::new(&set).expect("compiles");
    for (name, requests, calls) in [
        (
            "login_post_1k",
            variants(login_post_1k_seeded, VARIANTS),
            200,
        ),
        ("json_16k", variants(json_16k_seeded, VARIANTS), 10),
    ] {
        let (mut fast, mut slow) = (Duration::ZERO, Duration::ZERO);
        let mut cycle = Cycle::new(&requests);
        for _ in 0..ROUNDS {
            fast += per_call(
                &mut || drop(black_box(program.inspect(black_box(cycle.next())))),
                calls,
            );
            slow += per_call(
                &mut || drop(black_box(reference.inspect(black_box(cycle.next())))),
                calls / 10 + 1,
            );
        }
        println!(
            "  {name}: compiled {:?}, reference {:?}, reference/compiled = {:.1}",
            fast / ROUNDS as u32,
            slow / ROUNDS as u32,
            slow.as_secs_f64() / fast.as_secs_f64()
        );
    }
    let requests = variants(login_post_1k_seeded, VARIANTS);
    let mut cycle = Cycle::new(&requests);
    let small = compile(&ruleset(100)).expect("compiles");
    let large = compile(&ruleset(1000)).expect("compiles");
    let (mut t100, mut t1000) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..ROUNDS {
        t100 += per_call(
            &mut || drop(black_box(small.inspect(black_box(cycle.next())))),
            200,
        );
        t1000 += per_call(
            &mut || drop(black_box(large.inspect(black_box(cycle.next())))),
            200,
        );
    }
    println!(
        "  rule_count: 100 rules {:?}, 1000 rules {:?}, 1000/100 = {:.2}",
        t100 / ROUNDS as u32,
        t1000 / ROUNDS as u32,
        t1000.as_secs_f64() / t100.as_secs_f64()
    );
    // More rounds than above: a round here is a pair of timings, and the median of 15 pairs
    // stands still under the load of a shared machine where a sum of 5 did not.
    peer_ratios(15);
}

/// Our CRS inspection against ModSecurity's (the peer in process, `waf_benches::modsecurity`),
/// both with the CRS 3.3.4 at paranoia level 1, on the same request variants, interleaved
/// round by round; the ratio reported is the median of the rounds' ratios, with their
/// range. Issue 4's target is a ratio of at least 20 for the GET and the POST.
fn peer_ratios(rounds: usize) {
    let peer = match ModSecurity::with_crs(1) {
        Ok(peer) => peer,
        Err(e) => {
            println!("  ModSecurity not measured: {e}");
            return;
        }
    };
    let program = compile(&load(Ruleset::Crs, 1)).expect("the CRS compiles");
    println!("  the CRS at paranoia level 1, ModSecurity 3 against ours (target >= 20):");
    for (name, mut requests) in peer_requests() {
        requests.retain(|r| !program.inspect(r).is_blocking());
        let theirs = peer_variants(&peer, name, &requests);
        // About 60 ms of each side per round.
        let calls = |each: Duration| (60e-3 / each.as_secs_f64().max(1e-6)).clamp(1.0, 1e4) as u32;
        let ours_calls = calls(per_call(
            &mut || drop(black_box(program.inspect(black_box(&requests[0])))),
            10,
        ));
        let peer_calls = calls(per_call(
            &mut || drop(black_box(peer.inspect(&theirs[0]))),
            2,
        ));
        let (mut ours_cycle, mut peer_cycle) = (Cycle::new(&requests), Cycle::new(&theirs));
        // A ratio per round, of two timings taken back to back: a burst of load from another
        // process on this shared machine slows a round, and the median of the rounds' ratios
        // sets it aside, where a ratio of sums would take it in.
        let mut rounds_seen: Vec<(Duration, Duration)> = (0..rounds)
            .map(|_| {
                let ours = per_call(
                    &mut || drop(black_box(program.inspect(black_box(ours_cycle.next())))),
                    ours_calls,
                );
                let peers = per_call(
                    &mut || drop(black_box(peer.inspect(black_box(peer_cycle.next())))),
                    peer_calls,
                );
                (ours, peers)
            })
            .collect();
        let ratio = |(ours, peers): &(Duration, Duration)| {
            peers.as_secs_f64() / ours.as_secs_f64().max(1e-12)
        };
        rounds_seen.sort_by(|a, b| ratio(a).total_cmp(&ratio(b)));
        let (Some(low), Some(median), Some(high)) = (
            rounds_seen.first(),
            rounds_seen.get(rounds_seen.len() / 2),
            rounds_seen.last(),
        ) else {
            continue;
        };
        println!(
            "  {name}: ModSecurity {:?}, ours {:?}, ModSecurity/ours = {:.1} (rounds {:.1} to {:.1})",
            median.1,
            median.0,
            ratio(median),
            ratio(low),
            ratio(high)
        );
    }
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    // `cargo bench -- <filter>` runs only some groups, and the ratios only when there is no
    // filter, or when the filter is `ratios` (which selects no group).
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    if filters.is_empty() || filters == ["ratios"] {
        ratios();
    }
}
