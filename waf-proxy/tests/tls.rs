//! TLS on both sides: certificates chosen by SNI for two host names, HTTP/2 to clients, and TLS
//! to the origin verified against a test CA. Every certificate is made at test time (rcgen).

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{curl_h2, https_get, try_curl_h2, Origin, Pki, Proxy, Response, Setup};
use openssl::ssl::{SslConnector, SslMethod, SslStream};

/// A proxy with an HTTPS listener serving `login.contoso.com` and `login.fabrikam.com`, each with
/// its own certificate, both forwarded to `origin`.
fn two_domain_proxy(origin: &Origin, pki: &Pki) -> Proxy {
    two_domain_proxy_with_limits(origin, pki, "")
}

/// [`two_domain_proxy`] with more `limits:` lines.
fn two_domain_proxy_with_limits(origin: &Origin, pki: &Pki, limits_extra: &str) -> Proxy {
    two_domain_proxy_with(origin, pki, limits_extra, "")
}

/// [`two_domain_proxy`] with more `limits:` lines and more top-level keys.
fn two_domain_proxy_with(origin: &Origin, pki: &Pki, limits_extra: &str, top: &str) -> Proxy {
    let dir = tempfile::tempdir().unwrap();
    pki.issue_files(dir.path(), "contoso", &["login.contoso.com"]);
    pki.issue_files(
        dir.path(),
        "fabrikam",
        &["login.fabrikam.com", "*.fabrikam.net"],
    );
    let op = origin.port;
    Proxy::start_in(
        dir,
        origin,
        Setup {
            tls: true,
            extra_top: format!(
                "tls:\n\
                 \x20 listen: \"127.0.0.1:{{tls_port}}\"\n\
                 \x20 certificates:\n\
                 \x20   - {{hosts: [login.contoso.com], cert: contoso.pem, key: contoso.key}}\n\
                 \x20   - {{hosts: [login.fabrikam.com, \"*.fabrikam.net\"], cert: fabrikam.pem, key: fabrikam.key}}\n\
                 {top}"
            ),
            extra_sites: format!(
                "  - hosts: [login.fabrikam.com, id.fabrikam.net]\n\
                 \x20   upstream: {{address: \"127.0.0.1:{op}\"}}\n\
                 \x20   rules: [\"{}\"]\n",
                common::rules_dir().display()
            ),
            limits_extra: limits_extra.to_string(),
            ..Setup::default()
        },
    )
}

/// A proxy with an HTTPS listener serving one `contoso` certificate for `names`, issued into
/// `dir` (where a test may have put files of its own first), and `setup`'s other keys: its
/// `extra_top` goes after the `tls:` block.
fn contoso_tls_proxy(
    dir: tempfile::TempDir,
    origin: &Origin,
    pki: &Pki,
    names: &[&str],
    setup: Setup,
) -> Proxy {
    pki.issue_files(dir.path(), "contoso", names);
    let tls = format!(
        "tls:\n  listen: \"127.0.0.1:{{tls_port}}\"\n  certificates:\n    \
         - {{hosts: [{}], cert: contoso.pem, key: contoso.key}}\n",
        names.join(", ")
    );
    Proxy::start_in(
        dir,
        origin,
        Setup {
            tls: true,
            extra_top: tls + &setup.extra_top,
            ..setup
        },
    )
}

#[test]
fn https_clients_get_the_certificate_of_the_name_they_ask_for() {
    let pki = Pki::new();
    let origin = Origin::start();
    let proxy = two_domain_proxy(&origin, &pki);
    let port = proxy.tls_port.unwrap();
    let ca = pki.write_ca(proxy.dir.path());

    let (r, cn) = https_get(port, "login.contoso.com", &ca, "/authorize?client_id=1");
    assert_eq!(r.status, 200, "{}\n{}", r.raw, proxy.log());
    assert_eq!(cn, "login.contoso.com");
    let (r, cn) = https_get(port, "login.fabrikam.com", &ca, "/authorize?client_id=2");
    assert_eq!(r.status, 200, "{}", r.raw);
    assert_eq!(cn, "login.fabrikam.com");
    // A wildcard name.
    let (r, cn) = https_get(port, "id.fabrikam.net", &ca, "/authorize?client_id=3");
    assert_eq!(r.status, 200, "{}", r.raw);
    assert_eq!(cn, "login.fabrikam.com");

    let seen = origin.seen();
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert_eq!(seen[0].header("host"), Some("login.contoso.com"));
    assert_eq!(seen[0].header("x-forwarded-proto"), Some("https"));
    assert_eq!(
        seen[0].header("x-forwarded-host"),
        Some("login.contoso.com")
    );
    assert_eq!(seen[1].header("host"), Some("login.fabrikam.com"));

    // Attacks over TLS are blocked like any other.
    let (r, _) = https_get(
        port,
        "login.fabrikam.com",
        &ca,
        "/authorize?state=1%27%20OR%20%271%27%3D%271",
    );
    r.assert_block_page();
    assert_eq!(origin.seen().len(), 3);
}

