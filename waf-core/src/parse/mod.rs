//! Request parsing: from the bytes of a [`Request`] to the named values rules inspect.
//!
//! The rule engine follows ModSecurity, so what this module produces maps onto ModSecurity's
//! collections: query arguments (`ARGS_GET`), body arguments (`ARGS_POST`), cookies
//! (`REQUEST_COOKIES`), JSON leaves, uploaded files (`FILES`, `FILES_COMBINED_SIZE`), multipart
//! part headers (`MULTIPART_PART_HEADERS`) and the `MULTIPART_*` anomaly flags.
//!
//! # Two calls
//!
//! Parsing happens in two steps because the body may arrive after the headers have already
//! been inspected:
//!
//! 1. [`parse_head`] reads the request line and headers: the percent-decoded path, the query
//!    arguments and the cookies.
//! 2. [`parse_body`] reads the body, chosen by `Content-Type`: `application/x-www-form-urlencoded`,
//!    any JSON type (`application/json`, `application/*+json`) or `multipart/form-data`.
//!    Anything else is left alone ([`BodyProcessor::None`]); the raw body stays available from
//!    the request.
//!
//! ```
//! use waf_core::parse::{parse_body, parse_head, BodyProcessor, ParseLimits};
//! use waf_core::Request;
//!
//! let request = Request::builder()
//!     .method("POST")
//!     .uri("/contoso.onmicrosoft.com/B2C_1_signin/SelfAsserted?tx=StateProperties%3Dabc")
//!     .header("Content-Type", "application/x-www-form-urlencoded; charset=UTF-8")
//!     .header("Cookie", "x-ms-cpim-csrf=token1; x-ms-cpim-trans=t2")
//!     .body("request_type=RESPONSE&signInName=zoe%40contoso.com")
//!     .build();
//! let limits = ParseLimits::default();
//!
//! let head = parse_head(&request, &limits);
//! assert_eq!(head.query_args[0].value, b"StateProperties=abc");
//! assert_eq!(head.cookies[1].name, b"x-ms-cpim-trans");
//!
//! let body = parse_body(&request, &limits, head.query_args.len());
//! assert_eq!(body.processor, BodyProcessor::UrlEncoded);
//! assert_eq!(body.args[1].value, b"zoe@contoso.com");
//! ```
//!
//! # Bytes, not text
//!
//! Every name and value is a `Vec<u8>`. Invalid UTF-8 is ordinary input — attackers send it on
//! purpose — and is never an error. Nothing in this module panics, whatever the input: slices
//! are taken with checked access, and nothing recurses deeper than the JSON parser's own fixed
//! limit.
//!
//! # Problems are data
//!
//! Parsing never fails. What went wrong is recorded as a [`ParseIssue`] in the result, and
//! parsing keeps whatever it could extract, so that rules still see as much of a malformed
//! request as possible while other rules can act on the issue itself (`REQBODY_ERROR`,
//! `URLENCODED_ERROR`, `MULTIPART_STRICT_ERROR` and so on). The [`ParseLimits`] bound the work
//! an attacker can cause; reaching one is an issue too, never an error. Two bounds are fixed
//! rather than configured: what a body expands to in names and values stays within
//! [`EXPANSION_FACTOR`] times its size (JSON paths and multipart field names repeat for every
//! value under them), and at most a handful of body errors are listed one by one.
//!
//! # JSON inside form fields
//!
//! Microsoft Entra External ID posts some fields as JSON inside a form
//! (`attributes={"city":"Paris"}`). With [`ParseLimits::json_in_form_fields`], a form or
//! multipart field whose value (trimmed) starts with `{` or `[` and parses as JSON is also
//! flattened: its leaves go to [`ParsedBody::json`] and [`ParsedBody::args`] under the field
//! name as prefix (`attributes.city`). The original field stays in the arguments as well.
//!
//! ```
//! use waf_core::parse::{parse_body, ParseLimits};
//! use waf_core::Request;
//!
//! let request = Request::builder()
//!     .method("POST")
//!     .header("Content-Type", "application/x-www-form-urlencoded")
//!     .body("attributes=%7B%22city%22%3A%22Paris%22%7D")
//!     .build();
//! let body = parse_body(&request, &ParseLimits::default(), 0);
//! assert_eq!(body.args[0].name, b"attributes");
//! assert_eq!(body.args[1].name, b"attributes.city");
//! assert_eq!(body.args[1].value, b"Paris");
//! assert_eq!(body.json.len(), 1);
//! ```
//!
//! # Submodules
//!
//! - [`urlencoded`]: the `name=value&…` decoder shared by the query string and form bodies.
//! - [`cookie`]: `Cookie` header splitting, as ModSecurity v3 does it.
//! - [`json`]: JSON flattening to dotted names.
//! - [`multipart`]: an RFC 7578 `multipart/form-data` parser with ModSecurity's anomaly flags.
//! - [`http1`]: a lenient raw HTTP/1.x request parser, for tools and test corpora.

// The no-panic promise above is enforced, not just intended.
#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use crate::request::Request;

pub mod cookie;
pub mod http1;
pub mod json;
pub mod multipart;
pub mod urlencoded;
pub mod xml;

/// Limits that bound parsing work. Hitting one is recorded as a [`ParseIssue`], never an error.
///
/// ```
/// use waf_core::parse::ParseLimits;
///
/// let limits = ParseLimits { max_args: 255, ..ParseLimits::default() };
/// assert_eq!(limits.max_json_depth, 32);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseLimits {
    /// Most arguments kept, query and body together (ModSecurity's `SecArgumentsLimit`); further
    /// ones are dropped and [`ParseIssueKind::TooManyArgs`] recorded. JSON leaves and the leaves
    /// of JSON form fields count too, since they are arguments as well.
    pub max_args: usize,
    /// Deepest JSON nesting flattened: the number of objects and arrays around a value. A
    /// deeper object or array is skipped (its siblings are still read) and
    /// [`ParseIssueKind::JsonTooDeep`] recorded. Above 128 this no longer applies: the JSON
    /// parser refuses to follow more than 128 levels, and a deeper body is
    /// [`ParseIssueKind::BodyInvalid`].
    pub max_json_depth: usize,
    /// Most JSON leaves kept, over the whole body (JSON form fields included); reading stops
    /// there and [`ParseIssueKind::TooManyJsonElements`] is recorded.
    pub max_json_elements: usize,
    /// Most multipart parts read; parsing stops at the next one and
    /// [`ParseIssueKind::TooManyParts`] is recorded.
    pub max_multipart_parts: usize,
    /// Whether form and multipart fields whose value is a JSON object or array are flattened too.
    pub json_in_form_fields: bool,
}

