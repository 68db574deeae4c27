//! The engine's benchmarks: compiled program against the reference evaluator, growth with the
//! rule count, compile time. See `benches/README.md` for what each group measures.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use waf_benches::{json_16k, login_post_1k, synthetic_ruleset, wire_size, DEFAULT_SEED};
use waf_core::reference::Reference;
use waf_core::{compile, Request, RuleSet};

/// Regex rules of the ruleset the inputs are measured against (plus phrase lists and
/// libinjection rules).
const RULES: usize = 500;

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

/// `{input}/compiled` and `{input}/reference` on the same ruleset and request.
fn compiled_vs_reference(c: &mut Criterion, name: &str, request: &Request) {
    let set = ruleset(RULES);
    let program = compile(&set).expect("the synthetic ruleset compiles");
    let reference = Reference::new(&set).expect("the synthetic ruleset compiles");
    // A benchmark of a blocked request would measure the early exit, not inspection.
    assert!(
        program.inspect(request).matches.is_empty(),
        "{name} must be clean"
    );
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Bytes(wire_size(request) as u64));
    group.bench_function("compiled", |b| {
        b.iter(|| program.inspect(black_box(request)))
    });
    group.bench_function("reference", |b| {
        b.iter(|| reference.inspect(black_box(request)))
    });
    group.finish();
}

fn login_post(c: &mut Criterion) {
    compiled_vs_reference(c, "login_post_1k", &login_post_1k());
}

fn json_body(c: &mut Criterion) {
    compiled_vs_reference(c, "json_16k", &json_16k());
}

/// The compiled program on the login POST with 100 and 1,000 regex rules: the literal gates
/// should keep the per-request cost nearly flat.
fn rule_count(c: &mut Criterion) {
    let request = login_post_1k();
    let mut group = c.benchmark_group("rule_count");
    group.throughput(Throughput::Bytes(wire_size(&request) as u64));
    for n in [100, 1000] {
        let program = compile(&ruleset(n)).expect("the synthetic ruleset compiles");
        assert!(program.inspect(&request).matches.is_empty());
        group.bench_with_input(BenchmarkId::from_parameter(n), &program, |b, program| {
            b.iter(|| program.inspect(black_box(&request)))
        });
    }
    group.finish();
}

/// Compiling the 500-rule set (parsing excluded).
fn compile_time(c: &mut Criterion) {
    let set = ruleset(RULES);
    let mut group = c.benchmark_group("compile");
    group.sample_size(10);
    group.bench_with_input(BenchmarkId::from_parameter(RULES), &set, |b, set| {
        b.iter(|| compile(black_box(set)).expect("compiles"))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = configure();
    targets = login_post, json_body, rule_count, compile_time
}
criterion_main!(benches);
