//! `crs/signin-exclusions.conf` with the OWASP CRS 3.3.4 at paranoia level 1: the generated
//! sign-ins that the CRS alone blocks pass, and every attack of the CRS's own regression corpus
//! is judged as without it.
//!
//! The CRS comes from Debian's `modsecurity-crs` (`scripts/setup.sh` installs it); the corpus
//! is read from `../shared/corpus/` at test time.
//! Reproduce: `cargo test --release -p waf-traffic --test crs_signin_exclusions -- --nocapture`.

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine;
use waf_core::reference::Reference;
use waf_core::{Program, Request, RuleSet, Verdict};
use waf_traffic::SignInTraffic;

const SEED: u64 = 0x5161_4e49;
const SIGN_INS: usize = 5_000;

/// The CRS as `docs/crs-compat.md` loads it, with the exclusions between the setup and the
/// rules when `exclusions` is set.
fn crs(exclusions: bool, paranoia: u8) -> Program {
    waf_core::compile(&crs_set(exclusions, paranoia)).unwrap_or_else(|e| panic!("{e}"))
}

fn crs_set(exclusions: bool, paranoia: u8) -> RuleSet {
    let mut paths = vec!["/etc/modsecurity/crs/crs-setup.conf".to_string()];
    if exclusions {
        paths.push(
            concat!(env!("CARGO_MANIFEST_DIR"), "/../crs/signin-exclusions.conf").to_string(),
        );
    }
    paths.push("/usr/share/modsecurity-crs/rules".to_string());
    let files = waf_core::rules::rule_files(&paths)
        .unwrap_or_else(|e| panic!("{e} (apt-get install modsecurity-crs)"));
    let mut loader = waf_core::rules::Loader::new();
    for file in files {
        loader.add_file(&file).unwrap_or_else(|e| panic!("{e}"));
    }
    let (mut set, _notes) = loader.finish().unwrap_or_else(|e| panic!("{e}"));
    set.settings.paranoia = paranoia;
    set
}

/// `rule target` of every match but the anomaly-score checks (949110 and its kin).
fn matched(verdict: &Verdict) -> Vec<String> {
    verdict
        .matches
        .iter()
        .filter(|m| m.rule_id < 949_000)
        .flat_map(|m| {
            m.values
                .iter()
                .map(move |v| format!("{} {}", m.rule_id, v.target))
        })
        .collect()
}

/// The profile fields the exclusions leave to libinjection (942100): a name that reads as SQL
/// still counts as one, on purpose.
fn is_libinjection_on_a_name(hit: &str) -> bool {
    let names = [
        "displayName",
        "givenName",
        "surname",
        "name",
        "streetAddress",
        "city",
        "jobTitle",
        "companyName",
    ];
    hit.strip_prefix("942100 ARGS:")
        .map(|field| field.strip_prefix("attributes.").unwrap_or(field))
        .is_some_and(|field| names.contains(&field) || field.starts_with("extension_"))
}

#[test]
fn the_sign_ins_the_crs_blocks_pass_with_the_exclusions() {
    let (alone, with) = (crs(false, 1), crs(true, 1));
    let (mut blocked_alone, mut blocked_with) = (0usize, 0usize);
    let mut by_rule: BTreeMap<String, usize> = BTreeMap::new();
    let mut unexpected = Vec::new();
    for (i, sample) in SignInTraffic::new(SEED).take(SIGN_INS).enumerate() {
        blocked_alone += usize::from(alone.inspect(&sample.request).is_blocking());
        let verdict = with.inspect(&sample.request);
        if !verdict.is_blocking() {
            continue;
        }
        blocked_with += 1;
        for hit in matched(&verdict) {
            *by_rule.entry(hit.clone()).or_default() += 1;
            if !is_libinjection_on_a_name(&hit) && unexpected.len() < 10 {
                unexpected.push(format!("sign-in {i} ({:?}): {hit}", sample.flow));
            }
        }
    }
    println!(
        "\nthe CRS at level 1 blocks {blocked_alone} of {SIGN_INS} sign-ins alone, \
         {blocked_with} with the exclusions: {by_rule:?}"
    );
    // What the exclusions are for: the CRS alone blocks several percent of these.
    assert!(
        blocked_alone * 20 > SIGN_INS,
        "{blocked_alone} blocked without them"
    );
    assert!(unexpected.is_empty(), "{}", unexpected.join("\n"));
    assert!(
        blocked_with * 1_000 <= SIGN_INS,
        "{blocked_with} blocked with them"
    );
}