#[test]
fn http2_clients_are_served_and_their_bodies_inspected_before_forwarding() {
    let pki = Pki::new();
    let origin = Origin::start();
    let proxy = two_domain_proxy(&origin, &pki);
    let port = proxy.tls_port.unwrap();
    let ca = pki.write_ca(proxy.dir.path());

    let (status, version, body) = curl_h2(port, "login.contoso.com", &ca, "/authorize?x=1", &[]);
    assert_eq!(
        (status, version.as_str()),
        (200, "2"),
        "{body}\n{}",
        proxy.log()
    );
    assert_eq!(body, "origin");

    // A clean form POST over HTTP/2 arrives whole.
    let form = "request_type=RESPONSE&signInName=zoe%40contoso.com&password=S3cr3t%21";
    let (status, version, _) = curl_h2(
        port,
        "login.contoso.com",
        &ca,
        "/contoso.onmicrosoft.com/B2C_1_signin/SelfAsserted",
        &[
            "--data-binary",
            form,
            "-H",
            "Content-Type: application/x-www-form-urlencoded",
        ],
    );
    assert_eq!((status, version.as_str()), (200, "2"), "{}", proxy.log());
    let seen = origin.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].method, "POST");
    assert_eq!(String::from_utf8_lossy(&seen[1].body), form);

    // An attack in an HTTP/2 body is blocked before anything is forwarded.
    let (status, version, body) = curl_h2(
        port,
        "login.contoso.com",
        &ca,
        "/contoso.onmicrosoft.com/signup/v1.0/start",
        &[
            "--data-binary",
            r#"{"username": "1' OR '1'='1"}"#,
            "-H",
            "Content-Type: application/json",
            "-H",
            "Accept: application/json",
        ],
    );
    assert_eq!((status, version.as_str()), (403, "2"), "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["request_id"].as_str().map(str::len), Some(16));
    assert_eq!(origin.seen().len(), 2, "{:?}", origin.seen());
}

/// An HTTP/2 client may send its cookies as several `cookie` fields; an HTTP/1.1 upstream must
/// get them as one header (RFC 9113 section 8.2.3). Pingora forwarded each as its own
/// `Cookie` header, and an upstream that reads one lost the others (a session cookie).
/// An upstream answer whose length is a list of equal numbers (`Content-Length: 6, 6`) reaches
/// the client with the one number. Pingora framed the body by the list and passed the header on
/// as it came: over HTTP/2 it then reset the stream (`PROTOCOL_ERROR`), so the answer never
/// reached the browser.
#[test]
fn an_upstream_length_list_reaches_the_client_as_one_number() {
    let pki = Pki::new();
    let origin = Origin::start();
    let proxy = two_domain_proxy(&origin, &pki);
    let ca = pki.write_ca(proxy.dir.path());
    let one_length = |head: &str| {
        let lengths: Vec<&str> = head
            .lines()
            .filter_map(|l| l.split_once(':'))
            .filter(|(n, _)| n.trim().eq_ignore_ascii_case("content-length"))
            .map(|(_, v)| v.trim())
            .collect();
        assert_eq!(lengths, ["6"], "{head}");
    };

    // HTTP/1.1, twice on one connection: the first body ended where its length said.
    let mut s = TcpStream::connect(("127.0.0.1", proxy.port)).unwrap();
    for _ in 0..2 {
        s.write_all(b"GET /length-list HTTP/1.1\r\nHost: login.contoso.com\r\n\r\n")
            .unwrap();
        let r = Response::read_head(&mut s);
        assert_eq!(r.status, 200, "{}", r.raw);
        one_length(&r.raw);
        let mut body = [0u8; 6];
        s.read_exact(&mut body).unwrap();
        assert_eq!(&body, b"origin");
    }

    // HTTP/2.
    let head = proxy.dir.path().join("h2-head.txt");
    let (status, version, body) = curl_h2(
        proxy.tls_port.unwrap(),
        "login.contoso.com",
        &ca,
        "/length-list",
        &["-D", head.to_str().unwrap()],
    );
    assert_eq!(
        (status, version.as_str(), body.as_str()),
        (200, "2", "origin")
    );
    one_length(&std::fs::read_to_string(&head).unwrap());
    assert_eq!(origin.seen().len(), 3);
}

/// Answers an HTTP/2 stream cannot carry as they came: a `101` to a request that asked for no
/// upgrade (HTTP/2 has no 101), and a `204` with a `Content-Length`. Pingora passed both on and
/// the client's stream was reset (`PROTOCOL_ERROR`); over HTTP/1.1 the 101 reached the client,
/// and the connection closed. Now the 101 is a 502 with the proxy's page, and the 204 loses its
/// length, over either protocol.
#[test]
fn an_upstream_101_or_204_with_a_length_does_not_break_the_answer() {
    let pki = Pki::new();
    let origin = Origin::start();
    let proxy = two_domain_proxy(&origin, &pki);
    let ca = pki.write_ca(proxy.dir.path());
    let port = proxy.tls_port.unwrap();

    let r = proxy.get("login.contoso.com", "/switch", "");
    assert_eq!(r.status, 502, "{}", r.raw);
    assert!(
        r.header("x-request-id")
            .is_some_and(|id| r.body.contains(id)),
        "{}",
        r.raw
    );
    let (status, version, body) = curl_h2(port, "login.contoso.com", &ca, "/switch", &[]);
    assert_eq!(
        (status, version.as_str()),
        (502, "2"),
        "{body}\n{}",
        proxy.log()
    );

    let r = proxy.get("login.contoso.com", "/no-content", "");
    assert_eq!(r.status, 204, "{}", r.raw);
    assert_eq!(r.header("content-length"), None, "{}", r.raw);
    let head = proxy.dir.path().join("h2-head.txt");
    let (status, version, body) = curl_h2(
        port,
        "login.contoso.com",
        &ca,
        "/no-content",
        &["-D", head.to_str().unwrap()],
    );
    assert_eq!((status, version.as_str(), body.as_str()), (204, "2", ""));
    let head = std::fs::read_to_string(&head).unwrap();
    assert!(
        !head.to_ascii_lowercase().contains("content-length"),
        "{head}"
    );
    assert_eq!(origin.seen().len(), 4);
    // The upstream's misstep is counted as its failure.
    assert!(
        proxy.log().contains("upstream switched protocols"),
        "{}",
        proxy.log()
    );
}

