//! The go-ftw test files, in both of their shapes, read into one model.
//!
//! - **CRS 3.x, "v1"** (what `ftw` and early `go-ftw` read): `tests[].test_title`, and each
//!   stage wrapped in `stage:` — `stages: [{stage: {input, output}}]`. Expectations are
//!   `log_contains` / `no_log_contains` (regexes over the ModSecurity error log), `status` (a
//!   number or a list), `expect_error`, `response_contains`.
//! - **CRS 4.x** (the ftw-tests-schema of `go-ftw` 1.x): a top-level `rule_id`, numeric
//!   `tests[].test_id`, stages without the wrapper — `stages: [{input, output}]` — and
//!   `output.log: {expect_ids, no_expect_ids, match_regex, no_match_regex}`.
//!
//! Both are read by the same serde structs (every field optional, unknown keys ignored, so a
//! newer schema's additions do not break a run) and lowered into [`TestFile`]. Which shape a
//! stage came in decides how its request is put on the wire (see [`super::wire`]): the v1 tests
//! were written for Python `ftw`, the 4.x tests for `go-ftw`, and the two complete requests
//! differently.

use std::fmt;
use std::path::Path;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

/// One test file, lowered.
#[derive(Debug)]
pub struct TestFile {
    /// The tests, in file order.
    pub tests: Vec<TestCase>,
}

/// One test: stages run in order, on one connection each.
#[derive(Debug)]
pub struct TestCase {
    /// `942100-3`: the v1 `test_title`, or `<rule_id>-<test_id>` for 4.x tests.
    pub id: String,
    /// Whether the test runs (`enabled: false` on the test or the file: skipped).
    pub enabled: bool,
    /// The stages, in order.
    pub stages: Vec<Stage>,
}

/// Which tool a stage was written for, which decides how its request is completed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// CRS 3.x "v1" files (`stage:` wrapper): Python `ftw`'s request building.
    Ftw,
    /// CRS 4.x files: `go-ftw`'s request building.
    GoFtw,
}

/// One stage: a request and what must be seen when it is sent.
#[derive(Debug)]
pub struct Stage {
    /// How the request is completed.
    pub dialect: Dialect,
    /// The request.
    pub input: Input,
    /// The expectations.
    pub output: Output,
}

/// A stage's request, as written (see [`super::wire`] for how it becomes bytes).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Input {
    /// The request method; `GET` when absent.
    pub method: Option<Text>,
    /// The request target; `/` when absent.
    pub uri: Option<Text>,
    /// Several targets for one stage (4.x); not supported, reported.
    pub uris: Option<Vec<Text>>,
    /// The protocol word of the request line; `HTTP/1.1` when absent.
    pub version: Option<Text>,
    /// Headers, in file order.
    pub headers: Option<Headers>,
    /// Headers as a list of `{name, value}` (newer go-ftw), in order.
    pub ordered_headers: Option<Vec<NamedHeader>>,
    /// The body: a string, or a list of lines joined with CRLF.
    pub data: Option<Data>,
    /// The body in base64 (4.x).
    pub encoded_data: Option<String>,
    /// v1: `true` turns off the request completion.
    pub stop_magic: Option<bool>,
    /// 4.x: `false` turns off the request completion.
    pub autocomplete_headers: Option<bool>,
    /// The whole request as text, sent as is.
    pub raw_request: Option<Data>,
    /// The whole request in base64, sent as is.
    pub encoded_request: Option<String>,
    /// Replay the previous stage's cookies; not supported, reported.
    pub save_cookie: Option<bool>,
    /// Follow the previous stage's redirect (4.x); not supported, reported.
    pub follow_redirect: Option<bool>,
}

/// A header of `ordered_headers`.
#[derive(Debug, Deserialize)]
pub struct NamedHeader {
    /// The header name.
    pub name: Text,
    /// The header value.
    pub value: Text,
}

