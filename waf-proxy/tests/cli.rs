//! The rule author's commands, run as the real `waf` binary.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn waf(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_waf"))
        .args(args)
        .current_dir(workspace())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the waf binary starts");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin is piped")
            .write_all(input)
            .expect("stdin accepts the request");
    }
    child.wait_with_output().expect("waf finishes")
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A scratch folder of rule files, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str, files: &[(&str, &str)]) -> Scratch {
        let dir = std::env::temp_dir().join(format!("waf-cli-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        for (file, text) in files {
            std::fs::write(dir.join(file), text).expect("rule file written");
        }
        Scratch(dir)
    }

    fn path(&self) -> &str {
        self.0.to_str().expect("temp paths are UTF-8 here")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn check_accepts_the_bundled_rules() {
    let out = waf(&["rules", "check", "rules/"], None);
    assert!(out.status.success(), "{}", stdout(&out));
    assert!(stdout(&out).starts_with("ok: "), "{}", stdout(&out));
}

#[test]
fn check_reports_every_broken_file_with_file_line_and_rule() {
    let dir = Scratch::new(
        "check",
        &[
            (
                "a.yaml",
                "rules:\n  - id: 1\n    targets: [args]\n    match: {rx: 'ok'}\n  - id: 2\n    targets: [args]\n    match: {rx: '(?<=x)y'}\n",
            ),
            ("b.yaml", "rules:\n  - id: 3\n    targets: [argz]\n    match: {rx: 'x'}\n"),
            ("c.yaml", "rules:\n  - id: 4\n    targets: [args]\n    match: {rx: 'fine'}\n"),
        ],
    );
    let out = waf(&["rules", "check", dir.path()], None);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("a.yaml:5:5: rule 2: regex does not compile: "),
        "{text}"
    );
    assert!(text.contains("look-around"), "the reason is given: {text}");
    assert!(
        text.contains("b.yaml:2:5: rule 3: unknown collection `argz`"),
        "{text}"
    );
    assert!(text.contains("2 error(s)"), "{text}");
}

/// One run lists every broken rule: of one file (a regex, a collection, a transformation,
/// a possessive quantifier; a SecLang rule), and of the whole ruleset once every file loaded (a
/// duplicate id, an unknown marker). It used to stop at each file's first and at the ruleset's
/// first.
#[test]
fn check_lists_every_broken_rule_of_a_file_and_of_the_ruleset() {
    let rule = |id: u32, extra: &str, rx: &str| {
        format!("  - id: {id}\n    targets: [args]\n{extra}    match: {{rx: '{rx}'}}\n")
    };
    let file = format!(
        "rules:\n{}{}{}{}{}",
        rule(1, "", "(?<=x)y"),
        rule(2, "", "fine"),
        rule(3, "", "a*+b"),
        rule(4, "    transforms: [lowercasee]\n", "x"),
        rule(5, "", "x").replace("[args]", "[argz]"),
    );
    // And a SecLang file: a broken chain is reported once, not once per rule of it.
    let conf = "SecRule ARGS \"@rx a\" \"id:11,frobnicate,chain\"\n\
                \x20   SecRule ARGS \"@rx b\" \"t:none\"\n\
                SecRule ARGS \"@rx fine\" \"id:12,phase:2,pass\"\n\
                SecRule ARGS \"@rx (c\" \"id:13,phase:2,pass\"\n";
    let dir = Scratch::new("every", &[("a.yaml", file.as_str()), ("b.conf", conf)]);
    let out = waf(&["rules", "check", dir.path()], None);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    let at = |line: &str| {
        lines
            .iter()
            .position(|l| l.contains(line))
            .unwrap_or_else(|| panic!("{line}: {text}"))
    };
    let order = [
        at("a.yaml:2:5: rule 1: regex does not compile: look-around"),
        at("a.yaml:8:5: rule 3: regex does not compile: `a*+` repeats a repetition"),
        at("a.yaml:11:5: rule 4: unknown transformation `lowercasee`"),
        at("a.yaml:15:5: rule 5: unknown collection `argz`"),
        at("b.conf:1:1: rule 11: unknown action `frobnicate`"),
        at("b.conf:4:1: rule 13: @rx does not compile"),
        at("6 error(s)"),
    ];
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{text}");
    assert!(!text.contains("rule 2:"), "{text}");

    let dir = Scratch::new(
        "every-compiled",
        &[(
            "a.yaml",
            "rules:\n  - id: 7\n    targets: [args]\n    match: {rx: 'x'}\n    skip_after: NOWHERE\n  - id: 7\n    targets: [args]\n    match: {rx: 'y'}\n  - id: 8\n    targets: [args]\n    match: {rx: 'z'}\n",
        )],
    );
    let out = waf(&["rules", "check", dir.path()], None);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("a.yaml:6:5: rule 7: duplicate rule id (first defined at "),
        "{text}"
    );
    assert!(
        text.contains("a.yaml:2:5: rule 7: skip_after names unknown marker `NOWHERE`"),
        "{text}"
    );
    assert!(text.contains("2 error(s)"), "{text}");
}