impl Default for ParseLimits {
    fn default() -> ParseLimits {
        ParseLimits {
            max_args: 1000,
            max_json_depth: 32,
            max_json_elements: 10_000,
            max_multipart_parts: 100,
            json_in_form_fields: true,
        }
    }
}

/// A named value: an argument, a cookie, a JSON leaf, a file or a part header.
///
/// ```
/// use waf_core::parse::Field;
///
/// let field = Field::new("signInName", "zoe@contoso.com");
/// assert_eq!(field.name, b"signInName");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Field {
    /// The name, decoded where its source is encoded (query and form arguments, JSON keys).
    pub name: Vec<u8>,
    /// The value, decoded where its source is encoded.
    pub value: Vec<u8>,
}

impl Field {
    /// A field from anything that is bytes.
    ///
    /// ```
    /// use waf_core::parse::Field;
    ///
    /// assert_eq!(Field::new(b"a", "1").value, b"1");
    /// ```
    pub fn new(name: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> Field {
        Field {
            name: name.into(),
            value: value.into(),
        }
    }
}

/// Something parsing noticed: a malformed input or a limit reached.
///
/// ```
/// use waf_core::parse::{ParseIssue, ParseIssueKind};
///
/// let issue = ParseIssue::new(ParseIssueKind::BodyInvalid, "invalid JSON body");
/// assert_eq!(issue.to_string(), "invalid JSON body");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseIssue {
    /// What kind of problem, for rules and metrics.
    pub kind: ParseIssueKind,
    /// What happened, for logs and `waf explain`.
    pub message: String,
}

impl ParseIssue {
    /// An issue of the given kind.
    ///
    /// ```
    /// use waf_core::parse::{ParseIssue, ParseIssueKind};
    ///
    /// let issue = ParseIssue::new(ParseIssueKind::TooManyArgs, "more than 1000 arguments");
    /// assert_eq!(issue.kind, ParseIssueKind::TooManyArgs);
    /// ```
    pub fn new(kind: ParseIssueKind, message: impl Into<String>) -> ParseIssue {
        ParseIssue {
            kind,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for ParseIssue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Kinds of [`ParseIssue`].
///
/// ```
/// use waf_core::parse::ParseIssueKind;
///
/// let kind = ParseIssueKind::InvalidUrlEncoding;
/// assert_ne!(kind, ParseIssueKind::BodyInvalid);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ParseIssueKind {
    /// More arguments than [`ParseLimits::max_args`]; the extra ones were dropped.
    TooManyArgs,
    /// The body is not valid for its content type (ModSecurity's `REQBODY_ERROR`): invalid
    /// JSON, a multipart body without a usable boundary, without a final boundary, or with a
    /// part ModSecurity would refuse.
    BodyInvalid,
    /// A `%` not followed by two hexadecimal digits in the path, the query string or a form
    /// body (ModSecurity's `URLENCODED_ERROR`). The `%` was kept as it is.
    InvalidUrlEncoding,
    /// JSON nested deeper than [`ParseLimits::max_json_depth`]; the deeper parts were skipped.
    JsonTooDeep,
    /// More JSON leaves than [`ParseLimits::max_json_elements`]; the rest were dropped.
    TooManyJsonElements,
    /// More multipart parts than [`ParseLimits::max_multipart_parts`]; the rest of the body was
    /// not parsed.
    TooManyParts,
    /// Parsing would have produced far more bytes than the body holds — a long JSON key or
    /// field name repeated in the name of every value under it — so the rest was dropped. The
    /// budget is [`EXPANSION_FACTOR`] times the body plus [`EXPANSION_SLACK`].
    ExpansionLimit,
}

impl ParseIssueKind {
    /// Whether the issue is a [`ParseLimits`] bound (or the expansion budget) that the request
    /// went past: values beyond it were dropped or skipped, so no rule read them. An attack
    /// put after the thousandth argument, or 33 levels deep in JSON, would reach an
    /// application that reads on; the engine refuses such a request as it refuses a body that
    /// does not parse (see [`InvalidBody`](crate::rules::InvalidBody)).
    ///
    /// ```
    /// use waf_core::parse::ParseIssueKind;
    ///
    /// assert!(ParseIssueKind::JsonTooDeep.is_limit());
    /// assert!(!ParseIssueKind::InvalidUrlEncoding.is_limit());
    /// ```
    pub fn is_limit(self) -> bool {
        match self {
            ParseIssueKind::TooManyArgs
            | ParseIssueKind::JsonTooDeep
            | ParseIssueKind::TooManyJsonElements
            | ParseIssueKind::TooManyParts
            | ParseIssueKind::ExpansionLimit => true,
            ParseIssueKind::BodyInvalid | ParseIssueKind::InvalidUrlEncoding => false,
        }
    }
}

/// How many times its own size a body may expand to in names and values (JSON paths and
/// multipart field names are repeated for every value and header under them) before parsing
/// stops with [`ParseIssueKind::ExpansionLimit`]. Ordinary bodies stay far below; the budget
/// exists so that memory stays proportional to the input whatever the input.
///
/// ```
/// use waf_core::parse::{EXPANSION_FACTOR, EXPANSION_SLACK};
///
/// let budget_for_100_kib = 100 * 1024 * EXPANSION_FACTOR + EXPANSION_SLACK;
/// assert!(budget_for_100_kib > 3_000_000);
/// ```
pub const EXPANSION_FACTOR: usize = 32;

/// Bytes of names and values any body may produce on top of [`EXPANSION_FACTOR`] times its
/// size, so that small bodies are never cut short.
///
/// ```
/// assert_eq!(waf_core::parse::EXPANSION_SLACK, 1 << 20);
/// ```
pub const EXPANSION_SLACK: usize = 1 << 20;

/// The expansion budget for an input of this size.
fn expansion_budget(input_len: usize) -> usize {
    input_len
        .saturating_mul(EXPANSION_FACTOR)
        .saturating_add(EXPANSION_SLACK)
}

/// Body errors listed one by one; beyond, they are only counted, so that a body made of
/// thousands of broken lines does not make thousands of log entries.
const MAX_LISTED_BODY_ERRORS: usize = 16;

/// Which body processor ran (ModSecurity's `REQBODY_PROCESSOR`).
///
/// ```
/// use waf_core::parse::BodyProcessor;
///
/// assert_eq!(BodyProcessor::for_content_type(b"application/json"), BodyProcessor::Json);
/// assert_eq!(BodyProcessor::Json.as_str(), "JSON");
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BodyProcessor {
    /// No processor: no `Content-Type`, or one this module does not parse.
    #[default]
    None,
    /// `application/x-www-form-urlencoded`.
    UrlEncoded,
    /// `application/json` and every `+json` type.
    Json,
    /// `multipart/form-data`.
    Multipart,
    /// `application/xml`, `text/xml` and `application/soap+xml`: the types ModSecurity's
    /// recommended configuration hands to its XML processor.
    Xml,
}

impl BodyProcessor {
    /// The processor for a `Content-Type` value: the media type is compared without regard to
    /// ASCII case, and parameters (`; charset=…`) are allowed.
    ///
    /// ```
    /// use waf_core::parse::BodyProcessor;
    ///
    /// let ct = b"Multipart/Form-Data; boundary=x";
    /// assert_eq!(BodyProcessor::for_content_type(ct), BodyProcessor::Multipart);
    /// let ct = b"application/vnd.api+json";
    /// assert_eq!(BodyProcessor::for_content_type(ct), BodyProcessor::Json);
    /// assert_eq!(BodyProcessor::for_content_type(b"text/plain"), BodyProcessor::None);
    /// ```
    pub fn for_content_type(content_type: &[u8]) -> BodyProcessor {
        let media_type = media_type(content_type);
        if media_type.eq_ignore_ascii_case(b"application/x-www-form-urlencoded") {
            BodyProcessor::UrlEncoded
        } else if media_type.eq_ignore_ascii_case(b"multipart/form-data") {
            BodyProcessor::Multipart
        } else if media_type.eq_ignore_ascii_case(b"application/json") || is_json_suffix(media_type)
        {
            BodyProcessor::Json
        } else if [
            &b"application/xml"[..],
            b"text/xml",
            b"application/soap+xml",
        ]
        .iter()
        .any(|t| media_type.eq_ignore_ascii_case(t))
        {
            BodyProcessor::Xml
        } else {
            BodyProcessor::None
        }
    }

    /// The name ModSecurity gives the processor in `REQBODY_PROCESSOR` (empty for `None`).
    ///
    /// ```
    /// use waf_core::parse::BodyProcessor;
    ///
    /// assert_eq!(BodyProcessor::UrlEncoded.as_str(), "URLENCODED");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            BodyProcessor::None => "",
            BodyProcessor::UrlEncoded => "URLENCODED",
            BodyProcessor::Json => "JSON",
            BodyProcessor::Multipart => "MULTIPART",
            BodyProcessor::Xml => "XML",
        }
    }
}