/// Over HTTP/2, `:path: *` is for `OPTIONS` alone: a `GET *` went upstream as `GET *`, and is
/// refused now, as over HTTP/1.1 (`a_target_in_no_form_of_its_method_is_refused_on_every_site`).
#[test]
fn an_http2_get_of_star_is_refused() {
    let pki = Pki::new();
    let origin = Origin::start();
    let proxy = two_domain_proxy(&origin, &pki);
    let ca = pki.write_ca(proxy.dir.path());
    let port = proxy.tls_port.unwrap();
    let star = ["--request-target", "*"];
    let (status, version, body) = curl_h2(port, "login.contoso.com", &ca, "", &star);
    assert_eq!((status, version.as_str()), (400, "2"), "{body}");
    assert!(origin.seen().is_empty());
    let options = ["--request-target", "*", "-X", "OPTIONS"];
    let (status, _, body) = curl_h2(port, "login.contoso.com", &ca, "", &options);
    assert_eq!(status, 200, "{body}\n{}", proxy.log());
    let seen = origin.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        (seen[0].method.as_str(), seen[0].target.as_str()),
        ("OPTIONS", "*")
    );
}

#[test]
fn http2_cookie_crumbs_reach_the_upstream_as_one_cookie_header() {
    let pki = Pki::new();
    let origin = Origin::start();
    let proxy = two_domain_proxy(&origin, &pki);
    let port = proxy.tls_port.unwrap();
    let ca = pki.write_ca(proxy.dir.path());

    let crumbs = [
        "-H",
        "Cookie: x-ms-cpim-sso:contoso.onmicrosoft.com_0=m1.AbCdEf",
        "-H",
        "Cookie: x-ms-cpim-dc=cpim-weu",
        "-H",
        "Cookie: ai_user=Wd3kP|2024-05-20T09:41:07.118Z",
    ];
    let (status, version, body) = curl_h2(port, "login.contoso.com", &ca, "/authorize", &crumbs);
    assert_eq!(
        (status, version.as_str()),
        (200, "2"),
        "{body}\n{}",
        proxy.log()
    );
    let seen = origin.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].header_count("cookie"), 1, "{:?}", seen[0].headers);
    assert_eq!(
        seen[0].header("cookie"),
        Some(
            "x-ms-cpim-sso:contoso.onmicrosoft.com_0=m1.AbCdEf; x-ms-cpim-dc=cpim-weu; \
             ai_user=Wd3kP|2024-05-20T09:41:07.118Z"
        )
    );

    // The rules read every crumb's cookies: an attack in the last one is blocked.
    let (status, version, _) = curl_h2(
        port,
        "login.contoso.com",
        &ca,
        "/authorize",
        &[
            "-H",
            "Cookie: a=1",
            "-H",
            "Cookie: b=1' UNION SELECT password FROM users--",
        ],
    );
    assert_eq!((status, version.as_str()), (403, "2"), "{}", proxy.log());
    assert_eq!(origin.seen().len(), 1);
}

#[test]
fn tls_to_the_origin_sends_sni_and_verifies_against_the_configured_ca() {
    let pki = Pki::new();
    let tls_origin = Origin::start_tls(pki.acceptor(&["origin.test"]));
    let ca_dir = tempfile::tempdir().unwrap();
    let ca_file = pki.write_ca(ca_dir.path());
    let plain = Origin::start();
    let op = tls_origin.port;
    let ca = ca_file.display();
    let rules = common::rules_dir();
    let rules = rules.display();
    let proxy = Proxy::start(
        &plain,
        Setup {
            extra_sites: format!(
                "  - hosts: [tls.contoso.com]\n\
                 \x20   upstream: {{address: \"127.0.0.1:{op}\", tls: true, sni: origin.test, ca_file: \"{ca}\"}}\n\
                 \x20   rules: [\"{rules}\"]\n\
                 \x20 - hosts: [noca.contoso.com]\n\
                 \x20   upstream: {{address: \"127.0.0.1:{op}\", tls: true, sni: origin.test}}\n\
                 \x20 - hosts: [wrongname.contoso.com]\n\
                 \x20   upstream: {{address: \"127.0.0.1:{op}\", tls: true, sni: other.test, ca_file: \"{ca}\"}}\n\
                 \x20 - hosts: [noverify.contoso.com]\n\
                 \x20   upstream: {{address: \"127.0.0.1:{op}\", tls: true, sni: origin.test, verify: false}}\n\
                 \x20   host_header: upstream\n"
            ),
            ..Setup::default()
        },
    );

    // Verified against the configured CA, with the configured SNI; Host is the client's.
    let r = proxy.get("tls.contoso.com", "/authorize?x=1", "");
    assert_eq!(r.status, 200, "{}\n{}", r.raw, proxy.log());
    let seen = tls_origin.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].sni.as_deref(), Some("origin.test"));
    assert_eq!(seen[0].header("host"), Some("tls.contoso.com"));
    assert_eq!(seen[0].header("x-forwarded-for"), Some("127.0.0.1"));

    // Verification is on by default: the test CA is not among the system's.
    let r = proxy.get("noca.contoso.com", "/", "");
    assert_eq!(r.status, 502, "{}", r.raw);
    // The certificate must name the SNI host.
    let r = proxy.get("wrongname.contoso.com", "/", "");
    assert_eq!(r.status, 502, "{}", r.raw);
    assert_eq!(
        tls_origin.seen().len(),
        1,
        "no request over an unverified connection"
    );

    // verify: false connects anyway; host_header: upstream sends the upstream's name.
    let r = proxy.get("noverify.contoso.com", "/", "");
    assert_eq!(r.status, 200, "{}", r.raw);
    let seen = tls_origin.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].header("host"), Some("origin.test"));
    assert_eq!(
        seen[1].header("x-forwarded-host"),
        Some("noverify.contoso.com")
    );

    // Attacks never reach a TLS origin either.
    let r = proxy.get("tls.contoso.com", "/?q=1%27%20OR%20%271%27%3D%271", "");
    r.assert_block_page();
    assert_eq!(tls_origin.seen().len(), 2);
    assert!(plain.seen().is_empty());
}