/// What a stage expects.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Output {
    /// Acceptable response statuses.
    pub status: Option<Statuses>,
    /// A regex that must match the WAF's log for this request.
    pub log_contains: Option<String>,
    /// A regex that must not match the WAF's log for this request.
    pub no_log_contains: Option<String>,
    /// The 4.x log expectations.
    pub log: Option<LogExpectations>,
    /// `true`: the request must fail (no HTTP answer, or one refusing it unread).
    pub expect_error: Option<bool>,
    /// A regex the response must match.
    pub response_contains: Option<String>,
    /// 4.x: the expected rule must be the only one that fires; not supported, reported.
    pub isolated: Option<bool>,
}

/// `output.log` of the 4.x format.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct LogExpectations {
    /// Rules that must fire.
    pub expect_ids: Vec<u32>,
    /// Rules that must not fire.
    pub no_expect_ids: Vec<u32>,
    /// A regex that must match the log.
    pub match_regex: Option<String>,
    /// A regex that must not match the log.
    pub no_match_regex: Option<String>,
}

/// Reads one test file. A file that cannot be read or parsed is an error with the reason;
/// the caller reports it as a failure.
pub fn read_file(path: &Path) -> Result<TestFile, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read: {e}"))?;
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    parse(&text, &stem)
}

/// Parses one test file's text; `stem` (the file name without extension) stands in for the
/// rule id of 4.x files that do not give one.
pub fn parse(text: &str, stem: &str) -> Result<TestFile, String> {
    let raw: RawFile = serde_saphyr::from_str(text).map_err(|e| {
        let at = e
            .location()
            .map(|l| format!("line {}, column {}: ", l.line(), l.column()))
            .unwrap_or_default();
        format!("{at}{}", waf_core::rules::yaml::first_line(&e.to_string()))
    })?;
    let file_enabled = raw.meta.enabled.unwrap_or(true);
    let rule = raw
        .rule_id
        .map_or_else(|| stem.to_string(), |r| r.to_string());
    let mut tests = Vec::with_capacity(raw.tests.len());
    for (index, t) in raw.tests.into_iter().enumerate() {
        let id = match (t.test_title, t.test_id) {
            (Some(title), _) => title.0,
            (None, Some(n)) => format!("{rule}-{n}"),
            // go-ftw infers a missing test id from the position, counting from 1.
            (None, None) => format!("{rule}-{}", index + 1),
        };
        let mut stages = Vec::with_capacity(t.stages.len());
        for (n, s) in t.stages.into_iter().enumerate() {
            let (dialect, input, output) = match s.stage {
                Some(inner) => (Dialect::Ftw, inner.input, inner.output),
                None => (Dialect::GoFtw, s.input, s.output),
            };
            let input = input.ok_or_else(|| format!("test {id}, stage {}: no `input`", n + 1))?;
            stages.push(Stage {
                dialect,
                input,
                output: output.unwrap_or_default(),
            });
        }
        tests.push(TestCase {
            id,
            enabled: file_enabled && t.enabled.unwrap_or(true),
            stages,
        });
    }
    Ok(TestFile { tests })
}

#[derive(Deserialize)]
struct RawFile {
    #[serde(default)]
    meta: RawMeta,
    #[serde(default)]
    rule_id: Option<u32>,
    tests: Vec<RawTest>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct RawMeta {
    enabled: Option<bool>,
}

#[derive(Deserialize)]
struct RawTest {
    #[serde(default)]
    test_title: Option<Text>,
    #[serde(default)]
    test_id: Option<u32>,
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    stages: Vec<RawStage>,
}

/// A stage in either shape: `{stage: {input, output}}` (v1) or `{input, output}` (4.x).
#[derive(Deserialize)]
struct RawStage {
    #[serde(default)]
    stage: Option<RawStageBody>,
    #[serde(default)]
    input: Option<Input>,
    #[serde(default)]
    output: Option<Output>,
}

#[derive(Deserialize)]
struct RawStageBody {
    #[serde(default)]
    input: Option<Input>,
    #[serde(default)]
    output: Option<Output>,
}

/// A YAML scalar read as text: the test files write `Keep-Alive: 300` and `Content-Length: 0`
/// unquoted, and the tools send the number's decimal form.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Text(pub String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Text, D::Error> {
        d.deserialize_any(TextVisitor).map(Text)
    }
}