/// The media type of a `Content-Type` value: up to the first `;` or whitespace, after leading
/// whitespace. Stopping at whitespace is what lets `multipart/form-data boundary=x` (a missing
/// semicolon, which ModSecurity flags rather than refuses) still reach the multipart parser.
fn media_type(content_type: &[u8]) -> &[u8] {
    let trimmed = trim_start(content_type);
    let end = trimmed
        .iter()
        .position(|&b| b == b';' || is_c_space(b))
        .unwrap_or(trimmed.len());
    trimmed.get(..end).unwrap_or_default()
}

/// `type/subtype+json`: a structured-syntax suffix (RFC 6839) on any registered type.
fn is_json_suffix(media_type: &[u8]) -> bool {
    let Some(slash) = media_type.iter().position(|&b| b == b'/') else {
        return false;
    };
    let subtype = media_type.get(slash + 1..).unwrap_or_default();
    slash > 0
        && subtype.len() > 5
        && subtype
            .get(subtype.len() - 5..)
            .is_some_and(|s| s.eq_ignore_ascii_case(b"+json"))
}

/// The multipart anomalies ModSecurity reports as `MULTIPART_*` variables.
///
/// Each flag follows the meaning ModSecurity documents for the variable of the same name.
/// [`strict_error`](MultipartFlags::strict_error) is `MULTIPART_STRICT_ERROR`: set when any
/// other flag is, except [`unmatched_boundary`](MultipartFlags::unmatched_boundary) and
/// [`crlf_lf_lines`](MultipartFlags::crlf_lf_lines) (ModSecurity reports those on their own), or
/// when the multipart body was invalid ([`ParseIssueKind::BodyInvalid`]).
///
/// ```
/// use waf_core::parse::{parse_body, ParseLimits};
/// use waf_core::Request;
///
/// let request = Request::builder()
///     .method("POST")
///     .header("Content-Type", "multipart/form-data; boundary=\"xyz\"")
///     .body("--xyz\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--xyz--\r\n")
///     .build();
/// let body = parse_body(&request, &ParseLimits::default(), 0);
/// assert!(body.multipart.boundary_quoted);
/// assert!(body.multipart.strict_error);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MultipartFlags {
    /// `MULTIPART_STRICT_ERROR`: any anomaly below (but the two reported on their own) or an
    /// invalid multipart body.
    pub strict_error: bool,
    /// `MULTIPART_UNMATCHED_BOUNDARY`: a line looked like a boundary but was not ours — it
    /// starts with `--` or contains `--` followed by our boundary. A sign of an attempt to make
    /// the WAF and the application split the body differently.
    pub unmatched_boundary: bool,
    /// `MULTIPART_BOUNDARY_QUOTED`: the boundary parameter was quoted.
    pub boundary_quoted: bool,
    /// `MULTIPART_BOUNDARY_WHITESPACE`: whitespace around the `=` or after the value of the
    /// boundary parameter.
    pub boundary_whitespace: bool,
    /// `MULTIPART_DATA_BEFORE`: bytes before the first boundary (ignored).
    pub data_before: bool,
    /// `MULTIPART_DATA_AFTER`: bytes after the final boundary line (ignored).
    pub data_after: bool,
    /// `MULTIPART_HEADER_FOLDING`: a part header was continued on the next line.
    pub header_folding: bool,
    /// `MULTIPART_LF_LINE`: a part header or boundary line ended in a bare LF.
    pub lf_line: bool,
    /// `MULTIPART_CRLF_LF_LINES`: both CRLF and bare LF line endings were used.
    pub crlf_lf_lines: bool,
    /// `MULTIPART_MISSING_SEMICOLON`: no `;` between `multipart/form-data` and its parameters.
    pub missing_semicolon: bool,
    /// `MULTIPART_INVALID_QUOTING`: single quotes in `Content-Disposition`, or a quote right
    /// before a missing `;`.
    pub invalid_quoting: bool,
    /// `MULTIPART_INVALID_PART`: a part was skipped because it had no usable name (no blank line
    /// after its headers, no or a broken `Content-Disposition`).
    pub invalid_part: bool,
    /// `MULTIPART_INVALID_HEADER_FOLDING`: a folded part header continued with whitespace other
    /// than space or tab.
    pub invalid_header_folding: bool,
    /// `MULTIPART_FILE_LIMIT_EXCEEDED`: ModSecurity sets it when `SecUploadFileLimit` stops
    /// file extraction; here, when [`ParseLimits::max_multipart_parts`] stopped parsing, so that
    /// content left uninspected also counts as a strict error.
    pub file_limit_exceeded: bool,
}