/// A TLS connection to `login.contoso.com` on `port`, offering `alpn` (wire format), whose
/// reads give up after 100 ms.
fn tls_connect(port: u16, ca: &Path, alpn: Option<&[u8]>) -> SslStream<TcpStream> {
    let mut builder = SslConnector::builder(SslMethod::tls()).unwrap();
    builder.set_ca_file(ca).unwrap();
    if let Some(alpn) = alpn {
        builder.set_alpn_protos(alpn).unwrap();
    }
    let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    builder
        .build()
        .connect("login.contoso.com", tcp)
        .expect("TLS handshake")
}

/// Slowloris over TLS: the head deadline holds behind the handshake too, and HTTP/2 (which the
/// deadline leaves alone) is still served.
#[test]
fn slowloris_over_tls_loses_its_connection_too() {
    let pki = Pki::new();
    let origin = Origin::start();
    let proxy = two_domain_proxy_with_limits(&origin, &pki, "  header_timeout_ms: 1000\n");
    let port = proxy.tls_port.unwrap();
    let ca = pki.write_ca(proxy.dir.path());

    let mut s = tls_connect(port, &ca, None);
    s.write_all(b"GET /authorize HTTP/1.1\r\nHost: login.contoso.com\r\n")
        .unwrap();
    let started = Instant::now();
    loop {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the connection stayed open: {}",
            proxy.log()
        );
        if s.write_all(b"X").is_err() {
            break;
        }
        let mut buf = [0u8; 256];
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => panic!("an answer: {:?}", String::from_utf8_lossy(&buf[..n])),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert!(origin.seen().is_empty());
    assert_eq!(proxy.metric("waf_request_head_timeouts_total"), 1.0);

    let (r, _) = https_get(port, "login.contoso.com", &ca, "/authorize?client_id=1");
    assert_eq!(r.status, 200, "{}", r.raw);
    let (status, version, _) = curl_h2(
        port,
        "login.contoso.com",
        &ca,
        "/authorize?client_id=2",
        &[],
    );
    assert_eq!((status, version.as_str()), (200, "2"));
    assert_eq!(origin.seen().len(), 2);
}

/// Port scanners, plain HTTP sent to the HTTPS port, clients that leave in the middle of a
/// request head: Pingora logged each as an `ERROR` line, so a scan of a public sign-in domain
/// flooded the log and paged whoever alerts on errors. They are counted, and summed up in one
/// `INFO` line per `client_faults_log_seconds`.
#[test]
fn client_faults_are_counted_and_summed_up_not_logged_as_errors_one_by_one() {
    let pki = Pki::new();
    let origin = Origin::start();
    let faults = |proxy: &Proxy| {
        // Plain HTTP to the HTTPS port: the handshake fails.
        let mut s = TcpStream::connect(("127.0.0.1", proxy.tls_port.unwrap())).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(b"GET /authorize HTTP/1.1\r\nHost: login.contoso.com\r\n\r\n")
            .unwrap();
        let _ = s.read_to_end(&mut Vec::new());
        // Half a head, then gone.
        let mut s = TcpStream::connect(("127.0.0.1", proxy.port)).unwrap();
        s.write_all(b"GET /authorize HTTP/1.1\r\nHost: login.con")
            .unwrap();
        drop(s);
        // A head, 5 bytes of a 100-byte body, then gone.
        let mut s = TcpStream::connect(("127.0.0.1", proxy.port)).unwrap();
        s.write_all(
            b"POST /login HTTP/1.1\r\nHost: login.contoso.com\r\n\
              Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nname=",
        )
        .unwrap();
        drop(s);
        // The harness's own probe of the HTTPS port (a connection closed unspoken) is a failed
        // handshake too.
        proxy.wait_until(Duration::from_secs(10), || {
            proxy.metric("waf_client_faults_total{kind=\"tls_handshake\"}") >= 2.0
                && proxy.metric("waf_client_faults_total{kind=\"request_head\"}") == 1.0
                && proxy.metric("waf_client_faults_total{kind=\"abandoned\"}") == 1.0
        });
    };

    let proxy = two_domain_proxy_with(&origin, &pki, "", "client_faults_log_seconds: 1\n");
    faults(&proxy);
    // The faults may straddle two summaries.
    let summaries = || -> String {
        let log = proxy.log();
        let lines = log.lines().filter(|l| l.contains("client faults"));
        lines.collect::<Vec<_>>().join("\n")
    };
    proxy.wait_until(Duration::from_secs(10), || {
        let summaries = summaries();
        summaries.contains(" TLS handshake")
            && summaries.contains("1 request head cut short")
            && summaries.contains("1 request abandoned by its client")
    });
    let summaries = summaries();
    for line in summaries.lines() {
        assert!(
            line.contains(" INFO ") && line.contains("; the last: "),
            "{line}"
        );
    }
    let log = proxy.log();
    assert!(!log.contains(" ERROR "), "{log}");
    let r = proxy
        .send(b"GET /authorize HTTP/1.1\r\nHost: login.contoso.com\r\nConnection: close\r\n\r\n");
    assert_eq!(r.status, 200, "{}", r.raw);

    // With 0, each is logged as Pingora logs it, and still counted.
    let proxy = two_domain_proxy_with(&origin, &pki, "", "client_faults_log_seconds: 0\n");
    faults(&proxy);
    proxy.wait_until(Duration::from_secs(10), || {
        let log = proxy.log();
        log.contains(" ERROR waf::serve::client_faults: TLS handshake with 127.0.0.1:")
            && log.contains("http request")
            && log.contains(" ERROR pingora_proxy: Fail to proxy: Downstream ConnectionClosed")
            && log.contains(" ERROR waf::serve::client_faults: Downstream ConnectionClosed")
            && log.contains("body remaining to read, POST /login from 127.0.0.1")
    });
    assert!(!proxy.log().contains("client faults"));
}

