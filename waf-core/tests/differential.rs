//! The compiled program against the reference evaluator: identical verdicts, always.
//!
//! The reference evaluator transforms every value from scratch for every rule and runs every
//! operator; the compiled program shares transformations and skips rules whose literals are
//! absent. Any difference in a verdict is a bug in the compiler's shortcuts.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use proptest::prelude::*;
use waf_core::reference::Reference;
use waf_core::{compile, Program, Request, RuleSet};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The feature-exercising ruleset plus the project's own rules.
fn rulesets() -> Vec<(String, RuleSet)> {
    let mut out = Vec::new();
    let features = workspace().join("waf-core/tests/data/differential.yaml");
    out.push((
        "differential.yaml".to_string(),
        RuleSet::from_yaml_paths(&[features]).expect("differential.yaml loads"),
    ));
    let own = workspace().join("rules");
    for paranoia in [1, 4] {
        let mut set = RuleSet::from_yaml_paths(&[&own]).expect("rules/ loads");
        set.settings.paranoia = paranoia;
        out.push((format!("rules/ at paranoia {paranoia}"), set));
    }
    out
}

struct Pair {
    name: String,
    program: Program,
    reference: Reference,
}

fn pairs() -> Vec<Pair> {
    rulesets()
        .into_iter()
        .map(|(name, set)| Pair {
            program: compile(&set).unwrap_or_else(|e| panic!("{name}: {e}")),
            reference: Reference::new(&set).unwrap_or_else(|e| panic!("{name}: {e}")),
            name,
        })
        .collect()
}

fn check(pairs: &[Pair], request: &Request) -> Result<(), String> {
    for p in pairs {
        let fast = p.program.inspect(request);
        let slow = p.reference.inspect(request);
        if fast != slow {
            return Err(format!(
                "{}: verdicts differ for {request:?}\ncompiled:  {fast:#?}\nreference: {slow:#?}",
                p.name
            ));
        }
    }
    Ok(())
}

fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-zA-Z0-9 ._-]{0,10}",
        1 => "\\PC{0,8}",
        1 => prop::sample::select(vec![
            "1 union select 2", "1 UNION ALL SELECT pw", "' or '1'='1", "\" OR 1", "admin'--",
            "<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "&#x3c;iframe src=x",
            "javascript:alert(1)", "../../etc/passwd", "..\\..\\windows\\win.ini", "sleep(5)",
            "SLEEP(10)", "1234567890123", "password123", "yes", "quiet", "PHNjcmlwdD4=",
            "; cat /etc/passwd", "__proto__", "constructor.prototype", "%u0027 or 1=1",
            "%27%20OR%20%271", "O'Brien", "Zoë Ó Súilleabháin", "Johnson & Sons", "eval(x)",
            "document.cookie", "<!ENTITY x SYSTEM", "onload = f()", "p@ss'w\"rd;--<",
        ]).prop_map(str::to_string),
    ]
}

fn name() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "q",
        "token",
        "password",
        "pass_word",
        "skip",
        "mode",
        "x",
        "file",
        "state",
        "redirect_uri",
        "__proto__",
        "signInName",
    ])
    .prop_map(str::to_string)
}

fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[derive(Debug, Clone)]
enum Body {
    None,
    Form(Vec<(String, String)>),
    Json(Vec<(String, String)>),
    Multipart(Vec<(String, String)>, Option<String>),
    Junk(Vec<u8>, String),
}

fn body() -> impl Strategy<Value = Body> {
    let fields = || prop::collection::vec((name(), fragment()), 0..5);
    prop_oneof![
        2 => Just(Body::None),
        3 => fields().prop_map(Body::Form),
        2 => fields().prop_map(Body::Json),
        1 => (fields(), prop::option::of(prop::sample::select(vec!["a.php", "cv.pdf", "x.jsp"]).prop_map(str::to_string)))
            .prop_map(|(f, file)| Body::Multipart(f, file)),
        1 => (prop::collection::vec(any::<u8>(), 0..64),
              prop::sample::select(vec!["application/json", "application/x-www-form-urlencoded",
                  "multipart/form-data; boundary=zz", "text/xml", "application/octet-stream"])
                  .prop_map(str::to_string))
            .prop_map(|(b, ct)| Body::Junk(b, ct)),
    ]
}