impl MultipartFlags {
    /// Recomputes [`strict_error`](MultipartFlags::strict_error) from the other flags and
    /// whether the body was invalid.
    fn finish(&mut self, body_invalid: bool) {
        self.strict_error = body_invalid
            || self.boundary_quoted
            || self.boundary_whitespace
            || self.data_before
            || self.data_after
            || self.header_folding
            || self.lf_line
            || self.missing_semicolon
            || self.invalid_quoting
            || self.invalid_part
            || self.invalid_header_folding
            || self.file_limit_exceeded;
    }
}

/// Everything derived from the request line and headers.
///
/// ```
/// use waf_core::parse::{parse_head, ParseLimits};
/// use waf_core::Request;
///
/// let request = Request::builder().uri("/a%20b?x=1").build();
/// let head = parse_head(&request, &ParseLimits::default());
/// assert_eq!(head.decoded_path, b"/a b");
/// assert!(!head.has_issue(waf_core::parse::ParseIssueKind::TooManyArgs));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ParsedHead {
    /// The path of the request target, percent-decoded (`+` stays `+` in a path). Invalid
    /// `%` sequences are kept as they are and recorded as
    /// [`ParseIssueKind::InvalidUrlEncoding`].
    pub decoded_path: Vec<u8>,
    /// The query string arguments, decoded, in order, repeated names kept.
    pub query_args: Vec<Field>,
    /// The cookies of every `Cookie` header, in order; values as sent (not decoded, quotes
    /// kept).
    pub cookies: Vec<Field>,
    /// What parsing noticed.
    pub issues: Vec<ParseIssue>,
}

impl ParsedHead {
    /// Whether an issue of this kind was recorded.
    ///
    /// ```
    /// use waf_core::parse::{parse_head, ParseIssueKind, ParseLimits};
    /// use waf_core::Request;
    ///
    /// let request = Request::builder().uri("/?q=%zz").build();
    /// let head = parse_head(&request, &ParseLimits::default());
    /// assert!(head.has_issue(ParseIssueKind::InvalidUrlEncoding));
    /// ```
    pub fn has_issue(&self, kind: ParseIssueKind) -> bool {
        self.issues.iter().any(|issue| issue.kind == kind)
    }
}

/// Everything derived from the body.
///
/// ```
/// use waf_core::parse::{parse_body, BodyProcessor, ParseLimits};
/// use waf_core::Request;
///
/// let request = Request::builder()
///     .method("POST")
///     .header("Content-Type", "application/json")
///     .body(r#"{"attributes":{"city":"x"},"items":[{"id":1}]}"#)
///     .build();
/// let body = parse_body(&request, &ParseLimits::default(), 0);
/// assert_eq!(body.processor, BodyProcessor::Json);
/// assert_eq!(body.json[0].name, b"attributes.city");
/// assert_eq!(body.json[1].name, b"items.0.id");
/// assert_eq!(body.json[1].value, b"1");
/// assert_eq!(body.args, body.json);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ParsedBody {
    /// Which processor ran.
    pub processor: BodyProcessor,
    /// Body arguments (`ARGS_POST`): form fields, non-file multipart fields, JSON leaves and
    /// the leaves of JSON form fields, in order, within what [`ParseLimits::max_args`] leaves
    /// after the query arguments.
    pub args: Vec<Field>,
    /// JSON leaves with dotted names (`items.0.id`), from a JSON body or from JSON form fields.
    pub json: Vec<Field>,
    /// Uploaded files: name = field name, value = file name as sent (`FILES_NAMES`, `FILES`).
    pub files: Vec<Field>,
    /// Every multipart part header: name = field name of its part (empty when the part had
    /// none), value = the header line as sent, without its line ending, folded lines joined.
    pub part_headers: Vec<Field>,
    /// Sum of the sizes of the uploaded files, in bytes (`FILES_COMBINED_SIZE`).
    pub files_combined_size: u64,
    /// Multipart anomalies; all `false` for other processors.
    pub multipart: MultipartFlags,
    /// The text and attribute values of an XML body (`XML:/*`, `XML://@*`).
    pub xml: Option<xml::XmlValues>,
    /// What parsing noticed.
    pub issues: Vec<ParseIssue>,
}

