//! `waf ftw`, run as the real binary: the request bytes against the CRS 3.3.4 reference run,
//! both test formats in-process, and network mode against a real `waf serve`.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{Origin, Proxy, Setup};

fn waf(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_waf"))
        .args(args)
        .output()
        .expect("the waf binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn text(p: &Path) -> &str {
    p.to_str().expect("temp paths are UTF-8 here")
}

fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("folder created");
    }
    std::fs::write(&path, content).expect("file written");
    path
}

/// The CRS 3.3.4 corpus beside the workspace (`../shared/corpus`, never copied into it).
fn corpus() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/crs-3.3.4");
    assert!(
        dir.join("stages.jsonl").is_file() && dir.join("tests").is_dir(),
        "the CRS 3.3.4 regression corpus is missing: expected {} (tests/ and stages.jsonl), \
         i.e. ../shared/corpus/crs-3.3.4 next to the workspace",
        dir.display()
    );
    dir
}

#[test]
fn requests_are_built_byte_for_byte_as_the_reference_harness_sent_them() {
    let corpus = corpus();
    let dir = tempfile::tempdir().expect("temp dir");
    let dump = dir.path().join("requests.jsonl");
    let out = waf(&[
        "ftw",
        "--dump-requests",
        text(&dump),
        text(&corpus.join("tests")),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut ours: HashMap<(String, u64, u64), serde_json::Value> = HashMap::new();
    for line in std::fs::read_to_string(&dump).expect("dump").lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("dump lines are JSON");
        let key = (
            v["file"].as_str().expect("file").to_string(),
            v["test_index"].as_u64().expect("test_index"),
            v["stage_index"].as_u64().expect("stage_index"),
        );
        ours.insert(key, v);
    }

    let reference = std::fs::read_to_string(corpus.join("stages.jsonl")).expect("stages.jsonl");
    let (mut total, mut equal) = (0usize, 0usize);
    let mut differences = Vec::new();
    for line in reference.lines() {
        let r: serde_json::Value = serde_json::from_str(line).expect("stages.jsonl is JSON lines");
        total += 1;
        let key = (
            r["test_file"].as_str().expect("test_file").to_string(),
            r["test_index"].as_u64().expect("test_index"),
            r["stage_index"].as_u64().expect("stage_index"),
        );
        let expected = r["wire_request"].as_str().expect("wire_request");
        match ours.get(&key) {
            Some(v) if v["wire_request"].as_str() == Some(expected) => equal += 1,
            Some(v) => differences.push(format!(
                "{}: ours {:?} ({}), reference {expected:?}",
                r["id"], v["wire_request"], v["error"]
            )),
            None => differences.push(format!("{}: no such stage in our reading", r["id"])),
        }
    }
    println!("{equal} of {total} stages byte-identical");
    assert_eq!(total, 2403, "the corpus has 2,403 stages");
    assert!(
        equal * 1000 >= total * 995,
        "only {equal} of {total} requests equal the reference bytes; first differences:\n{}",
        differences
            .iter()
            .take(5)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// Rule 1001 blocks `evil` in any argument; rule 1002 only flags `bad` (a notice scores 2,
/// below the threshold of 5).
const RULES: &str = "rules:\n\
    \x20 - id: 1001\n\
    \x20   message: evil\n\
    \x20   severity: critical\n\
    \x20   targets: [args]\n\
    \x20   match: {contains: evil}\n\
    \x20 - id: 1002\n\
    \x20   message: bad\n\
    \x20   severity: notice\n\
    \x20   targets: [args]\n\
    \x20   match: {contains: bad}\n";

/// CRS 3.x ("v1") tests: five pass, 1001-3 fails on purpose.
fn v1_tests(host: &str) -> String {
    format!(
        r#"---
meta: {{author: test, enabled: true, name: 1001.yaml}}
tests:
  - test_title: 1001-1
    stages:
      - stage:
          input: {{uri: "/authorize?q=evil", headers: {{Host: {host}}}}}
          output: {{log_contains: id "1001"}}
  - test_title: 1001-2
    stages:
      - stage:
          input: {{uri: "/authorize?q=fine", headers: {{Host: {host}}}}}
          output: {{no_log_contains: id "1001"}}
  - test_title: 1001-3
    desc: fails on purpose
    stages:
      - stage:
          input: {{uri: "/authorize?q=fine", headers: {{Host: {host}}}}}
          output: {{log_contains: id "1001"}}
  - test_title: 1001-4
    desc: the form body is completed with a Content-Type and encoded
    stages:
      - stage:
          input:
            method: POST
            uri: /authorize
            headers: {{Host: {host}}}
            data: ["q=an evil", "x=1"]
          output: {{log_contains: id "1001"}}
  - test_title: 1001-5
    stages:
      - stage:
          input:
            raw_request: "GET /authorize HTTP/1.1\r\nHost: {host}\r\nno colon here\r\n\r\n"
          output: {{expect_error: true}}
  - test_title: 1001-6
    stages:
      - stage:
          input: {{uri: "/authorize?q=evil", headers: {{Host: {host}}}}}
          output: {{status: [403]}}
"#
    )
}

/// CRS 4.x tests: 1002-1 passes, 1002-2 fails on purpose.
fn v4_tests(host: &str) -> String {
    format!(
        r#"meta: {{author: test}}
rule_id: 1002
tests:
  - test_id: 1
    stages:
      - input:
          method: POST
          uri: /authorize
          headers: {{Host: {host}, User-Agent: go-ftw}}
          data: "q=bad&y=2"
        output:
          log: {{expect_ids: [1002], no_expect_ids: [1001]}}
  - test_id: 2
    stages:
      - input: {{uri: "/authorize?q=bad", headers: {{Host: {host}}}}}
        output:
          log: {{expect_ids: [1001]}}
"#
    )
}

#[test]
fn in_process_both_formats_with_failures_skips_and_broken_files() {
    let dir = tempfile::tempdir().expect("temp dir");
    let rules = write(dir.path(), "rules/own.yaml", RULES);
    let tests = dir.path().join("tests");
    write(&tests, "A/1001.yaml", &v1_tests("localhost"));
    write(&tests, "B/1002.yaml", &v4_tests("localhost"));
    write(
        &tests,
        "C/disabled.yaml",
        "meta: {enabled: false}\ntests:\n  - test_title: off-1\n    stages:\n      - stage:\n          input: {uri: /}\n          output: {}\n",
    );
    write(&tests, "D/broken.yaml", "tests: [\n");
    let json = dir.path().join("report.json");
    let markdown = dir.path().join("failures.md");

    let out = waf(&[
        "ftw",
        "--rules",
        text(&rules),
        "--json",
        text(&json),
        "--list-failures-markdown",
        text(&markdown),
        text(&tests),
    ]);
    let report = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{report}");
    let expected = [
        "A/1001.yaml: 5 passed, 1 failed",
        "  1001-3 stage 1: expected rule 1001 to match; matched: none",
        "B/1002.yaml: 1 passed, 1 failed",
        "  1002-2 stage 1: expected rule 1001 to match; matched: 1002",
        "C/disabled.yaml: 0 passed, 0 failed, 1 skipped",
    ];
    for line in expected {
        assert!(
            report.contains(&format!("{line}\n")),
            "missing {line:?} in:\n{report}"
        );
    }
    assert!(
        report.contains("D/broken.yaml: cannot be parsed: line "),
        "{report}"
    );
    assert!(
        report.ends_with("overall: 6 passed, 3 failed, 1 skipped (66.7%)\n"),
        "{report}"
    );

    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("json report")).expect("JSON");
    assert_eq!(
        (v["passed"].as_u64(), v["failed"].as_u64()),
        (Some(6), Some(3))
    );
    assert_eq!(
        v["files"][1]["failures"][0]["matched"],
        serde_json::json!([1002])
    );
    let md = std::fs::read_to_string(&markdown).expect("markdown");
    assert!(
        md.contains("| A/1001.yaml | 1001-3 | 1 | expected rule 1001 to match; matched: none |"),
        "{md}"
    );

    // The pass rate can decide instead; and filters pick tests by id.
    let out = waf(&[
        "ftw",
        "--rules",
        text(&rules),
        "--min-pass-rate",
        "0.6",
        text(&tests),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let out = waf(&[
        "ftw",
        "--rules",
        text(&rules),
        "--include",
        "^100[12]-",
        // `=`: the value starts with a dash.
        "--exclude=-[23]$",
        text(&tests.join("A")),
        text(&tests.join("B")),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(
        stdout(&out).ends_with("overall: 5 passed, 0 failed, 0 skipped (100.0%)\n"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn detection_only_and_paranoia_are_applied() {
    let dir = tempfile::tempdir().expect("temp dir");
    let rules = write(dir.path(), "rules.yaml", RULES);
    let tests = write(dir.path(), "t.yaml", &v1_tests("localhost"));
    // Detection only: every rule runs, and a status expectation is judged by what the proxy
    // would answer in blocking mode, so the status-only 1001-6 still passes; only the
    // deliberately failing 1001-3 fails.
    let out = waf(&[
        "ftw",
        "--rules",
        text(&rules),
        "--detection-only",
        "--paranoia",
        "4",
        text(&tests),
    ]);
    let report = stdout(&out);
    assert!(!report.contains("1001-6"), "{report}");
    assert!(
        report.ends_with("overall: 5 passed, 1 failed, 0 skipped (83.3%)\n"),
        "{report}"
    );
    let out = waf(&[
        "ftw",
        "--rules",
        text(&rules),
        "--paranoia",
        "7",
        text(&tests),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--paranoia must be 1 to 4"));
}

#[test]
fn network_mode_reads_the_matches_from_the_audit_log() {
    let dir = tempfile::tempdir().expect("temp dir");
    let rules = dir.path().join("rules");
    write(&rules, "own.yaml", RULES);
    let origin = Origin::start();
    let proxy = Proxy::start_in(
        dir,
        &origin,
        Setup {
            rules: format!("[\"{}\"]", rules.display()),
            extra_top: "audit: {path: \"{dir}/audit.jsonl\", all_requests: true}\n".to_string(),
            ..Setup::default()
        },
    );
    let tests = proxy.dir.path().join("tests");
    write(&tests, "v1/1001.yaml", &v1_tests("login.contoso.com"));
    write(&tests, "v4/1002.yaml", &v4_tests("login.contoso.com"));
    let audit = proxy.dir.path().join("audit.jsonl");
    let target = format!("http://127.0.0.1:{}", proxy.port);

    let out = waf(&[
        "ftw",
        "--target",
        &target,
        "--audit-log",
        text(&audit),
        text(&tests),
    ]);
    let report = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{report}\n{}", proxy.log());
    assert!(
        report.contains(
            "v1/1001.yaml: 5 passed, 1 failed\n  1001-3 stage 1: expected rule 1001 to match; matched: none\n"
        ),
        "{report}"
    );
    assert!(
        report.contains(
            "v4/1002.yaml: 1 passed, 1 failed\n  1002-2 stage 1: expected rule 1001 to match; matched: 1002\n"
        ),
        "{report}"
    );
    assert!(
        report.ends_with("overall: 6 passed, 2 failed, 0 skipped (75.0%)\n"),
        "{report}"
    );

    // Without every request in the audit log, a clean request cannot be judged: say why.
    let quiet = tempfile::tempdir().expect("temp dir");
    let rules = quiet.path().join("rules");
    write(&rules, "own.yaml", RULES);
    let proxy = Proxy::start_in(
        quiet,
        &origin,
        Setup {
            rules: format!("[\"{}\"]", rules.display()),
            extra_top: "audit: {path: \"{dir}/audit.jsonl\", all_requests: false}\n".to_string(),
            ..Setup::default()
        },
    );
    let out = waf(&[
        "ftw",
        "--include",
        "^1001-2$",
        "--target",
        &format!("http://127.0.0.1:{}", proxy.port),
        "--audit-log",
        text(&proxy.dir.path().join("audit.jsonl")),
        text(&tests.join("v1")),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("`audit: {all_requests: true}`"),
        "{}",
        stdout(&out)
    );
}