/// A client that connected to the HTTPS port and sent nothing, or a `ClientHello` a byte at a
/// time, held its connection for the 60 s Pingora gives a handshake, past every deadline and
/// cap of ours and uncounted (seen: closed after 60.0 s with both deadlines at 2 s). The
/// handshake is now the proxy's: it runs once the connection is counted and capped, and has
/// `header_timeout_ms` to finish.
#[test]
fn a_silent_or_trickling_tls_client_loses_its_connection_after_the_header_timeout() {
    let pki = Pki::new();
    let origin = Origin::start();
    let proxy = two_domain_proxy_with_limits(
        &origin,
        &pki,
        "  header_timeout_ms: 1000\n  max_connections_per_client: 2\n",
    );
    let port = proxy.tls_port.unwrap();
    let ca = pki.write_ca(proxy.dir.path());
    // The harness's probe of the port is gone before this starts.
    proxy.wait_until(Duration::from_secs(10), || {
        proxy.metric("waf_client_connections") == 0.0
    });
    let connect = || {
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        s
    };
    let mut silent = connect();
    let mut trickling = connect();
    let started = Instant::now();
    // The first bytes of a TLS handshake record, one every 100 ms.
    let record_start = [
        0x16u8, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
    ];
    let trickle = std::thread::spawn(move || {
        for b in record_start {
            if trickling.write_all(&[b]).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        open_for(&mut trickling)
    });
    // Both are counted, and so held to the cap: a third from the same address is refused.
    proxy.wait_until(Duration::from_secs(5), || {
        proxy.metric("waf_client_connections") == 2.0
    });
    let mut third = connect();
    third
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    assert!(matches!(third.read(&mut [0u8; 8]), Ok(0) | Err(_)));
    assert_eq!(
        proxy.metric("waf_connections_refused_total{limit=\"max_connections_per_client\"}"),
        1.0
    );

    // Both are closed at the deadline, not after 60 s (`open_for` gives up at 10).
    open_for(&mut silent);
    let silent_for = started.elapsed();
    trickle.join().unwrap();
    let trickling_for = started.elapsed();
    assert!(
        silent_for >= Duration::from_millis(900) && silent_for < Duration::from_secs(5),
        "{silent_for:?}"
    );
    assert!(trickling_for < Duration::from_secs(5), "{trickling_for:?}");
    proxy.wait_until(Duration::from_secs(5), || {
        proxy.metric("waf_client_faults_total{kind=\"tls_handshake\"}") >= 2.0
            && proxy.metric("waf_client_connections") == 0.0
    });
    // A client that completes its handshake is served.
    let (r, _) = https_get(port, "login.contoso.com", &ca, "/authorize?client_id=1");
    assert_eq!(r.status, 200, "{}", r.raw);
}

/// How long `stream` stays open while the test sends nothing (at most 10 s): reads until the
/// proxy closes it.
fn open_for(stream: &mut impl Read) -> Duration {
    let started = Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        assert!(started.elapsed() < Duration::from_secs(10), "still open");
        match stream.read(&mut buf) {
            Ok(0) => return started.elapsed(),
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return started.elapsed(),
        }
    }
}

