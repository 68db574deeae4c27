//! Helpers shared by the targets (included with `#[path]`; not a target itself).

#![allow(dead_code)]

use waf_core::Request;

/// Whether rule text may make the loader read a file the fuzzer names: `Include`,
/// `@pmFromFile`, `pm_file` and friends take paths, and reading `/dev/zero`, `/dev/stdin`,
/// a FIFO or a huge file under `/proc` or `/sys` would hang or exhaust memory without being a
/// bug. Such inputs are skipped; ordinary paths (missing files, folders) are still tried.
pub fn names_special_files(text: &str) -> bool {
    ["dev/", "proc/", "sys/", "/dev", "/proc", "/sys", "fd/"]
        .iter()
        .any(|p| text.contains(p))
}

/// The raw bytes as a request: the HTTP/1.1 parser first; bytes it refuses (a header line
/// without a colon, a bad chunk size...) become the target of a `GET`, so that no input is
/// wasted on the engine.
pub fn request_from(data: &[u8]) -> Request {
    match waf_core::parse::http1::parse_request(data) {
        Ok(request) => request,
        Err(_) => Request::builder()
            .method("GET")
            .uri(data)
            .header("Host", "login.contoso.com")
            .build(),
    }
}

/// One request with a bit of everything (arguments, cookies, a form body, an attack or two),
/// for the rule-loading targets to run the rules they loaded on.
pub fn sample_request() -> &'static Request {
    static REQUEST: std::sync::OnceLock<Request> = std::sync::OnceLock::new();
    REQUEST.get_or_init(|| {
        Request::builder()
            .method("POST")
            .uri("/login?user=admin%27--&q=%3Cscript%3E")
            .header("Host", "login.contoso.com")
            .header("User-Agent", "sqlmap/1.0")
            .header("Cookie", "session=1; theme=../../etc/passwd")
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body("password=1%27+OR+%271%27%3D%271&cmd=%3Bcat+/etc/passwd")
            .build()
    })
}

/// What holds of every verdict: a decision (block or allow) names the rule that took it, but
/// for the 400 of a body that does not parse as its type, which no rule takes; and no rule is
/// named when nothing was decided.
pub fn check_verdict(verdict: &waf_core::Verdict) {
    let refused_body = verdict.body_error.is_some()
        && verdict.action == waf_core::Action::Block { status: 400 }
        && verdict.decided_by.is_none();
    let decided = !matches!(verdict.action, waf_core::Action::Pass);
    assert_eq!(
        decided,
        verdict.decided_by.is_some() || refused_body,
        "action {:?} decided by {:?}",
        verdict.action,
        verdict.decided_by
    );
}
