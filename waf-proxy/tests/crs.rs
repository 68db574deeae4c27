//! The OWASP Core Rule Set 3.3.4 (Debian's `modsecurity-crs`, installed by `scripts/setup.sh`)
//! loaded by `waf serve` from its own folders: obvious attacks are blocked before the origin,
//! a sign-in passes (with `crs/signin-exclusions.conf` when its password would not), and the
//! site's paranoia level reaches the CRS.

mod common;

use common::{Origin, Proxy, Setup};

const CRS: &str = "[\"/etc/modsecurity/crs/crs-setup.conf\", \"/usr/share/modsecurity-crs/rules\"]";

#[test]
fn crs_loaded_through_the_proxy_blocks_the_obvious_attacks() {
    assert!(
        std::path::Path::new("/usr/share/modsecurity-crs/rules").is_dir(),
        "install the Debian package modsecurity-crs (scripts/setup.sh does)"
    );
    let origin = Origin::start();
    let proxy = Proxy::start(
        &origin,
        Setup {
            rules: CRS.to_string(),
            extra_top: "audit: {path: \"{dir}/audit.jsonl\"}\n".to_string(),
            ..Setup::default()
        },
    );
    let ua = "User-Agent: Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0\r\nAccept: text/html\r\n";
    let clean = proxy.get(
        "login.contoso.com",
        "/contoso.onmicrosoft.com/oauth2/v2.0/authorize?client_id=6731de76-14a6-49ae-97bc-6eba6914391e&response_type=code&scope=openid&state=abc",
        ua,
    );
    assert_eq!(clean.status, 200, "{}", clean.raw);
    assert_eq!(origin.seen().len(), 1);

    for attack in [
        "/?q=1%27%20OR%20%271%27%3D%271",
        "/?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E",
        "/?file=../../../../etc/passwd",
        "/?x=${jndi:ldap://evil.example/a}",
        // A trailing newline: ModSecurity's `@rx` is multi-line, so `$` still holds (930110,
        // 931120); these passed until the SecLang front end gave its regexes the same flags.
        "/?file=..%0A",
        "/?url=http://evil.example/x%3F%0A",
    ] {
        let r = proxy.get("login.contoso.com", attack, ua);
        assert_eq!(r.status, 403, "{attack}: {}", r.raw);
        assert!(r.header("x-request-id").is_some());
    }
    let form = "username=zoe&password=x%27%20UNION%20SELECT%20password%20FROM%20users--&q=%3Cscript%3Ealert(1)%3C/script%3E";
    let r = proxy.post("/login", "application/x-www-form-urlencoded", form);
    assert_eq!(r.status, 403, "{}", r.raw);
    assert_eq!(origin.seen().len(), 1, "the origin saw none of the attacks");

    // The audit log names CRS rules and the blocking evaluation.
    let audit = proxy.audit();
    let ids: Vec<u64> = audit
        .iter()
        .flat_map(|line| line["rules"].as_array().cloned().unwrap_or_default())
        .filter_map(|m| m["id"].as_u64())
        .collect();
    assert!(ids.contains(&949110), "{audit:?}");
    assert!(ids.contains(&942100), "{ids:?}");
}