#[test]
fn check_reports_duplicate_ids_and_lists_residual_regexes() {
    let dir = Scratch::new(
        "dup",
        &[(
            "a.yaml",
            "rules:\n  - id: 7\n    targets: [args]\n    match: {rx: '[0-9]{30}'}\n  - id: 7\n    targets: [args]\n    match: {rx: 'x'}\n",
        )],
    );
    let out = waf(&["rules", "check", dir.path()], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("a.yaml:5:5: rule 7: duplicate rule id (first defined at "));

    let dir = Scratch::new(
        "residual",
        &[(
            "a.yaml",
            "rules:\n  - id: 8\n    targets: [args]\n    match: {rx: '[0-9]{30}'}\n  - id: 9\n    targets: [args]\n    match: {rx: '[;|]\\s*\\w+'}\n",
        )],
    );
    let out = waf(&["rules", "check", "--verbose", dir.path()], None);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("a.yaml:2:5: rule 8: condition 1: residual regex (no literal of 2+ bytes gates it; the residual set scans every value)"),
        "{text}"
    );
    assert!(
        text.contains("a.yaml:5:5: rule 9: condition 1: residual regex (no literal of 2+ bytes gates it; it runs on values holding one of \";|\")"),
        "{text}"
    );
    assert!(text.contains("2 residual regexes"), "{text}");

    // A SecLang lookbehind runs on the backtracking matcher: listed, and counted.
    let dir = Scratch::new(
        "backtracking",
        &[(
            "a.conf",
            "SecPcreMatchLimit 5000\nSecRule ARGS \"@rx (?<!&amp);\" \"id:10,phase:2,deny\"\n",
        )],
    );
    let out = waf(&["rules", "check", "--verbose", dir.path()], None);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("a.conf:2:1: rule 10: condition 1: backtracking regex (lookaround, backreference or possessive quantifier; at most 5000 steps a search)"),
        "{text}"
    );
    assert!(text.contains(", 1 backtracking regexes, 0 notes"), "{text}");
}

#[test]
fn test_runs_every_inline_example() {
    let out = waf(&["rules", "test", "rules/"], None);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    let summary = text.lines().last().unwrap_or_default();
    let passed: usize = summary
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(passed >= 20, "{summary}");
    assert!(summary.ends_with(" passed, 0 failed"), "{summary}");
}

#[test]
fn test_reports_a_failing_example_with_its_place() {
    let dir = Scratch::new(
        "tests",
        &[(
            "a.yaml",
            "rules:\n  - id: 9\n    targets: [args]\n    match: {contains: evil}\n    tests:\n      match: ['/?q=evil', '/?q=good']\n      no_match: ['/?q=fine']\n",
        )],
    );
    let out = waf(&["rules", "test", dir.path()], None);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("a.yaml:6:27: rule 9: expected a match for GET /?q=good"),
        "{text}"
    );
    assert!(text.ends_with("2 passed, 1 failed\n"), "{text}");
}

#[test]
fn tokens_counts_the_random_tokens_each_rule_matches() {
    // Rule 21: a digit then `x` or `y`, which random base64 spells often. Rule 22: a word no
    // token spells. Rule 23 would match every token, but only at paranoia level 2.
    let dir = Scratch::new(
        "tokens",
        &[(
            "a.yaml",
            "rules:\n  - id: 21\n    message: noisy\n    targets: [args, request_cookies]\n    match: {rx: '[0-9][xy]'}\n  - id: 22\n    message: quiet\n    targets: [args]\n    match: {contains: '<script'}\n  - id: 23\n    message: higher\n    paranoia: 2\n    targets: [args]\n    match: {rx: '.'}\n",
        )],
    );
    let seeded = [
        "rules",
        "tokens",
        dir.path(),
        "--requests",
        "200",
        "--seed",
        "5",
    ];
    let out = waf(&seeded, None);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("a.yaml:2:5): noisy\n"), "{text}");
    assert!(
        !text.contains("quiet") && !text.contains("higher"),
        "{text}"
    );
    // "  N of 6400 tokens: one in M", then examples with the value and what was found.
    let counts = text
        .lines()
        .find_map(|l| l.trim().split_once(" of 6400 tokens: one in "))
        .unwrap_or_else(|| panic!("no count line: {text}"));
    let matched: u64 = counts.0.parse().unwrap_or(0);
    assert!(matched > 100, "{text}");
    assert!(text.contains(": found \""), "{text}");
    assert!(
        text.contains(
            "6400 random tokens in 200 requests (32 each; seed 5), paranoia 1: 1 rule matched"
        ),
        "{text}"
    );

    // The same seed, the same tokens; another level, another rule.
    assert_eq!(stdout(&waf(&seeded, None)), text);
    let higher = waf(
        &[
            "rules",
            "tokens",
            dir.path(),
            "--requests",
            "20",
            "--paranoia",
            "2",
        ],
        None,
    );
    assert!(
        stdout(&higher).contains("): higher\n"),
        "{}",
        stdout(&higher)
    );
}