/// Idle connections are closed after `idle_timeout_ms`, over HTTP/1 and HTTP/2. Pingora kept
/// an HTTP/2 connection that never sent a request open for good (seen open after 75 s).
#[test]
fn idle_connections_are_closed_after_the_idle_timeout() {
    let pki = Pki::new();
    let origin = Origin::start();
    let proxy = two_domain_proxy_with_limits(&origin, &pki, "  idle_timeout_ms: 1000\n");
    let ca = pki.write_ca(proxy.dir.path());
    let idle = Duration::from_millis(900)..Duration::from_secs(5);

    // HTTP/1: a connection that never sends a request, and one idle after its first.
    let mut s = TcpStream::connect(("127.0.0.1", proxy.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let open = open_for(&mut s);
    assert!(idle.contains(&open), "{open:?}");
    let mut s = TcpStream::connect(("127.0.0.1", proxy.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET /authorize HTTP/1.1\r\nHost: login.contoso.com\r\n\r\n")
        .unwrap();
    let r = Response::read_from(&mut s);
    assert_eq!(r.status, 200, "{}", r.raw);
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let open = open_for(&mut s);
    assert!(idle.contains(&open), "{open:?}");

    // HTTP/2 over TLS: the client preface and its settings, then nothing.
    let mut s = tls_connect(proxy.tls_port.unwrap(), &ca, Some(b"\x02h2"));
    assert_eq!(s.ssl().selected_alpn_protocol(), Some(&b"h2"[..]));
    s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .unwrap();
    let open = open_for(&mut s);
    assert!(idle.contains(&open), "{open:?}");
    assert_eq!(origin.seen().len(), 1);
}

/// The HTTP/2 side of `a_client_that_reads_nothing_of_its_answer_is_cut_off_after_the_send_timeout`
/// (`proxy.rs`): a stream whose client takes next to nothing of a large answer (curl reading a
/// byte a second) is cut once a write of it has waited `send_timeout_ms`, and the upstream
/// connection that fed it is let go, while the client is still there.
#[test]
fn an_http2_stream_whose_client_reads_nothing_is_cut_off_after_the_send_timeout() {
    // An upstream that sends a 64 MiB answer, and says when the proxy stopped taking it.
    let (upstream_port, upstream_let_go) = common::large_answer_upstream();
    let pki = Pki::new();
    let origin = Origin::start();
    let proxy = contoso_tls_proxy(
        tempfile::tempdir().unwrap(),
        &origin,
        &pki,
        &["login.contoso.com", "big.contoso.com"],
        Setup {
            limits_extra: "  send_timeout_ms: 1000\n".into(),
            extra_sites: format!(
                "  - hosts: [big.contoso.com]\n    upstream: {{address: \"127.0.0.1:{upstream_port}\"}}\n"
            ),
            ..Setup::default()
        },
    );
    let port = proxy.tls_port.unwrap();
    let ca = pki.write_ca(proxy.dir.path());
    let curl = std::thread::spawn(move || {
        try_curl_h2(
            port,
            "big.contoso.com",
            &ca,
            "/big",
            &["--limit-rate", "1", "-o", "/dev/null"],
        )
    });
    // The cut comes while curl still waits (its own limit is 20 s).
    proxy.wait_until(Duration::from_secs(10), || {
        proxy.metric("waf_client_faults_total{kind=\"abandoned\"}") >= 1.0
    });
    upstream_let_go
        .recv_timeout(Duration::from_secs(5))
        .expect("the upstream connection is let go");
    assert!(!curl.is_finished());
}

/// The HTTP/2 side of `a_body_forwarded_as_it_arrives_is_answered_408_when_it_falls_behind`
/// (`proxy.rs`): a body past the inspection limit, forwarded as it arrives, that falls behind
/// the pace is answered 408; one sent briskly arrives whole.
#[test]
fn an_http2_body_forwarded_as_it_arrives_is_answered_408_when_it_falls_behind() {
    let pki = Pki::new();
    let origin = Origin::start();
    let dir = tempfile::tempdir().unwrap();
    let body = dir.path().join("upload.bin");
    std::fs::write(&body, vec![b'a'; 8000]).unwrap();
    let proxy = contoso_tls_proxy(
        dir,
        &origin,
        &pki,
        &["login.contoso.com"],
        Setup {
            large_body: "pass",
            limits_extra: "  body_timeout_ms: 1000\n".into(),
            extra_top: "audit: {path: \"{dir}/audit.jsonl\", all_requests: false}\n".into(),
            ..Setup::default()
        },
    );
    let port = proxy.tls_port.unwrap();
    let ca = pki.write_ca(proxy.dir.path());
    let upload = |extra: &[&str]| {
        let data = format!("@{}", body.display());
        let mut args = vec![
            "--data-binary",
            data.as_str(),
            "-H",
            "Content-Type: application/octet-stream",
        ];
        args.extend_from_slice(extra);
        let started = Instant::now();
        let answer = try_curl_h2(port, "login.contoso.com", &ca, "/upload", &args);
        (answer, started.elapsed())
    };
    // 8000 bytes at 2000 bytes/s (curl sends a second's worth at a time): 4 s, against a
    // deadline of 1 s.
    let ((status, version, page, failure), elapsed) = upload(&["--limit-rate", "2000"]);
    // The proxy answers 408 and ends its half of the stream, then resets the client's half
    // with `NO_ERROR`, as RFC 9113 (8.1) has a server do when it answers before the request
    // is complete. curl 7.88 (Debian 12) takes that reset for an error and drops the answer
    // (error 92), so either is accepted here; the audit line says what the proxy did.
    if failure.is_none() {
        assert_eq!((status, version.as_str()), (408, "2"), "{page}");
        assert!(page.contains("did not arrive in time"), "{page}");
    } else {
        assert!(
            failure.as_deref().is_some_and(|f| f.contains("(92)")),
            "{failure:?}"
        );
    }
    assert!(elapsed < Duration::from_millis(3500), "{elapsed:?}");
    assert!(origin.seen().is_empty());
    proxy.wait_until(Duration::from_secs(5), || !proxy.audit().is_empty());
    let audit = proxy.audit();
    assert_eq!(audit[0]["status"], 408, "{audit:?}");
    assert_eq!(audit[0]["body"], "timed out");
    let ((status, _, _, failure), _) = upload(&[]);
    assert_eq!((status, failure), (200, None), "{}", proxy.log());
    assert_eq!(origin.seen().len(), 1);
    assert_eq!(origin.seen()[0].body.len(), 8000);
}

/// An HTTP/2 body forwarded as it arrives that stops altogether: Pingora has no read timeout
/// for HTTP/2 streams, so the upstream, waiting for the rest, times out first. That was
/// counted as a failure of the upstream's (502, `waf_upstream_errors_total`); it is the
/// client's, and answered 408 like a body that falls behind.
#[test]
fn an_http2_body_that_stops_is_the_clients_fault_not_the_upstreams() {
    let pki = Pki::new();
    let origin = Origin::start();
    let open = Origin::start();
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("body.fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let proxy = contoso_tls_proxy(
        dir,
        &origin,
        &pki,
        &["login.contoso.com", "open.contoso.com"],
        Setup {
            extra_top: "audit: {path: \"{dir}/audit.jsonl\", all_requests: false}\n".into(),
            extra_sites: format!(
                "  - hosts: [open.contoso.com]\n\
                 \x20   upstream: {{address: \"127.0.0.1:{}\", read_timeout_ms: 1500}}\n\
                 \x20   rules: []\n",
                open.port
            ),
            ..Setup::default()
        },
    );
    let port = proxy.tls_port.unwrap();
    let ca = pki.write_ca(proxy.dir.path());
    // Ten bytes of the body, then nothing for 5 s, the pipe held open.
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            let mut w = std::fs::OpenOptions::new().write(true).open(fifo).unwrap();
            let _ = w.write_all(b"name=alice");
            std::thread::sleep(Duration::from_secs(5));
        })
    };
    let upload = fifo.display().to_string();
    let (status, _, _, failure) = try_curl_h2(
        port,
        "open.contoso.com",
        &ca,
        "/upload",
        &["-X", "POST", "-T", &upload, "--max-time", "4"],
    );
    // curl 7.88 does not show the answer: as in the test above it may take the stream's
    // reset for an error (92), and with its upload source stalled it may not read the
    // answer at all (28, its own timeout). What the proxy did is in the audit line.
    assert!(status == 408 || failure.is_some(), "{status}");
    proxy.wait_until(Duration::from_secs(5), || !proxy.audit().is_empty());
    let audit = proxy.audit();
    assert_eq!(audit[0]["status"], 408, "{audit:?}");
    assert_eq!(audit[0]["body"], "timed out");
    assert_eq!(audit[0]["action"], "rejected");
    // The upstream's read timeout (1.5 s) ended it, not curl's.
    let total = audit[0]["durations_ms"]["total"].as_f64().unwrap_or(0.0);
    assert!((1400.0..3500.0).contains(&total), "{total}");
    assert_eq!(
        proxy.metric("waf_upstream_errors_total{site=\"open.contoso.com\"}"),
        0.0
    );
    assert!(open.seen().is_empty());
    let _ = writer.join();
}

/// One HTTP/2 frame: its nine-byte header, then its payload.
fn h2_frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut frame = (payload.len() as u32).to_be_bytes()[1..].to_vec();
    frame.extend([kind, flags]);
    frame.extend(stream.to_be_bytes());
    frame.extend(payload);
    frame
}