impl ParsedBody {
    /// Whether an issue of this kind was recorded.
    ///
    /// ```
    /// use waf_core::parse::{parse_body, ParseIssueKind, ParseLimits};
    /// use waf_core::Request;
    ///
    /// let request = Request::builder()
    ///     .method("POST")
    ///     .header("Content-Type", "application/json")
    ///     .body("{oops")
    ///     .build();
    /// let body = parse_body(&request, &ParseLimits::default(), 0);
    /// assert!(body.has_issue(ParseIssueKind::BodyInvalid));
    /// ```
    pub fn has_issue(&self, kind: ParseIssueKind) -> bool {
        self.issues.iter().any(|issue| issue.kind == kind)
    }
}

/// Parses the request line and headers: the decoded path, the query arguments and the cookies.
///
/// Query arguments are limited to [`ParseLimits::max_args`]; pass their count to
/// [`parse_body`] so that the body shares the same budget.
///
/// ```
/// use waf_core::parse::{parse_head, ParseLimits};
/// use waf_core::Request;
///
/// let request = Request::builder()
///     .uri("/common/oauth2/v2.0/authorize?client_id=1&scope=openid+profile&prompt")
///     .header("Cookie", "a=1; b=\"two\"")
///     .build();
/// let head = parse_head(&request, &ParseLimits::default());
/// assert_eq!(head.decoded_path, b"/common/oauth2/v2.0/authorize");
/// assert_eq!(head.query_args[1].value, b"openid profile");
/// assert_eq!(head.query_args[2].name, b"prompt");
/// assert_eq!(head.query_args[2].value, b"");
/// assert_eq!(head.cookies[1].value, b"\"two\"");
/// ```
pub fn parse_head(request: &Request, limits: &ParseLimits) -> ParsedHead {
    let mut head = ParsedHead::default();

    let (path, path_invalid) = urlencoded::url_decode_path(request.path());
    head.decoded_path = path.into_owned();
    if path_invalid {
        head.issues.push(ParseIssue::new(
            ParseIssueKind::InvalidUrlEncoding,
            format!("invalid URL encoding in the path: {}", show(request.path())),
        ));
    }

    if let Some(query) = request.query() {
        let parsed = urlencoded::parse_urlencoded(query, limits.max_args);
        head.query_args = parsed.args;
        if parsed.invalid_encoding {
            head.issues.push(ParseIssue::new(
                ParseIssueKind::InvalidUrlEncoding,
                "invalid URL encoding in the query string",
            ));
        }
        if parsed.dropped > 0 {
            head.issues
                .push(too_many_args(limits.max_args, parsed.dropped));
        }
    }

    for value in request.headers().get_all("cookie") {
        head.cookies.extend(cookie::parse_cookie_header(value));
    }
    head
}

/// Parses the body according to its `Content-Type` (the first such header).
///
/// `args_already` is the number of query arguments already taken from
/// [`ParseLimits::max_args`] (usually `parse_head(..).query_args.len()`); body arguments get
/// what is left. An empty body yields no arguments and no issue, whatever its type.
///
/// ```
/// use waf_core::parse::{parse_body, BodyProcessor, ParseIssueKind, ParseLimits};
/// use waf_core::Request;
///
/// let request = Request::builder()
///     .method("POST")
///     .header("Content-Type", "application/x-www-form-urlencoded")
///     .body("a=1&b=2&c=3")
///     .build();
/// let limits = ParseLimits { max_args: 3, ..ParseLimits::default() };
/// let body = parse_body(&request, &limits, 1);
/// assert_eq!(body.args.len(), 2);
/// assert!(body.has_issue(ParseIssueKind::TooManyArgs));
///
/// let request = Request::builder().method("POST").body("<xml/>").build();
/// assert_eq!(parse_body(&request, &limits, 0).processor, BodyProcessor::None);
/// ```
pub fn parse_body(request: &Request, limits: &ParseLimits, args_already: usize) -> ParsedBody {
    let Some(content_type) = request.headers().get("content-type") else {
        return ParsedBody::default();
    };
    let processor = BodyProcessor::for_content_type(content_type);
    let body = request.body();
    let mut sink = BodySink::new(limits, args_already, body.len());
    sink.out.processor = processor;
    if !body.is_empty() {
        match processor {
            BodyProcessor::UrlEncoded => urlencoded::parse_form_body(body, &mut sink),
            BodyProcessor::Json => json::parse_json_body(body, &mut sink),
            BodyProcessor::Multipart => {
                multipart::parse_multipart_body(content_type, body, &mut sink)
            }
            BodyProcessor::Xml => {
                let values = xml::xml_values(body);
                if let Some(e) = &values.error {
                    sink.out
                        .issues
                        .push(ParseIssue::new(ParseIssueKind::BodyInvalid, e.clone()));
                }
                sink.out.xml = Some(values);
            }
            BodyProcessor::None => {}
        }
    }
    sink.finish()
}

/// Collects what the body processors find while enforcing the shared budgets: arguments
/// (shared with the query string), JSON leaves (shared by the body and every JSON form field)
/// and the expansion budget (everything). Issues about limits are recorded once, at the end.
struct BodySink<'l> {
    limits: &'l ParseLimits,
    out: ParsedBody,
    args_left: usize,
    args_dropped: usize,
    json_left: usize,
    json_truncated: bool,
    json_too_deep: bool,
    invalid_encoding: bool,
    bytes_left: usize,
    expansion_exceeded: bool,
    errors_unlisted: usize,
}