#[test]
fn tokens_passes_the_bundled_rules_and_reports_broken_files() {
    let out = waf(&["rules", "tokens", "rules/", "--requests", "2000"], None);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.ends_with("paranoia 1: no rule matched\n"), "{text}");

    let dir = Scratch::new(
        "tokens-broken",
        &[(
            "b.yaml",
            "rules:\n  - id: 3\n    targets: [argz]\n    match: {rx: 'x'}\n",
        )],
    );
    let out = waf(&["rules", "tokens", dir.path()], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("b.yaml:2:5: rule 3: unknown collection `argz`"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn explain_shows_why_an_attack_is_blocked() {
    let out = waf(
        &["explain", "--rules", "rules/", "examples/attack.http"],
        None,
    );
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.starts_with("verdict: block (403) by rule 142100"),
        "{text}"
    );
    assert!(text.contains("target     ARGS:signInName"), "{text}");
    assert!(text.contains("value      admin'--"), "{text}");
    assert!(text.contains("transforms url_decode_uni"), "{text}");
    // The password in the same request is not shown anywhere.
    assert!(!text.contains("Tr0ub4dor"), "{text}");
}

#[test]
fn explain_reads_standard_input_and_passes_clean_requests() {
    let raw = std::fs::read(workspace().join("examples/authorize.http")).expect("example exists");
    let out = waf(&["explain", "--rules", "rules/", "-"], Some(&raw));
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.starts_with("verdict: pass"), "{text}");
}

#[test]
fn explain_says_a_body_that_does_not_parse_as_its_type_is_refused() {
    let raw = "POST /login HTTP/1.1\r\nHost: login.contoso.com\r\n\
               Content-Type: application/json\r\nContent-Length: 5\r\n\r\n{\"a\":";
    let out = waf(&["explain", "--rules", "rules/", "-"], Some(raw.as_bytes()));
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.starts_with("verdict: block (400) because the body does not parse as its type ("),
        "{text}"
    );
}

#[test]
fn explain_says_a_request_past_a_parse_limit_is_refused() {
    let body = format!("{}\"x\"{}", "[".repeat(40), "]".repeat(40));
    let raw = format!(
        "POST /login HTTP/1.1\r\nHost: login.contoso.com\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let out = waf(&["explain", "--rules", "rules/", "-"], Some(raw.as_bytes()));
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.starts_with(
            "verdict: block (400) because the request goes past a parse limit, and what lies \
             beyond was not read (JSON nested deeper than 32 levels"
        ),
        "{text}"
    );
}

#[test]
fn explain_rejects_what_is_not_a_request() {
    let out = waf(
        &["explain", "--rules", "rules/", "-"],
        Some(b"GET / HTTP/1.1\r\nno colon here\r\n\r\n"),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not an HTTP/1.1 request"));
}

/// The table of `waf profile`: (rule id, evaluated %, matched %, values per evaluation,
/// µs per request, of which in scans) per row, costliest first.
fn profile_rows(text: &str) -> Vec<(u32, u32, u32, f64, f64, f64)> {
    let percent = |s: &str| {
        s.trim_end_matches('%')
            .parse::<u32>()
            .unwrap_or_else(|_| panic!("a percentage, not {s:?}"))
    };
    text.lines()
        .skip_while(|l| !l.trim_start().starts_with("rule evaluated"))
        .skip(1)
        .take_while(|l| !l.is_empty())
        .map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(cols.len(), 8, "{l}");
            let id = cols[0].parse().expect("a rule id");
            let values = cols[3].parse().expect("values per evaluation");
            let time = cols[4].parse().expect("µs per request");
            let scans = cols[5].parse().expect("µs per request in scans");
            (id, percent(cols[1]), percent(cols[2]), values, time, scans)
        })
        .collect()
}