struct TextVisitor;

impl Visitor<'_> for TextVisitor {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string, number or boolean")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<String, E> {
        Ok(v)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<String, E> {
        Ok(v.to_string())
    }
    // `Header:` with nothing after it: an empty value.
    fn visit_unit<E: de::Error>(self) -> Result<String, E> {
        Ok(String::new())
    }
    fn visit_none<E: de::Error>(self) -> Result<String, E> {
        Ok(String::new())
    }
}

/// Headers in file order. A name written twice keeps its first position and its last value,
/// as the Python dictionary `ftw` reads them into does.
#[derive(Debug, Default)]
pub struct Headers(pub Vec<(String, String)>);

impl<'de> Deserialize<'de> for Headers {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Headers, D::Error> {
        struct HeadersVisitor;
        impl<'de> Visitor<'de> for HeadersVisitor {
            type Value = Headers;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of header names to values")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Headers, A::Error> {
                let mut out: Vec<(String, String)> = Vec::new();
                while let Some((name, value)) = map.next_entry::<Text, Text>()? {
                    match out.iter_mut().find(|(n, _)| *n == name.0) {
                        Some(slot) => slot.1 = value.0,
                        None => out.push((name.0, value.0)),
                    }
                }
                Ok(Headers(out))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Headers, E> {
                Ok(Headers::default())
            }
        }
        d.deserialize_any(HeadersVisitor)
    }
}

/// A body or raw request: a string, or a list of lines the tools join with CRLF.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Data(pub String);