impl<'l> BodySink<'l> {
    fn new(limits: &'l ParseLimits, args_already: usize, body_len: usize) -> BodySink<'l> {
        BodySink {
            limits,
            out: ParsedBody::default(),
            args_left: limits.max_args.saturating_sub(args_already),
            args_dropped: 0,
            json_left: limits.max_json_elements,
            json_truncated: false,
            json_too_deep: false,
            invalid_encoding: false,
            bytes_left: expansion_budget(body_len),
            expansion_exceeded: false,
            errors_unlisted: 0,
        }
    }

    /// Takes `copies` of a field's size from the expansion budget; `false` (and the issue
    /// noted) when it does not fit. Only what repeats bytes of the body is charged — JSON
    /// leaves and part headers, whose names repeat a path or a field name — so that plain
    /// fields, which cannot outgrow the body, are never dropped for lack of budget.
    fn charge(&mut self, field: &Field, copies: usize) -> bool {
        let size = field
            .name
            .len()
            .saturating_add(field.value.len())
            .saturating_mul(copies);
        match self.bytes_left.checked_sub(size) {
            Some(left) => {
                self.bytes_left = left;
                true
            }
            None => {
                self.expansion_exceeded = true;
                false
            }
        }
    }

    fn push_arg(&mut self, field: Field) {
        if self.args_left == 0 {
            self.args_dropped = self.args_dropped.saturating_add(1);
        } else {
            self.args_left -= 1;
            self.out.args.push(field);
        }
    }

    fn push_part_header(&mut self, field: Field) {
        if self.charge(&field, 1) {
            self.out.part_headers.push(field);
        }
    }

    /// A form or multipart field: an argument, plus its JSON leaves when it holds JSON.
    fn push_form_field(&mut self, name: &[u8], value: &[u8]) {
        self.push_arg(Field::new(name, value));
        if !self.limits.json_in_form_fields {
            return;
        }
        let trimmed = trim(value);
        if !matches!(trimmed.first(), Some(b'{' | b'[')) {
            return;
        }
        let flattened =
            json::flatten_json(trimmed, name, self.limits.max_json_depth, self.json_left);
        // A value that merely starts like JSON is just text: only a document that parses is
        // taken as JSON, and then nothing about it is an error of the body.
        if flattened.error.is_none() {
            self.push_json(flattened);
        }
    }

    fn push_json(&mut self, flattened: json::JsonLeaves) {
        self.json_left = self.json_left.saturating_sub(flattened.leaves.len());
        self.json_truncated |= flattened.truncated;
        self.expansion_exceeded |= flattened.expansion_exceeded;
        self.json_too_deep |= flattened.too_deep;
        for leaf in flattened.leaves {
            // A leaf is kept twice: as a JSON value and as an argument.
            if !self.charge(&leaf, 2) {
                break;
            }
            self.push_arg(leaf.clone());
            self.out.json.push(leaf);
        }
    }

    fn invalid(&mut self, message: impl Into<String>) {
        let listed = self
            .out
            .issues
            .iter()
            .filter(|issue| issue.kind == ParseIssueKind::BodyInvalid)
            .count();
        if listed < MAX_LISTED_BODY_ERRORS {
            self.out
                .issues
                .push(ParseIssue::new(ParseIssueKind::BodyInvalid, message));
        } else {
            self.errors_unlisted = self.errors_unlisted.saturating_add(1);
        }
    }

    fn finish(mut self) -> ParsedBody {
        if self.errors_unlisted > 0 {
            self.out.issues.push(ParseIssue::new(
                ParseIssueKind::BodyInvalid,
                format!("{} more body errors not listed", self.errors_unlisted),
            ));
        }
        if self.expansion_exceeded {
            self.out.issues.push(ParseIssue::new(
                ParseIssueKind::ExpansionLimit,
                "parsing the body would produce far more data than the body holds; the rest was dropped",
            ));
        }
        if self.invalid_encoding {
            self.out.issues.push(ParseIssue::new(
                ParseIssueKind::InvalidUrlEncoding,
                "invalid URL encoding in the body",
            ));
        }
        if self.args_dropped > 0 {
            self.out
                .issues
                .push(too_many_args(self.limits.max_args, self.args_dropped));
        }
        if self.json_too_deep {
            self.out.issues.push(ParseIssue::new(
                ParseIssueKind::JsonTooDeep,
                format!(
                    "JSON nested deeper than {} levels; the deeper parts were skipped",
                    self.limits.max_json_depth
                ),
            ));
        }
        if self.json_truncated {
            self.out.issues.push(ParseIssue::new(
                ParseIssueKind::TooManyJsonElements,
                format!(
                    "more than {} JSON values; the rest were dropped",
                    self.limits.max_json_elements
                ),
            ));
        }
        if self.out.processor == BodyProcessor::Multipart {
            let invalid = self.out.has_issue(ParseIssueKind::BodyInvalid);
            self.out.multipart.finish(invalid);
        }
        self.out
    }
}

fn too_many_args(max: usize, dropped: usize) -> ParseIssue {
    ParseIssue::new(
        ParseIssueKind::TooManyArgs,
        format!("more than {max} arguments; {dropped} dropped"),
    )
}

/// Bytes for a log message: lossy UTF-8, cut to a readable length so that an attacker cannot
/// make issue messages arbitrarily large.
fn show(bytes: &[u8]) -> String {
    const MAX: usize = 120;
    match bytes.get(..MAX) {
        Some(head) if bytes.len() > MAX => format!("{}…", String::from_utf8_lossy(head)),
        _ => String::from_utf8_lossy(bytes).into_owned(),
    }
}

/// C's `isspace`, which ModSecurity uses wherever it skips whitespace.
fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

fn trim_start(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|&b| !is_c_space(b))
        .unwrap_or(bytes.len());
    bytes.get(start..).unwrap_or_default()
}

fn trim_end(bytes: &[u8]) -> &[u8] {
    let end = bytes
        .iter()
        .rposition(|&b| !is_c_space(b))
        .map_or(0, |i| i + 1);
    bytes.get(..end).unwrap_or_default()
}