/// An HPACK header block of literal fields without indexing, neither name nor value Huffman
/// coded: all a test's request needs, with no encoder to trust (names and values under 127
/// bytes).
fn hpack_literals(fields: &[(&str, &str)]) -> Vec<u8> {
    let mut block = Vec::new();
    for (name, value) in fields {
        block.push(0);
        for s in [name, value] {
            block.push(s.len() as u8);
            block.extend(s.as_bytes());
        }
    }
    block
}

/// Reads HTTP/2 frames until one of `kind` on `stream`, for up to 5 s: its flags and payload.
fn read_h2_frame_until(stream: &mut impl Read, kind: u8, on: u32) -> Option<(u8, Vec<u8>)> {
    let started = Instant::now();
    let mut read_exact = |buf: &mut [u8]| -> bool {
        let mut got = 0;
        while got < buf.len() {
            if started.elapsed() > Duration::from_secs(5) {
                return false;
            }
            match stream.read(&mut buf[got..]) {
                Ok(0) => return false,
                Ok(n) => got += n,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(_) => return false,
            }
        }
        true
    };
    loop {
        let mut header = [0u8; 9];
        if !read_exact(&mut header) {
            return None;
        }
        let len = u32::from_be_bytes([0, header[0], header[1], header[2]]) as usize;
        let mut payload = vec![0u8; len];
        if !read_exact(&mut payload) {
            return None;
        }
        let id = u32::from_be_bytes([header[5], header[6], header[7], header[8]]) & 0x7fff_ffff;
        if header[3] == kind && id == on {
            return Some((header[4], payload));
        }
    }
}

