//! Raw bytes as an HTTP/1.1 request: the lenient HTTP/1 parser, then every request parser the
//! engine uses — the head (path, query arguments, cookies) and the body by its `Content-Type`
//! (urlencoded, JSON, multipart, XML) — with the default limits and with tiny ones. The body is
//! also fed to each body parser directly (urlencoded, JSON, XML, and multipart under the
//! request's boundary or a fixed one), whatever the `Content-Type` says, so that every parser
//! sees every body. Checks: no panic, and the documented bounds hold (argument and JSON leaf
//! counts within the limits, the decoded path no longer than the raw one, decoders never
//! lengthen).
#![no_main]

use libfuzzer_sys::fuzz_target;
use waf_core::parse::{self, cookie, json, multipart, urlencoded, xml, ParseLimits};
use waf_core::Request;

fn check(request: &Request, limits: &ParseLimits) {
    let head = parse::parse_head(request, limits);
    assert!(head.decoded_path.len() <= request.path().len());
    assert!(head.query_args.len() <= limits.max_args);
    let body = parse::parse_body(request, limits, head.query_args.len());
    assert!(head.query_args.len() + body.args.len() <= limits.max_args);
    assert!(body.json.len() <= limits.max_json_elements);
}

fuzz_target!(|data: &[u8]| {
    let Ok(request) = parse::http1::parse_request(data) else {
        return;
    };
    let small = ParseLimits {
        max_args: 3,
        max_json_depth: 2,
        max_json_elements: 4,
        max_multipart_parts: 2,
        json_in_form_fields: true,
    };
    for limits in [ParseLimits::default(), small] {
        check(&request, &limits);
    }

    for value in request.headers().get_all("cookie") {
        for c in cookie::parse_cookie_header(value) {
            assert!(c.name.len() + c.value.len() <= value.len());
        }
    }
    let body = request.body();
    let (decoded, _) = urlencoded::url_decode_form(body);
    assert!(decoded.len() <= body.len());
    let (decoded, _) = urlencoded::url_decode_path(body);
    assert!(decoded.len() <= body.len());
    let form = urlencoded::parse_urlencoded(body, 3);
    assert!(form.args.len() <= 3);
    assert_eq!(
        form.args.len() + form.dropped,
        urlencoded::pairs(body).count()
    );
    let flat = json::flatten_json(body, b"prefix", 32, 10_000);
    assert!(flat.leaves.len() <= 10_000);
    let _ = xml::xml_values(body);

    // Multipart whatever the Content-Type: under the request's own boundary if it has one,
    // else under `b`, the boundary the seeds use.
    let content_type = request.headers().get("content-type").unwrap_or_default();
    let forced_type: &[u8] = if multipart::boundary(content_type).is_some() {
        content_type
    } else {
        b"multipart/form-data; boundary=b"
    };
    for processor_type in [
        forced_type,
        b"application/json".as_slice(),
        b"application/x-www-form-urlencoded",
        b"text/xml",
    ] {
        if processor_type == content_type {
            continue;
        }
        let forced = Request::builder()
            .method("POST")
            .uri("/")
            .header("Content-Type", processor_type)
            .body(body)
            .build();
        check(&forced, &ParseLimits::default());
    }
});