fn trim(bytes: &[u8]) -> &[u8] {
    trim_end(trim_start(bytes))
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn post(content_type: &str, body: impl AsRef<[u8]>) -> Request {
        Request::builder()
            .method("POST")
            .header("Content-Type", content_type)
            .body(body)
            .build()
    }

    fn names(fields: &[Field]) -> Vec<String> {
        fields
            .iter()
            .map(|f| String::from_utf8_lossy(&f.name).into_owned())
            .collect()
    }

    #[test]
    fn content_type_dispatch() {
        let cases: &[(&str, BodyProcessor)] = &[
            (
                "application/x-www-form-urlencoded",
                BodyProcessor::UrlEncoded,
            ),
            (
                "Application/X-WWW-Form-UrlEncoded; charset=UTF-8",
                BodyProcessor::UrlEncoded,
            ),
            (
                "  application/x-www-form-urlencoded ;",
                BodyProcessor::UrlEncoded,
            ),
            ("application/json", BodyProcessor::Json),
            ("APPLICATION/JSON;charset=utf-8", BodyProcessor::Json),
            ("application/merge-patch+json", BodyProcessor::Json),
            ("application/vnd.api+JSON; ext=x", BodyProcessor::Json),
            ("multipart/form-data; boundary=x", BodyProcessor::Multipart),
            ("multipart/form-data boundary=x", BodyProcessor::Multipart),
            ("multipart/form-data", BodyProcessor::Multipart),
            ("multipart/mixed; boundary=x", BodyProcessor::None),
            ("application/x-www-form-urlencodedx", BodyProcessor::None),
            ("+json", BodyProcessor::None),
            ("/+json", BodyProcessor::None),
            ("text/plain", BodyProcessor::None),
            ("text/xml", BodyProcessor::Xml),
            ("Application/XML; charset=utf-8", BodyProcessor::Xml),
            ("application/soap+xml", BodyProcessor::Xml),
            ("application/atom+xml", BodyProcessor::None),
            ("", BodyProcessor::None),
        ];
        for &(ct, expected) in cases {
            assert_eq!(
                BodyProcessor::for_content_type(ct.as_bytes()),
                expected,
                "{ct}"
            );
        }
    }

    #[test]
    fn no_content_type_no_processor() {
        let request = Request::builder().method("POST").body("a=1").build();
        let body = parse_body(&request, &ParseLimits::default(), 0);
        assert_eq!(body, ParsedBody::default());
    }

    #[test]
    fn empty_bodies_are_not_errors() {
        for ct in [
            "application/json",
            "multipart/form-data; boundary=x",
            "application/x-www-form-urlencoded",
        ] {
            let body = parse_body(&post(ct, ""), &ParseLimits::default(), 0);
            assert!(body.issues.is_empty(), "{ct}: {:?}", body.issues);
            assert!(!body.multipart.strict_error);
        }
    }

    #[test]
    fn head_path_query_cookies() {
        let request = Request::builder()
            .uri("/a%2Fb+c/%zz?x=1&x=2&y=%41%")
            .header("Cookie", "s=1; t=2")
            .header("cookie", "u=3")
            .build();
        let head = parse_head(&request, &ParseLimits::default());
        assert_eq!(head.decoded_path, b"/a/b+c/%zz");
        assert_eq!(names(&head.query_args), ["x", "x", "y"]);
        assert_eq!(head.query_args[2].value, b"A%");
        assert_eq!(names(&head.cookies), ["s", "t", "u"]);
        let kinds: Vec<_> = head.issues.iter().map(|i| i.kind).collect();
        assert_eq!(
            kinds,
            [
                ParseIssueKind::InvalidUrlEncoding,
                ParseIssueKind::InvalidUrlEncoding
            ]
        );
    }

    #[test]
    fn query_args_limit() {
        let request = Request::builder().uri("/?a=1&b=2&c=3&d=4").build();
        let limits = ParseLimits {
            max_args: 2,
            ..ParseLimits::default()
        };
        let head = parse_head(&request, &limits);
        assert_eq!(names(&head.query_args), ["a", "b"]);
        assert!(head.has_issue(ParseIssueKind::TooManyArgs));
        assert!(head.issues[0].message.contains("2 dropped"));
    }

    #[test]
    fn body_shares_the_args_budget() {
        let limits = ParseLimits {
            max_args: 3,
            ..ParseLimits::default()
        };
        let body = parse_body(
            &post("application/x-www-form-urlencoded", "a=1&b=2"),
            &limits,
            2,
        );
        assert_eq!(names(&body.args), ["a"]);
        assert!(body.has_issue(ParseIssueKind::TooManyArgs));

        let body = parse_body(&post("application/json", r#"{"a":1,"b":2}"#), &limits, 3);
        assert!(body.args.is_empty());
        assert_eq!(body.json.len(), 2, "JSON leaves are kept apart from args");
        assert!(body.has_issue(ParseIssueKind::TooManyArgs));

        // More already taken than the limit must not underflow.
        let body = parse_body(&post("application/x-www-form-urlencoded", "a"), &limits, 99);
        assert!(body.args.is_empty());
    }

    #[test]
    fn form_body_invalid_encoding_is_an_issue() {
        let body = parse_body(
            &post("application/x-www-form-urlencoded", "a=%G1&b=%41"),
            &ParseLimits::default(),
            0,
        );
        assert_eq!(body.args[0].value, b"%G1");
        assert_eq!(body.args[1].value, b"A");
        assert!(body.has_issue(ParseIssueKind::InvalidUrlEncoding));
    }

    #[test]
    fn json_in_form_fields() {
        let limits = ParseLimits::default();
        let body = parse_body(
            &post(
                "application/x-www-form-urlencoded",
                "attributes=+%7B%22city%22%3A%22Paris%22%2C%22tags%22%3A%5B%22%5Cu003c%22%5D%7D+&other=%7Bnot+json&list=%5B1%2C2%5D",
            ),
            &limits,
            0,
        );
        assert_eq!(
            names(&body.args),
            [
                "attributes",
                "attributes.city",
                "attributes.tags.0",
                "other",
                "list",
                "list.0",
                "list.1"
            ]
        );
        assert_eq!(body.args[2].value, b"<");
        assert_eq!(
            names(&body.json),
            ["attributes.city", "attributes.tags.0", "list.0", "list.1"]
        );
        assert!(body.issues.is_empty(), "{:?}", body.issues);

        let off = ParseLimits {
            json_in_form_fields: false,
            ..limits
        };
        let body = parse_body(
            &post("application/x-www-form-urlencoded", "a=%7B%22b%22%3A1%7D"),
            &off,
            0,
        );
        assert_eq!(names(&body.args), ["a"]);
        assert!(body.json.is_empty());
    }

    #[test]
    fn json_in_form_fields_share_the_element_budget() {
        let limits = ParseLimits {
            max_json_elements: 3,
            ..ParseLimits::default()
        };
        let body = parse_body(
            &post(
                "application/x-www-form-urlencoded",
                "a=%5B1%2C2%5D&b=%5B3%2C4%5D",
            ),
            &limits,
            0,
        );
        assert_eq!(names(&body.json), ["a.0", "a.1", "b.0"]);
        assert!(body.has_issue(ParseIssueKind::TooManyJsonElements));
    }

    #[test]
    fn json_body_leaves_go_to_args_and_json() {
        let body = parse_body(
            &post(
                "application/json; charset=utf-8",
                r#"{"q":"\u003cscript\u003e","n":[true,null,1.5]}"#,
            ),
            &ParseLimits::default(),
            0,
        );
        assert_eq!(names(&body.args), ["q", "n.0", "n.1", "n.2"]);
        assert_eq!(body.args[0].value, b"<script>");
        assert_eq!(body.args[1].value, b"true");
        assert_eq!(body.args[2].value, b"null");
        assert_eq!(body.args[3].value, b"1.5");
        assert_eq!(body.args, body.json);
    }

    #[test]
    fn invalid_json_body_keeps_what_came_before() {
        let body = parse_body(
            &post("application/json", r#"{"a":"x","b":}"#),
            &ParseLimits::default(),
            0,
        );
        assert_eq!(names(&body.json), ["a"]);
        let issue = &body.issues[0];
        assert_eq!(issue.kind, ParseIssueKind::BodyInvalid);
        assert!(issue.message.contains("line 1"), "{}", issue.message);
    }

    #[test]
    fn very_deep_json_body() {
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        let request = post("application/json", &deep);
        let body = parse_body(&request, &ParseLimits::default(), 0);
        let kinds: Vec<_> = body.issues.iter().map(|i| i.kind).collect();
        assert_eq!(kinds, [ParseIssueKind::JsonTooDeep]);

        let limits = ParseLimits {
            max_json_depth: 1000,
            ..ParseLimits::default()
        };
        let body = parse_body(&request, &limits, 0);
        let kinds: Vec<_> = body.issues.iter().map(|i| i.kind).collect();
        assert_eq!(kinds, [ParseIssueKind::BodyInvalid]);
        assert!(body.issues[0].message.contains("recursion limit"));
    }

    #[test]
    fn long_json_keys_hit_the_expansion_limit() {
        let body = format!("{{\"{}\":[{}0]}}", "k".repeat(10_000), "0,".repeat(5_000));
        let parsed = parse_body(&post("application/json", &body), &ParseLimits::default(), 0);
        let kinds: Vec<_> = parsed.issues.iter().map(|i| i.kind).collect();
        assert_eq!(kinds, [ParseIssueKind::ExpansionLimit]);
        assert!(!parsed.json.is_empty());
        assert_eq!(parsed.json.len(), parsed.args.len());
    }

    #[test]
    fn multipart_flags_only_for_multipart() {
        let body = parse_body(&post("application/json", "{"), &ParseLimits::default(), 0);
        assert_eq!(body.multipart, MultipartFlags::default());
    }

    #[test]
    fn show_is_bounded() {
        let long = vec![b'a'; 1000];
        assert!(show(&long).len() < 200);
        assert_eq!(show(b"\xffok"), "\u{fffd}ok");
    }

    const CONTENT_TYPES: &[&str] = &[
        "application/x-www-form-urlencoded",
        "application/json",
        "application/problem+json",
        "multipart/form-data; boundary=b",
        "multipart/form-data; boundary=\"b\"",
        "multipart/form-data boundary = b ",
        "multipart/form-data",
        "text/plain",
    ];

    /// Pieces that make arbitrary bodies likely to reach the deeper states of each parser.
    const FRAGMENTS: &[&str] = &[
        "--b\r\n",
        "--b--\r\n",
        "--b",
        "--",
        "\r\n",
        "\n",
        "\r",
        "Content-Disposition: form-data; name=\"a\"\r\n",
        "Content-Disposition: form-data; name='a'; filename=\"f\\\"x\"",
        "Content-Disposition: form-data; name=a; foo",
        " folded\r\n",
        "\x0bbad-fold\r\n",
        "Content-Type: text/plain\r\n",
        ":\r\n",
        "\0",
        "{\"a\":[1,{\"b\":",
        "]}",
        "[[[[",
        "\"\\u003c\"",
        "a=%7B%22k%22%3A1%7D&",
        "%",
        "%4",
        "+",
        "=",
        "&",
        "\u{e9}",
        "\u{ff}",
    ];

    fn body_strategy() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..512),
            proptest::collection::vec(
                prop_oneof![
                    proptest::sample::select(FRAGMENTS).prop_map(|s| s.as_bytes().to_vec()),
                    proptest::collection::vec(any::<u8>(), 0..8),
                ],
                0..40
            )
            .prop_map(|parts| parts.concat()),
        ]
    }

    proptest! {
        #[test]
        fn any_body_with_any_content_type_never_panics(
            content_type in proptest::sample::select(CONTENT_TYPES),
            body in body_strategy(),
            max_args in 0usize..8,
            max_json_depth in 0usize..4,
            max_json_elements in 0usize..8,
            max_multipart_parts in 0usize..4,
        ) {
            let request = post(content_type, &body);
            let small = ParseLimits {
                max_args,
                max_json_depth,
                max_json_elements,
                max_multipart_parts,
                json_in_form_fields: true,
            };
            for limits in [ParseLimits::default(), small] {
                let parsed = parse_body(&request, &limits, 0);
                prop_assert!(parsed.args.len() <= limits.max_args);
                prop_assert!(parsed.json.len() <= limits.max_json_elements);
            }
        }

        #[test]
        fn any_target_and_cookie_never_panic(
            uri in proptest::collection::vec(any::<u8>(), 0..256),
            cookie in proptest::collection::vec(any::<u8>(), 0..256),
        ) {
            let request = Request::builder().uri(&uri).header("Cookie", &cookie).build();
            let head = parse_head(&request, &ParseLimits::default());
            prop_assert!(head.decoded_path.len() <= request.path().len());
        }
    }
}
