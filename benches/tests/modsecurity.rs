//! The peer the benchmarks measure, ModSecurity 3 with the CRS 3.3.4 in process: it must be
//! really inspecting (an attack is blocked) for its times to mean anything, and it must pass
//! the clean sign-in requests it is timed on. `scripts/test.sh` installs what it needs.

use waf_benches::modsecurity::ModSecurity;
use waf_benches::{authorize_get, login_post_1k, saml_acs};
use waf_core::Request;

fn peer() -> ModSecurity {
    ModSecurity::with_crs(1).unwrap_or_else(|e| panic!("{e}"))
}

fn form_post(body: &str) -> Request {
    Request::builder()
        .method("POST")
        .uri("/contoso.onmicrosoft.com/B2C_1_signin/SelfAsserted")
        .header("Host", "login.contoso.com")
        .header("User-Agent", "Mozilla/5.0")
        .header("Accept", "*/*")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("Content-Length", body.len().to_string())
        .body(body)
        .build()
}

#[test]
fn the_peer_passes_the_sign_in_requests_it_is_timed_on() {
    let peer = peer();
    for (name, request) in [
        ("authorize_get", authorize_get()),
        ("login_post_1k", login_post_1k()),
        ("saml_acs", saml_acs()),
    ] {
        assert_eq!(peer.inspect(&request).unwrap(), None, "{name}");
    }
}

#[test]
fn the_peer_blocks_attacks_in_the_query_and_in_the_body() {
    let peer = peer();
    let xss = Request::builder()
        .uri("/contoso.onmicrosoft.com/oauth2/v2.0/authorize?state=%3Cscript%3Ealert(1)%3C/script%3E")
        .header("Host", "login.contoso.com")
        .header("User-Agent", "Mozilla/5.0")
        .header("Accept", "*/*")
        .build();
    assert_eq!(peer.inspect(&xss).unwrap(), Some(403));
    let sqli = form_post("signInName=admin%27+or+%271%27%3D%271%27--&password=x");
    assert_eq!(peer.inspect(&sqli).unwrap(), Some(403));
    // The same form without the attack passes: the block was the attack's.
    let clean = form_post("signInName=zoe%40contoso.com&password=Blue-Harbor-2024");
    assert_eq!(peer.inspect(&clean).unwrap(), None);
}

#[test]
fn a_request_the_c_api_cannot_take_is_an_error() {
    let request = Request::builder()
        .uri(b"/a\0b")
        .header("Host", "login.contoso.com")
        .build();
    let error = peer().inspect(&request).unwrap_err();
    assert!(error.to_string().contains("NUL"), "{error}");
}

#[test]
fn two_peers_live_side_by_side_and_clean_up() {
    let (a, b) = (peer(), peer());
    assert_eq!(a.inspect(&authorize_get()).unwrap(), None);
    drop(a);
    assert_eq!(b.inspect(&authorize_get()).unwrap(), None);
}