impl<'de> Deserialize<'de> for Data {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Data, D::Error> {
        struct DataVisitor;
        impl<'de> Visitor<'de> for DataVisitor {
            type Value = Data;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a list of lines")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Data, A::Error> {
                let mut lines = Vec::new();
                while let Some(line) = seq.next_element::<Text>()? {
                    lines.push(line.0);
                }
                Ok(Data(lines.join("\r\n")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Data, E> {
                Ok(Data(v.to_string()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Data, E> {
                Ok(Data(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Data, E> {
                Ok(Data(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Data, E> {
                Ok(Data(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Data, E> {
                Ok(Data(v.to_string()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Data, E> {
                Ok(Data(v.to_string()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Data, E> {
                Ok(Data::default())
            }
        }
        d.deserialize_any(DataVisitor)
    }
}

/// Acceptable statuses: `status: 403` or `status: [403, 400]`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Statuses(pub Vec<u16>);

impl<'de> Deserialize<'de> for Statuses {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Statuses, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum OneOrMany {
            One(u16),
            Many(Vec<u16>),
        }
        Ok(match OneOrMany::deserialize(d)? {
            OneOrMany::One(s) => Statuses(vec![s]),
            OneOrMany::Many(v) => Statuses(v),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    const V1: &str = r#"---
meta:
  author: "someone"
  enabled: true
  name: "942100.yaml"
tests:
  - test_title: 942100-1
    desc: a description
    stages:
      - stage:
          input:
            dest_addr: "127.0.0.1"
            method: "POST"
            port: 80
            headers:
              User-Agent: "ModSecurity CRS 3 Tests"
              Host: "localhost"
              Keep-Alive: 300
            data:
              - "a=1"
              - "b=2"
            protocol: "http"
            uri: "/"
            some_future_key: {nested: [1, 2]}
          output:
            log_contains: id "942100"
            status: [403, 400]
  - test_title: 942100-2
    enabled: false
    stages:
      - stage:
          input:
            raw_request: "GET / HTTP/1.1\r\n\r\n"
            stop_magic: true
          output:
            no_log_contains: id "942100"
            expect_error: true
            status: 400
"#;

    #[test]
    fn v1_format() {
        let file = parse(V1, "942100").unwrap();
        assert_eq!(file.tests.len(), 2);
        let t = &file.tests[0];
        assert_eq!(t.id, "942100-1");
        assert!(t.enabled);
        let s = &t.stages[0];
        assert_eq!(s.dialect, Dialect::Ftw);
        assert_eq!(s.input.method, Some(Text("POST".into())));
        let headers = &s.input.headers.as_ref().unwrap().0;
        assert_eq!(
            headers[0],
            ("User-Agent".into(), "ModSecurity CRS 3 Tests".into())
        );
        assert_eq!(headers[2], ("Keep-Alive".into(), "300".into()));
        assert_eq!(s.input.data, Some(Data("a=1\r\nb=2".into())));
        assert_eq!(s.output.log_contains.as_deref(), Some("id \"942100\""));
        assert_eq!(s.output.status, Some(Statuses(vec![403, 400])));

        let t = &file.tests[1];
        assert!(!t.enabled);
        let s = &t.stages[0];
        assert_eq!(s.input.stop_magic, Some(true));
        assert_eq!(
            s.input.raw_request,
            Some(Data("GET / HTTP/1.1\r\n\r\n".into()))
        );
        assert_eq!(s.output.expect_error, Some(true));
        assert_eq!(s.output.status, Some(Statuses(vec![400])));
    }

    const V4: &str = r#"
meta:
  author: "someone"
rule_id: 942100
tests:
  - test_id: 3
    desc: "4.x test"
    stages:
      - input:
          dest_addr: "127.0.0.1"
          method: "GET"
          port: 80
          uri: "/?q=1"
          headers:
            Host: "localhost"
          autocomplete_headers: false
          encoded_data: "YT0x"
        output:
          log:
            expect_ids: [942100]
            no_expect_ids: [942101, 942102]
          status: 200
  - stages:
      - input:
          encoded_request: "R0VUIC8gSFRUUC8xLjENCg0K"
        output:
          log:
            match_regex: 'id[:\s"]*942100'
"#;

    #[test]
    fn v4_format() {
        let file = parse(V4, "ignored").unwrap();
        assert_eq!(file.tests.len(), 2);
        let t = &file.tests[0];
        assert_eq!(t.id, "942100-3");
        let s = &t.stages[0];
        assert_eq!(s.dialect, Dialect::GoFtw);
        assert_eq!(s.input.autocomplete_headers, Some(false));
        assert_eq!(s.input.encoded_data.as_deref(), Some("YT0x"));
        let log = s.output.log.as_ref().unwrap();
        assert_eq!(log.expect_ids, [942100]);
        assert_eq!(log.no_expect_ids, [942101, 942102]);
        assert_eq!(s.output.status, Some(Statuses(vec![200])));
        // No test_id: the position, from 1.
        assert_eq!(file.tests[1].id, "942100-2");
        let log = file.tests[1].stages[0].output.log.as_ref().unwrap();
        assert_eq!(log.match_regex.as_deref(), Some("id[:\\s\"]*942100"));
    }

    #[test]
    fn rule_id_from_the_file_name() {
        let file = parse("tests:\n  - stages:\n      - input: {uri: /}\n", "920100").unwrap();
        assert_eq!(file.tests[0].id, "920100-1");
    }

    #[test]
    fn disabled_file() {
        let file = parse(
            "meta: {enabled: false}\ntests:\n  - test_title: a\n    stages: []\n",
            "x",
        )
        .unwrap();
        assert!(!file.tests[0].enabled);
    }

    #[test]
    fn broken_files_say_why() {
        let e = parse("tests: [", "x").unwrap_err();
        assert!(e.starts_with("line "), "{e}");
        let e = parse("meta: {}\n", "x").unwrap_err();
        assert_eq!(e, "line 1, column 1: missing field `tests`");
        let e = parse(
            "tests:\n  - test_title: a\n    stages:\n      - output: {}\n",
            "x",
        )
        .unwrap_err();
        assert_eq!(e, "test a, stage 1: no `input`");
    }
}