prop_compose! {
    fn request()(
        method in prop::sample::select(vec!["GET", "POST", "PUT", "HEAD", "DELETE"]),
        path in prop::sample::select(vec!["/", "/exempt/x", "/static/a.js", "/a/../b", "/login",
            "/contoso.onmicrosoft.com/B2C_1_signin/SelfAsserted", "/%2e%2e/etc"]),
        args in prop::collection::vec((name(), fragment()), 0..6),
        ua in prop::sample::select(vec!["Mozilla/5.0 (Windows NT 10.0)", "sqlmap/1.7", "curl/8.0", ""]),
        referer in prop::option::of(fragment()),
        cookies in prop::collection::vec((name(), fragment()), 0..3),
        body in body(),
    ) -> Request {
        let query: Vec<String> = args.iter().map(|(n, v)| format!("{}={}", encode(n), encode(v))).collect();
        let uri = if query.is_empty() { path.to_string() } else { format!("{path}?{}", query.join("&")) };
        let mut b = Request::builder().method(method).uri(uri).header("Host", "login.contoso.com")
            .remote_addr("198.51.100.7".parse().unwrap());
        if !ua.is_empty() { b = b.header("User-Agent", ua); }
        if let Some(r) = referer { b = b.header("Referer", r); }
        if !cookies.is_empty() {
            let c: Vec<String> = cookies.iter().map(|(n, v)| format!("{n}={}", encode(v))).collect();
            b = b.header("Cookie", c.join("; "));
        }
        let (ct, bytes): (Option<String>, Vec<u8>) = match body {
            Body::None => (None, Vec::new()),
            Body::Form(f) => (Some("application/x-www-form-urlencoded".into()),
                f.iter().map(|(n, v)| format!("{}={}", encode(n), encode(v))).collect::<Vec<_>>().join("&").into_bytes()),
            Body::Json(f) => {
                let mut map = serde_json::Map::new();
                for (n, v) in f { map.insert(n, serde_json::Value::String(v)); }
                (Some("application/json".into()), serde_json::to_vec(&serde_json::json!({"data": map, "list": [1, "two"]})).unwrap())
            }
            Body::Multipart(f, file) => {
                let mut s = String::new();
                for (n, v) in f { s.push_str(&format!("--zz\r\nContent-Disposition: form-data; name=\"{n}\"\r\n\r\n{v}\r\n")); }
                if let Some(file) = file {
                    s.push_str(&format!("--zz\r\nContent-Disposition: form-data; name=\"upload\"; filename=\"{file}\"\r\nContent-Type: application/octet-stream\r\n\r\nDATA\r\n"));
                }
                s.push_str("--zz--\r\n");
                (Some("multipart/form-data; boundary=zz".into()), s.into_bytes())
            }
            Body::Junk(bytes, ct) => (Some(ct), bytes),
        };
        if let Some(ct) = ct {
            b = b.header("Content-Type", ct).header("Content-Length", bytes.len().to_string());
        }
        b.body(bytes).build()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 10_000, failure_persistence: None, ..ProptestConfig::default() })]

    /// 10,000 generated requests per run, each against every ruleset.
    #[test]
    fn compiled_and_reference_agree_on_generated_requests(request in request()) {
        thread_local! { static PAIRS: Vec<Pair> = pairs(); }
        PAIRS.with(|p| check(p, &request)).map_err(TestCaseError::fail)?;
    }
}

/// The generator must reach blocking verdicts too, or agreement would prove little.
#[test]
fn generated_requests_exercise_blocking_rules() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let pairs = pairs();
    let mut runner = TestRunner::deterministic();
    let strategy = request();
    let (mut blocked, mut matched_rules) = (0, std::collections::BTreeSet::new());
    for _ in 0..2_000 {
        let r = strategy.new_tree(&mut runner).unwrap().current();
        let v = pairs[0].program.inspect(&r);
        blocked += usize::from(v.is_blocking());
        matched_rules.extend(v.matches.iter().map(|m| m.rule_id));
    }
    assert!(
        blocked > 200,
        "only {blocked} of 2000 generated requests were blocked"
    );
    assert!(
        matched_rules.len() >= 15,
        "only these rules ever matched: {matched_rules:?}"
    );
}

/// Every request of the OWASP CRS regression corpus, as sent on the wire.
#[test]
fn compiled_and_reference_agree_on_the_crs_corpus() {
    let corpus = workspace().join("../shared/corpus/crs-3.3.4/stages.jsonl");
    let text = std::fs::read_to_string(&corpus)
        .unwrap_or_else(|e| panic!("the CRS corpus is read from {}: {e}", corpus.display()));
    let pairs = pairs();
    let mut checked = 0;
    for line in text.lines() {
        let stage: serde_json::Value =
            serde_json::from_str(line).expect("stages.jsonl is JSON lines");
        let Some(wire) = stage["wire_request"].as_str() else {
            continue;
        };
        let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(wire) else {
            continue;
        };
        // Requests the HTTP parser refuses never reach the engine.
        let Ok(request) = waf_core::parse::http1::parse_request(&raw) else {
            continue;
        };
        if let Err(e) = check(&pairs, &request) {
            panic!("stage {}: {e}", stage["id"]);
        }
        checked += 1;
    }
    assert!(checked > 2_000, "only {checked} corpus requests parsed");
}
