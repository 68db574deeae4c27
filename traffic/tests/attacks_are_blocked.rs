//! The attack side of the ruleset's measurement: the attack stages of the OWASP CRS 3.3.4
//! regression corpus for rule files 930 to 944 (those with `expect_ids`), replayed through
//! `rules/` at paranoia levels 1 and 2, with the share blocked per rule file.
//!
//! The corpus is read from `../shared/corpus/` at test time, never copied here.
//! Reproduce: `cargo test --release -p waf-traffic --test attacks_are_blocked -- --nocapture`.
//! To see what is still let through, set `WAF_MISSED` to a part of a rule file's name (or `all`):
//! `WAF_MISSED=942 cargo test --release -p waf-traffic --test attacks_are_blocked -- --nocapture`
//! lists every missed stage of that file at paranoia level 1 (`WAF_MISSED_PL=2` for level 2).

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine;
use waf_core::{compile, Request, RuleSet};

/// One attack stage: its rule file and its request (`None`: our HTTP parser refuses it).
struct Stage {
    id: String,
    file: String,
    request: Option<Request>,
}

fn attack_stages() -> Vec<Stage> {
    let corpus =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/crs-3.3.4/stages.jsonl");
    let text = std::fs::read_to_string(&corpus)
        .unwrap_or_else(|e| panic!("the CRS corpus is read from {}: {e}", corpus.display()));
    let mut stages = Vec::new();
    for line in text.lines() {
        let stage: serde_json::Value = serde_json::from_str(line).expect("JSON lines");
        let file = stage["rule_file"].as_str().unwrap_or_default();
        let number: u32 = file
            .strip_prefix("REQUEST-")
            .and_then(|f| f.get(..3))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let attack = stage["expect_ids"]
            .as_array()
            .is_some_and(|ids| !ids.is_empty());
        if !(930..=944).contains(&number) || !attack {
            continue;
        }
        let request = stage["wire_request"]
            .as_str()
            .and_then(|w| base64::engine::general_purpose::STANDARD.decode(w).ok())
            .and_then(|raw| waf_core::parse::http1::parse_request(&raw).ok());
        stages.push(Stage {
            id: stage["id"].as_str().unwrap_or_default().to_string(),
            file: file.trim_end_matches(".conf").to_string(),
            request,
        });
    }
    stages
}

/// Per rule file: (stages, blocked, refused by the parser).
fn replay(stages: &[Stage], paranoia: u8) -> BTreeMap<String, (usize, usize, usize)> {
    let missed = std::env::var("WAF_MISSED").ok().filter(|_| {
        std::env::var("WAF_MISSED_PL").map_or(paranoia == 1, |p| p == paranoia.to_string())
    });
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules");
    let mut set = RuleSet::from_yaml_paths(&[rules]).expect("rules/ loads");
    set.settings.paranoia = paranoia;
    let program = compile(&set).expect("rules/ compiles");
    let mut table: BTreeMap<String, (usize, usize, usize)> = BTreeMap::new();
    for stage in stages {
        let row = table.entry(stage.file.clone()).or_default();
        row.0 += 1;
        match &stage.request {
            Some(r) if program.inspect(r).block_status().is_some() => row.1 += 1,
            Some(r) => {
                if missed
                    .as_deref()
                    .is_some_and(|m| m == "all" || stage.file.contains(m))
                {
                    print_missed(stage, r);
                }
            }
            None => row.2 += 1,
        }
    }
    table
}

/// One missed stage: its id, request line, the headers a test usually varies, and the body.
fn print_missed(stage: &Stage, r: &Request) {
    let mut line = format!(
        "missed {} {} {}",
        stage.id,
        String::from_utf8_lossy(r.method()),
        String::from_utf8_lossy(r.uri())
    );
    for (name, value) in r.headers().iter() {
        let n = String::from_utf8_lossy(name).to_ascii_lowercase();
        if !matches!(
            n.as_str(),
            "host"
                | "accept"
                | "accept-charset"
                | "accept-encoding"
                | "accept-language"
                | "connection"
                | "content-length"
                | "keep-alive"
                | "proxy-connection"
        ) {
            line.push_str(&format!(" [{n}: {}]", String::from_utf8_lossy(value)));
        }
    }
    if !r.body().is_empty() {
        line.push_str(&format!(" body={:?}", String::from_utf8_lossy(r.body())));
    }
    println!("{}", line.chars().take(400).collect::<String>());
}

/// Prints the table; returns the share blocked over all files, in percent.
fn report(paranoia: u8, table: &BTreeMap<String, (usize, usize, usize)>) -> f64 {
    println!("\nparanoia level {paranoia}: attack stages blocked by rules/ per CRS rule file");
    println!("| rule file | stages | blocked | share | refused by the HTTP parser |");
    println!("|---|---:|---:|---:|---:|");
    let (mut n, mut b) = (0, 0);
    for (file, (stages, blocked, refused)) in table {
        println!(
            "| {file} | {stages} | {blocked} | {:.0}% | {refused} |",
            100.0 * *blocked as f64 / *stages as f64
        );
        n += stages;
        b += blocked;
    }
    let share = 100.0 * b as f64 / n as f64;
    println!("| all | {n} | {b} | {share:.1}% | |");
    share
}

#[test]
fn attack_stages_blocked_per_rule_file() {
    let stages = attack_stages();
    assert!(stages.len() > 800, "only {} attack stages", stages.len());
    let level1 = report(1, &replay(&stages, 1));
    let level2 = report(2, &replay(&stages, 2));
    // The targets are 90% at level 1 and 95% at level 2; rules/ reaches 96.8% and 98.8%. The
    // floors sit just below: a change to rules/ (or to the engine) that lets attacks through
    // fails here.
    assert!(level1 >= 96.5, "level 1 blocks {level1:.1}%");
    assert!(level2 >= 98.5, "level 2 blocks {level2:.1}%");
    assert!(
        level2 >= level1,
        "level 2 ({level2:.1}%) blocks less than level 1"
    );
}