#[test]
fn profile_lists_the_costliest_rules_of_the_given_requests() {
    let out = waf(
        &[
            "profile",
            "--rules",
            "rules/",
            "--runs",
            "5",
            "--top",
            "0",
            "examples/authorize.http",
            "examples/attack.http",
        ],
        None,
    );
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.starts_with("2 requests, 5 runs each, "), "{text}");
    assert!(text.contains("every value new on every run"), "{text}");
    assert!(text.contains("examples/authorize.http: passed"), "{text}");
    assert!(
        text.contains("examples/attack.http: blocked by rule 142100"),
        "{text}"
    );
    let rows = profile_rows(&text);
    // The attack decides at 142100, so it ran for both requests and matched one.
    let sqli = rows.iter().find(|r| r.0 == 142100).expect("142100 listed");
    assert_eq!((sqli.1, sqli.2), (100, 50), "{text}");
    // It tested the attack's login name at least; most other rules' gates stayed shut.
    assert!(sqli.3 >= 0.5, "{text}");
    assert!(rows.iter().any(|r| r.3 == 0.0), "{text}");
    // A rule's scans are part of its time; the first rule to need the scans of a chain pays
    // for them, so some rule's time went there.
    assert!(rows.iter().all(|r| r.5 <= r.4), "{text}");
    assert!(rows.iter().any(|r| r.5 > 0.0), "{text}");
    assert!(text.contains(" (in scans "), "{text}");
    // `--top 0` lists every rule evaluated, and each once.
    let listed = format!("{} of the {} rules evaluated\n", rows.len(), rows.len());
    assert!(text.contains(&listed), "{text}");
    let mut ids: Vec<u32> = rows.iter().map(|r| r.0).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), rows.len(), "{text}");
}

#[test]
fn profile_shows_the_top_rules_and_says_how_to_see_more() {
    let out = waf(
        &[
            "profile",
            "--rules",
            "rules/",
            "--runs",
            "3",
            "--top",
            "4",
            "--warm",
            "examples/authorize.http",
        ],
        None,
    );
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("values remembered between runs"), "{text}");
    assert_eq!(profile_rows(&text).len(), 4, "{text}");
    assert!(text.contains("; --top 0 lists them all"), "{text}");
}