/// A browser resets the HTTP/2 stream (`CANCEL`) of every request a user leaves before its
/// answer is in: a tab closed, a second click on "Sign in", a page left while the next loads.
/// The proxy answered such a stream, reset while it waited for the upstream, as a malformed
/// request: an `INFO` line "The request is malformed", Pingora's `ERROR` line, an audit line
/// and a count as `rejected`; reset while its answer was written, it was an `ERROR` line
/// ("cannot reserve capacity"). Over HTTP/1 the same is a client that closes its connection,
/// counted as an abandoned request and nothing else. Now both are that too, and the
/// connection serves on.
#[test]
fn an_http2_request_its_client_cancels_is_abandoned_not_malformed() {
    let pki = Pki::new();
    let origin = Origin::start();
    let silent = common::unanswering_upstream(true);
    let (large, large_let_go) = common::large_answer_upstream();
    let proxy = contoso_tls_proxy(
        tempfile::tempdir().unwrap(),
        &origin,
        &pki,
        &["login.contoso.com", "slow.contoso.com", "big.contoso.com"],
        Setup {
            extra_top: "audit: {path: \"{dir}/audit.jsonl\", all_requests: false}\n".into(),
            extra_sites: format!(
                "  - hosts: [slow.contoso.com]\n\
                 \x20   upstream: {{address: \"127.0.0.1:{silent}\"}}\n\
                 \x20   rules: [\"{rules}\"]\n\
                 \x20 - hosts: [big.contoso.com]\n\
                 \x20   upstream: {{address: \"127.0.0.1:{large}\"}}\n\
                 \x20   rules: [\"{rules}\"]\n",
                rules = common::rules_dir().display()
            ),
            ..Setup::default()
        },
    );
    let port = proxy.tls_port.unwrap();
    let ca = pki.write_ca(proxy.dir.path());
    let mut h2 = tls_connect(port, &ca, Some(b"\x02h2"));
    assert_eq!(h2.ssl().selected_alpn_protocol(), Some(&b"h2"[..]));
    const DATA: u8 = 0;
    const HEADERS: u8 = 1;
    const RST_STREAM: u8 = 3;
    const SETTINGS: u8 = 4;
    // A GET, all of it in one HEADERS frame (END_STREAM and END_HEADERS).
    let get = |stream: u32, authority: &str, path: &str| {
        let fields = hpack_literals(&[
            (":method", "GET"),
            (":scheme", "https"),
            (":authority", authority),
            (":path", path),
        ]);
        h2_frame(HEADERS, 0x5, stream, &fields)
    };
    // The answer's HEADERS on `stream` say `:status: 200`, as HPACK's static table has it
    // (index 8).
    let answered_200 = |h2: &mut SslStream<TcpStream>, stream: u32| {
        let (_, block) = read_h2_frame_until(h2, HEADERS, stream).expect("an answer");
        assert_eq!(block.first(), Some(&0x88), "stream {stream}: {block:?}");
    };
    let mut out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    out.extend(h2_frame(SETTINGS, 0, 0, b""));
    out.extend(get(1, "slow.contoso.com", "/authorize?x=1"));
    h2.write_all(&out).unwrap();
    // Inspected and forwarded: the upstream holds it. Then the user leaves.
    std::thread::sleep(Duration::from_millis(500));
    let cancel = 0x8u32.to_be_bytes();
    h2.write_all(&h2_frame(RST_STREAM, 0, 1, &cancel)).unwrap();

    let abandoned = "waf_client_faults_total{kind=\"abandoned\"}";
    proxy.wait_until(Duration::from_secs(5), || proxy.metric(abandoned) == 1.0);
    let counted = "waf_requests_total{action=\"pass\",site=\"slow.contoso.com\"}";
    proxy.wait_until(Duration::from_secs(5), || proxy.metric(counted) == 1.0);
    assert_eq!(
        proxy.metric("waf_requests_total{action=\"rejected\",site=\"slow.contoso.com\"}"),
        0.0
    );
    // The connection serves the next request.
    h2.write_all(&get(3, "login.contoso.com", "/authorize?x=2"))
        .unwrap();
    answered_200(&mut h2, 3);
    assert_eq!(origin.seen().len(), 1);

    // A large answer, reset by the client once it has begun. The client never grants more
    // window than HTTP/2's first 64 KiB, so the proxy is waiting for window when the reset
    // comes.
    h2.write_all(&get(5, "big.contoso.com", "/download"))
        .unwrap();
    answered_200(&mut h2, 5);
    read_h2_frame_until(&mut h2, DATA, 5).expect("the answer's first bytes");
    h2.write_all(&h2_frame(RST_STREAM, 0, 5, &cancel)).unwrap();
    proxy.wait_until(Duration::from_secs(5), || proxy.metric(abandoned) == 2.0);
    large_let_go
        .recv_timeout(Duration::from_secs(5))
        .expect("the upstream connection is let go");
    let counted = "waf_requests_total{action=\"pass\",site=\"big.contoso.com\"}";
    proxy.wait_until(Duration::from_secs(5), || proxy.metric(counted) == 1.0);

    let log = proxy.log();
    assert!(!log.contains("ERROR"), "{log}");
    assert!(!log.contains("malformed"), "{log}");
    assert!(proxy.audit().is_empty(), "{:?}", proxy.audit());
    assert_eq!(
        proxy.metric("waf_upstream_errors_total{site=\"slow.contoso.com\"}"),
        0.0
    );
}

/// An HTTP/2 request ends its body with its stream: a `POST` whose `HEADERS` frame ends the
/// stream may carry no `content-length`. Pingora forwarded it to the HTTP/1.1 upstream with
/// neither `Content-Length` nor `Transfer-Encoding`, which IIS answers `411 Length Required`;
/// RFC 9110 section 8.6 has a client send `Content-Length: 0` for such a method.
#[test]
fn an_http2_post_without_a_body_reaches_the_upstream_with_content_length_0() {
    let pki = Pki::new();
    let origin = Origin::start();
    let proxy = two_domain_proxy(&origin, &pki);
    let port = proxy.tls_port.unwrap();
    let ca = pki.write_ca(proxy.dir.path());
    let mut h2 = tls_connect(port, &ca, Some(b"\x02h2"));
    let mut preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    preface.extend(h2_frame(4, 0, 0, b""));
    h2.write_all(&preface).unwrap();
    // (Our rules refuse `PUT` and `PATCH`, which sign-in pages do not use.)
    let cases = [
        (1, "POST", None, Some("0")),
        (3, "POST", Some("0"), Some("0")),
        (5, "GET", None, None),
        (7, "OPTIONS", None, None),
    ];
    for (stream, method, sent, forwarded) in cases {
        let path = format!("/contoso.onmicrosoft.com/B2C_1_signin/api/{stream}");
        let mut fields = vec![
            (":method", method),
            (":scheme", "https"),
            (":authority", "login.contoso.com"),
            (":path", path.as_str()),
        ];
        if let Some(length) = sent {
            fields.push(("content-length", length));
        }
        // END_STREAM and END_HEADERS: no body.
        h2.write_all(&h2_frame(1, 0x5, stream, &hpack_literals(&fields)))
            .unwrap();
        let (_, block) = read_h2_frame_until(&mut h2, 1, stream).expect("an answer");
        // `:status: 200`, index 8 of HPACK's static table.
        assert_eq!(
            block.first(),
            Some(&0x88),
            "{method}: {block:?}\n{}",
            proxy.log()
        );
        let seen = origin.seen();
        let last = seen.last().expect("the request reached the origin");
        assert_eq!(
            (last.method.as_str(), last.target.as_str()),
            (method, path.as_str())
        );
        assert_eq!(
            last.header("content-length"),
            forwarded,
            "{method}: {:?}",
            last.headers
        );
        assert_eq!(
            last.header_count("content-length"),
            usize::from(forwarded.is_some())
        );
        assert_eq!(last.header("transfer-encoding"), None);
        assert!(last.body.is_empty());
    }
}