/// The corpus's attack stages (those with `expect_ids`) that our HTTP parser reads.
fn attack_stages() -> Vec<(String, Request)> {
    let corpus =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/crs-3.3.4/stages.jsonl");
    let text = std::fs::read_to_string(&corpus)
        .unwrap_or_else(|e| panic!("the CRS corpus is read from {}: {e}", corpus.display()));
    text.lines()
        .filter_map(|line| {
            let stage: serde_json::Value = serde_json::from_str(line).ok()?;
            let attack = stage["expect_ids"]
                .as_array()
                .is_some_and(|ids| !ids.is_empty());
            let raw = base64::engine::general_purpose::STANDARD
                .decode(stage["wire_request"].as_str()?)
                .ok()?;
            let request = waf_core::parse::http1::parse_request(&raw).ok()?;
            attack.then(|| {
                (
                    stage["id"].as_str().unwrap_or_default().to_string(),
                    request,
                )
            })
        })
        .collect()
}

#[test]
fn every_attack_of_the_corpus_is_judged_as_without_the_exclusions() {
    let stages = attack_stages();
    assert!(stages.len() > 1_000, "{} attack stages", stages.len());
    for paranoia in [1, 2] {
        let (alone, with) = (crs(false, paranoia), crs(true, paranoia));
        let mut blocked = 0usize;
        let differ: Vec<String> = stages
            .iter()
            .filter_map(|(id, request)| {
                let (a, w) = (alone.inspect(request), with.inspect(request));
                blocked += usize::from(a.is_blocking());
                (a.is_blocking() != w.is_blocking() || matched(&a) != matched(&w))
                    .then(|| format!("{id}: alone {:?}, with {:?}", matched(&a), matched(&w)))
            })
            .collect();
        println!(
            "paranoia {paranoia}: {blocked} of {} attack stages blocked, {} judged otherwise \
             with the exclusions",
            stages.len(),
            differ.len()
        );
        assert!(
            differ.is_empty(),
            "paranoia {paranoia}:\n{}",
            differ.join("\n")
        );
    }
}

fn form_post(body: &str) -> Request {
    Request::builder()
        .method("POST")
        .uri("/contoso.onmicrosoft.com/B2C_1_signin/SelfAsserted?tx=StateProperties=eyJUSUQiOiIxIn0&p=B2C_1_signin")
        .header("Host", "login.contoso.com")
        .header("User-Agent", "Mozilla/5.0 (Windows NT 10.0; Win64; x64)")
        .header("Accept", "application/json")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("Content-Length", body.len().to_string())
        .body(body)
        .build()
}

#[test]
fn what_the_exclusions_spare_and_what_they_do_not() {
    let with = crs(true, 1);
    let sqli = "1%27%20OR%20%271%27%3D%271";
    for (body, blocked) in [
        // The sign-in name, a profile field and `state` are still read for what matters.
        (format!("request_type=RESPONSE&signInName={sqli}"), true),
        (format!("request_type=RESPONSE&displayName={sqli}"), true),
        (
            "request_type=RESPONSE&state=%3Cscript%3Ealert(1)%3C%2Fscript%3E".to_string(),
            true,
        ),
        // A password is never read: that is the price, paid on purpose.
        (format!("request_type=RESPONSE&password={sqli}"), false),
    ] {
        let verdict = with.inspect(&form_post(&body));
        assert_eq!(
            verdict.is_blocking(),
            blocked,
            "{body}: matched {:?}",
            matched(&verdict)
        );
    }
}

/// The exclusions remove targets by regular expression from `ctl`, at run time: the compiled
/// program (gates, memos, removal lists) and the naive reference evaluator must agree on every
/// verdict, down to each matched value.
#[test]
fn the_compiled_program_and_the_reference_agree_with_the_exclusions() {
    let set = crs_set(true, 1);
    let program = waf_core::compile(&set).unwrap_or_else(|e| panic!("{e}"));
    let reference = Reference::new(&set).unwrap_or_else(|e| panic!("{e}"));
    let sign_ins = SignInTraffic::new(SEED).take(SIGN_INS).map(|s| s.request);
    let attacks = attack_stages().into_iter().map(|(_, r)| r);
    let mut compared = 0usize;
    for request in sign_ins.chain(attacks) {
        let (a, b) = (program.inspect(&request), reference.inspect(&request));
        assert_eq!(
            a,
            b,
            "{} {}",
            String::from_utf8_lossy(request.method()),
            String::from_utf8_lossy(request.uri())
        );
        compared += 1;
    }
    assert!(compared > SIGN_INS);
}