#[test]
fn profile_rejects_missing_requests_and_zero_runs() {
    let out = waf(
        &["profile", "--rules", "rules/", "no/such/request.http"],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("reading no/such/request.http"), "{err}");

    let out = waf(
        &[
            "profile",
            "--rules",
            "rules/",
            "--runs",
            "0",
            "examples/authorize.http",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--runs must be at least 1"), "{err}");
}

/// Regression: `waf profile ... | head` panicked ("failed printing to stdout: Broken pipe")
/// when `head` had read enough; every command printed with `println!`.
#[test]
fn a_closed_stdout_is_not_a_panic() {
    for args in [
        &["explain", "--rules", "rules/", "examples/attack.http"][..],
        &[
            "profile",
            "--rules",
            "rules/",
            "--runs",
            "1",
            "examples/authorize.http",
        ][..],
        &["rules", "test", "rules/"][..],
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_waf"))
            .args(args)
            .current_dir(workspace())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the waf binary starts");
        // The reader goes away before the command writes a byte.
        drop(child.stdout.take());
        let out = child.wait_with_output().expect("waf finishes");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
    }
}

/// The built-in config (`bash scripts/run.sh`, or `waf serve` with no `--config`) inspects
/// with `./rules`. Started anywhere else it has no rules; the warning saying so was logged
/// before the log was set up, so it never appeared, and the proxy forwarded attacks in silence.
#[test]
fn the_built_in_config_says_when_it_found_no_rules() {
    let check = |dir: &Path| {
        let out = Command::new(env!("CARGO_BIN_EXE_waf"))
            .args(["serve", "--check"])
            .current_dir(dir)
            .output()
            .expect("the waf binary starts");
        assert!(out.status.success(), "{out:?}");
        stdout(&out)
    };
    let text = check(&workspace());
    assert!(
        text.starts_with("the built-in config: ok: listen 127.0.0.1:8080"),
        "{text}"
    );
    assert!(!text.contains("warning"), "{text}");
    assert!(!text.contains(" 0 rule(s)"), "{text}");

    let elsewhere = Scratch::new("builtin-elsewhere", &[]);
    let text = check(Path::new(elsewhere.path()));
    assert!(
        text.starts_with(
            "warning: no ./rules folder here: the default site inspects nothing and forwards \
             everything (start from the repository, or give --config)\n"
        ),
        "{text}"
    );
    assert!(text.contains("  *: 0 rule(s)"), "{text}");
}

#[test]
fn serve_check_loads_everything_prints_the_sites_and_exits() {
    let config = format!(
        "listen: \"127.0.0.1:1\"\n\
         limits: {{header_timeout_ms: 5000, max_connections_per_client: 50}}\n\
         sites:\n\
         \x20 - hosts: [login.contoso.com]\n\
         \x20   upstream: {{address: \"contoso.ciamlogin.com:443\", tls: true}}\n\
         \x20   rules: [\"{}\"]\n\
         \x20   mode: detect_only\n\
         \x20   rate_limits:\n\
         \x20     - {{name: sign-in, methods: [POST], path: '/SelfAsserted$', requests: 3, per_seconds: 60}}\n\
         \x20 - hosts: [chat.contoso.com]\n\
         \x20   upstream: {{address: \"127.0.0.1:2\"}}\n\
         \x20   websockets: true\n",
        workspace().join("rules").display()
    );
    let dir = Scratch::new(
        "serve-check",
        &[
            ("waf.yaml", &config),
            (
                "broken.yaml",
                "sites:\n  - hosts: [a]\n    upstream: {address: \"a:1\"}\n    rules: [rules]\n",
            ),
        ],
    );
    let config = format!("{}/waf.yaml", dir.path());
    let out = waf(&["serve", "--check", "--config", &config], None);
    let text = stdout(&out);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.starts_with(&format!("{config}: ok: listen 127.0.0.1:1, tls off")),
        "{text}"
    );
    assert!(
        text.contains(
            "  limits: bodies up to 65536 bytes inspected (larger: rejected), heads up to 32768 \
             bytes within 5000 ms, bodies within 30000 ms per 64 KiB, answers taken within \
             60000 ms per write, idle connections closed after 60000 ms, requests per HTTP/1 \
             connection: 1000, connections per client: 50, connections in all: "
        ),
        "{text}"
    );
    // The cap on all connections comes from the open-files limit the proxy would run with,
    // unless the config sets it.
    let under_256_files = |config: &str| {
        let out = Command::new("prlimit")
            .args(["--nofile=256:256", "--", env!("CARGO_BIN_EXE_waf")])
            .args(["serve", "--check", "--config", config])
            .current_dir(workspace())
            .output()
            .expect("prlimit runs");
        stdout(&out)
    };
    let derived = under_256_files(&config);
    assert!(
        derived.contains("connections in all: 192 (the open-files limit, 256, less a reserve)\n"),
        "{derived}"
    );
    let capped = format!("{}/capped.yaml", dir.path());
    std::fs::write(
        &capped,
        std::fs::read_to_string(&config)
            .unwrap()
            .replace("max_connections_per_client: 50", "max_connections: 100"),
    )
    .unwrap();
    let set = under_256_files(&capped);
    assert!(set.contains("connections in all: 100\n"), "{set}");
    assert!(text.contains("  login.contoso.com: "), "{text}");
    assert!(
        text.contains("rule(s) at paranoia level 1, anomaly threshold 5"),
        "{text}"
    );
    assert!(
        text.contains(
            "detect only, bodies that do not parse as their type refused, \
             upstream contoso.ciamlogin.com:443"
        ),
        "{text}"
    );
    assert!(
        text.contains("rate limits: sign-in (3 per 60 s)\n"),
        "{text}"
    );
    // Only a site that forwards WebSocket handshakes says so, with what it costs.
    assert!(
        text.contains(
            "upstream 127.0.0.1:2, WebSocket handshakes forwarded (what follows one is not \
             inspected)\n"
        ),
        "{text}"
    );

    // A broken rule file: named with its line and rule, exit 2, and nothing served.
    std::fs::create_dir_all(dir.0.join("rules")).unwrap();
    std::fs::write(
        dir.0.join("rules/bad.yaml"),
        "rules:\n  - id: 7\n    targets: [argz]\n    match: {rx: 'x'}\n",
    )
    .unwrap();
    let broken = format!("{}/broken.yaml", dir.path());
    let out = waf(&["serve", "--check", "--config", &broken], None);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("sites[0].rules"), "{err}");
    assert!(
        err.contains("bad.yaml:2:5: rule 7: unknown collection `argz`"),
        "{err}"
    );
    assert!(stdout(&out).is_empty());
}