/// The two CRS rules whose patterns need backtracking, through the proxy: 942130 (a SQL
/// tautology, a backreference and lookaheads; paranoia level 2) and 920120 (a `;` in a
/// multipart file name that ends no HTML entity, a lookbehind; level 1). Each blocks on its
/// own, before the origin, and lets the near miss through. Both never matched before the
/// bounded backtracking matcher. Uploads go to a second site at level 1, where 920121 (any
/// `;` in a file name, level 2) does not run.
#[test]
fn crs_rules_that_need_backtracking_block_through_the_proxy() {
    let origin = Origin::start();
    let proxy = Proxy::start(
        &origin,
        Setup {
            rules: CRS.to_string(),
            site_extra: "    paranoia: 2\n".to_string(),
            extra_sites: format!(
                "  - hosts: [uploads.contoso.com]\n    upstream: {{address: \"127.0.0.1:{}\"}}\n    rules: {CRS}\n    paranoia: 1\n",
                origin.port
            ),
            extra_top: "audit: {path: \"{dir}/audit.jsonl\"}\n".to_string(),
            ..Setup::default()
        },
    );
    let ua = "User-Agent: Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0\r\nAccept: text/html\r\n";
    let upload = |file_name: &str| {
        let body = format!(
            "--b0undary\r\nContent-Disposition: form-data; name=\"upload\"; filename=\"{file_name}\"\r\n\
             Content-Type: text/plain\r\n\r\nhello\r\n--b0undary--\r\n"
        );
        format!(
            "POST /upload HTTP/1.1\r\nHost: uploads.contoso.com\r\n{ua}\
             Content-Type: multipart/form-data; boundary=b0undary\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    };

    assert_eq!(proxy.get("login.contoso.com", "/?a=b,1=2", ua).status, 200);
    assert_eq!(proxy.send(&upload("r&eacute;sum&eacute;.pdf")).status, 200);
    assert_eq!(origin.seen().len(), 2);

    assert_eq!(proxy.get("login.contoso.com", "/?a=b,1=1", ua).status, 403);
    assert_eq!(proxy.send(&upload("file;.txt")).status, 403);
    assert_eq!(origin.seen().len(), 2, "the origin saw neither attack");

    let blocked: Vec<Vec<u64>> = proxy
        .audit()
        .iter()
        .filter(|line| line["action"] == "blocked")
        .map(|line| {
            line["rules"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|m| m["id"].as_u64())
                .filter(|&id| id != 949110)
                .collect()
        })
        .collect();
    assert_eq!(blocked, vec![vec![942130], vec![920120]], "each on its own");
}

/// A B2C `SelfAsserted` sign-in POST, with the `x-ms-cpim-*` cookies and the CSRF header.
fn sign_in_post(sign_in_name: &str, password: &str) -> Vec<u8> {
    let body = format!("request_type=RESPONSE&signInName={sign_in_name}&password={password}");
    format!(
        "POST /contoso.onmicrosoft.com/B2C_1_signin/SelfAsserted?tx=StateProperties=eyJUSUQiOiI1In0&p=B2C_1_signin HTTP/1.1\r\n\
         Host: login.contoso.com\r\n\
         User-Agent: Mozilla/5.0 (Windows NT 10.0; Win64; x64) Firefox/120.0\r\n\
         Accept: application/json, text/javascript, */*; q=0.01\r\n\
         Content-Type: application/x-www-form-urlencoded; charset=UTF-8\r\n\
         X-CSRF-TOKEN: gLncGDsXdDRyXiqruRQmSMSp7Vfo1yDR8UI-H2OzBbQce-zI-k2ONRfOHnACod==\r\n\
         Cookie: x-ms-cpim-csrf=gLncGDsXdDRyXiqruRQmSMSp7Vfo1yDR8UI-H2OzBbQce-zI-k2ONRfOHnACod==; x-ms-cpim-trans=eyJUX0RJQyI6W119\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// `crs/signin-exclusions.conf` in the proxy: a sign-in the CRS alone blocks (a password with
/// `'`, `<` and `--`; a CSRF cookie that ends like an event handler) reaches the origin intact,
/// and an injection in the sign-in name is still blocked before it.
#[test]
fn crs_with_the_sign_in_exclusions_forwards_a_sign_in_the_crs_alone_blocks() {
    let password = "Zq%27%3C3--x%22%3E%3B%20OR%201%3D1";
    let clean = sign_in_post("zoe%40contoso.com", password);
    let attack = sign_in_post("x%27%20OR%20%271%27%3D%271", "Summer2024");

    let origin = Origin::start();
    let alone = Proxy::start(
        &origin,
        Setup {
            rules: CRS.to_string(),
            ..Setup::default()
        },
    );
    assert_eq!(alone.send(&clean).status, 403, "the CRS alone blocks it");
    drop(alone);

    let with = Proxy::start(
        &origin,
        Setup {
            rules: format!(
                "[\"/etc/modsecurity/crs/crs-setup.conf\", \"{}/../crs/signin-exclusions.conf\", \"/usr/share/modsecurity-crs/rules\"]",
                env!("CARGO_MANIFEST_DIR")
            ),
            ..Setup::default()
        },
    );
    let r = with.send(&clean);
    assert_eq!(r.status, 200, "{}", r.raw);
    let seen = origin.seen();
    assert_eq!(seen.len(), 1);
    let arrived = String::from_utf8_lossy(&seen[0].body).into_owned();
    assert!(
        arrived.ends_with(&format!("&password={password}")),
        "{arrived}"
    );

    let r = with.send(&attack);
    assert_eq!(r.status, 403, "{}", r.raw);
    assert_eq!(origin.seen().len(), 1, "the origin never saw the injection");
}

/// The CRS's own regression tests, with the reference settings (paranoia level 4, detection
/// only): 2,378 of the 2,403 stages pass, and 7 are skipped by the test files. Every stage
/// that fails is listed with its reason in docs/crs-compat.md; the stages of the rules that
/// need backtracking (920120, 942130, and the possessive 920600 and 942260) all pass.
#[test]
fn crs_regression_tests_pass_through_waf_ftw() {
    let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/corpus/crs-3.3.4/tests");
    assert!(
        corpus.is_dir(),
        "{} is missing: the CRS corpus is read from ../shared at test time",
        corpus.display()
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_waf"))
        .args([
            "ftw",
            "--rules",
            "/etc/modsecurity/crs/crs-setup.conf",
            "--rules",
            "/usr/share/modsecurity-crs/rules",
            "--paranoia",
            "4",
            "--detection-only",
        ])
        .arg(&corpus)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let overall = stdout
        .lines()
        .find(|l| l.starts_with("overall:"))
        .unwrap_or("");
    println!("{overall}");
    let passed: usize = overall
        .strip_prefix("overall: ")
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "no overall line:\n{stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    assert!(
        passed >= 2_378,
        "{passed} of 2,403 stages pass, fewer than 2,378:\n{stdout}"
    );
    for file in [
        "REQUEST-920-PROTOCOL-ENFORCEMENT/920120.yaml: 3 passed, 0 failed",
        "REQUEST-920-PROTOCOL-ENFORCEMENT/920600.yaml: 11 passed, 0 failed",
        "REQUEST-942-APPLICATION-ATTACK-SQLI/942130.yaml: 8 passed, 0 failed",
        "REQUEST-942-APPLICATION-ATTACK-SQLI/942260.yaml: 22 passed, 0 failed",
    ] {
        assert!(stdout.lines().any(|l| l == file), "not `{file}`:\n{stdout}");
    }
}

/// `waf profile` over the CRS: the costliest rules of a sign-in request, and only the rules of
/// the paranoia level asked for.
#[test]
fn crs_profile_of_a_sign_in_request_follows_the_paranoia_level() {
    let listed = |paranoia: &str| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_waf"))
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
            .args([
                "profile",
                "--rules",
                "/etc/modsecurity/crs/crs-setup.conf",
                "--rules",
                "/usr/share/modsecurity-crs/rules",
                "--paranoia",
                paranoia,
                "--runs",
                "3",
                "--top",
                "0",
                "examples/authorize.http",
            ])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "{text}");
        let rows: Vec<(String, String, String)> = text
            .lines()
            .skip_while(|l| !l.trim_start().starts_with("rule evaluated"))
            .skip(1)
            .take_while(|l| !l.is_empty())
            .map(|l| {
                let c: Vec<&str> = l.split_whitespace().collect();
                (c[0].to_string(), c[1].to_string(), c[2].to_string())
            })
            .collect();
        (text, rows)
    };
    let has = |rows: &[(String, String, String)], id: &str| rows.iter().any(|r| r.0 == id);

    let (text, rows) = listed("1");
    assert!(text.contains("examples/authorize.http: passed"), "{text}");
    // libinjection's SQLi rule runs on every request and stays silent on this one.
    assert!(
        rows.contains(&("942100".into(), "100%".into(), "0%".into())),
        "{text}"
    );
    // 920230 (multiple URL encoding) belongs to paranoia level 2.
    assert!(!has(&rows, "920230"), "{text}");

    // At level 2, 931130 takes the app's own `redirect_uri` for a remote file inclusion.
    let (text, rows) = listed("2");
    assert!(has(&rows, "920230"), "{text}");
    assert!(
        text.contains("examples/authorize.http: blocked by rule 949110"),
        "{text}"
    );
}
