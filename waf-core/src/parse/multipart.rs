//! `multipart/form-data` (RFC 7578), parsed over bytes with ModSecurity's anomaly flags.
//!
//! A multipart body is where applications and WAFs most often disagree about what was sent, so
//! this parser does two jobs: it extracts what the application will most likely see — fields,
//! file names, part headers — and it reports every oddity ModSecurity reports in its
//! `MULTIPART_*` variables ([`MultipartFlags`]), so that rules can refuse bodies that parsers
//! could read differently.
//!
//! The parse is line-oriented, like ModSecurity's:
//!
//! - The boundary comes from the `boundary` parameter of `Content-Type`, quoted or not.
//!   A missing, empty, repeated, partly quoted or ill-formed boundary (characters outside
//!   RFC 2046's set) makes the body invalid ([`ParseIssueKind::BodyInvalid`]) and nothing is
//!   parsed.
//! - A line starting with `--boundary` is a delimiter (`--boundary--` the final one). Bytes after
//!   it on the line make the body invalid, but the line is still taken as a delimiter, as most
//!   applications would. `--boundary` anywhere else in a line makes the body invalid too: a
//!   parser that does not anchor delimiters to lines would split the body there.
//! - Other lines starting with `--` are flagged ([`MultipartFlags::unmatched_boundary`]) and
//!   nothing more: a signature (`-- `) or an SQL comment in a text field starts one.
//! - Each part has header lines, a blank line, then data up to the line ending before the next
//!   delimiter. `Content-Disposition: form-data; name="…"` names the part; with a non-empty
//!   `filename` parameter the part is a file: its name and file name go to
//!   [`ParsedBody::files`] and its size to [`ParsedBody::files_combined_size`]. Other parts,
//!   `filename=""` among them, are arguments, and JSON fields are flattened as for form bodies.
//! - Where ModSecurity stops at the first error, this parser records the error and goes on with
//!   the next part, so that rules still see the rest of the body; a part without a usable name
//!   is skipped and flagged ([`MultipartFlags::invalid_part`]).
//! - No final delimiter makes the body invalid, but the fields read so far — including a last,
//!   unfinished one — are kept: a body cut short by a size limit is still inspected.
//! - After the final delimiter, the epilogue is ignored but for a delimiter line, which makes the
//!   body invalid: a parser that reads on would find a part there.
//!
//! [`ParseIssueKind::BodyInvalid`]: super::ParseIssueKind::BodyInvalid
//! [`ParsedBody::files`]: super::ParsedBody::files
//! [`ParsedBody::files_combined_size`]: super::ParsedBody::files_combined_size
//!
//! ```
//! use waf_core::parse::{parse_body, BodyProcessor, ParseLimits};
//! use waf_core::Request;
//!
//! let body = "--AaB03x\r\n\
//!     Content-Disposition: form-data; name=\"submit-name\"\r\n\
//!     \r\n\
//!     Larry\r\n\
//!     --AaB03x\r\n\
//!     Content-Disposition: form-data; name=\"files\"; filename=\"file1.txt\"\r\n\
//!     Content-Type: text/plain\r\n\
//!     \r\n\
//!     ... contents of file1.txt ...\r\n\
//!     --AaB03x--\r\n";
//! let request = Request::builder()
//!     .method("POST")
//!     .header("Content-Type", "multipart/form-data; boundary=AaB03x")
//!     .body(body)
//!     .build();
//! let parsed = parse_body(&request, &ParseLimits::default(), 0);
//! assert_eq!(parsed.processor, BodyProcessor::Multipart);
//! assert_eq!(parsed.args[0].name, b"submit-name");
//! assert_eq!(parsed.args[0].value, b"Larry");
//! assert_eq!(parsed.files[0].value, b"file1.txt");
//! assert_eq!(parsed.files_combined_size, 29);
//! assert_eq!(parsed.part_headers[2].value, b"Content-Type: text/plain");
//! assert!(parsed.issues.is_empty());
//! assert!(!parsed.multipart.strict_error);
//! ```

use std::collections::HashSet;

use memchr::memmem;

use super::{
    is_c_space, show, trim_end, BodySink, Field, MultipartFlags, ParseIssue, ParseIssueKind,
};

/// The boundary of a `multipart/form-data` `Content-Type`, if it has a valid one.
///
/// ```
/// use waf_core::parse::multipart::boundary;
///
/// assert_eq!(boundary(b"multipart/form-data; boundary=\"a b\""), Some(b"a b".to_vec()));
/// assert_eq!(boundary(b"multipart/form-data; boundary=a; boundary=b"), None);
/// assert_eq!(boundary(b"multipart/form-data"), None);
/// ```
pub fn boundary(content_type: &[u8]) -> Option<Vec<u8>> {
    parse_boundary(content_type).ok().map(|b| b.value)
}

struct Boundary {
    value: Vec<u8>,
    quoted: bool,
    whitespace: bool,
    missing_semicolon: bool,
}

/// ModSecurity checks the `Content-Type` with string searches; this splits its parameters
/// properly instead (so `charset` before `boundary` is fine) but refuses and flags the same
/// tricks: a repeated boundary, partial quoting, whitespace around `=`, a missing `;`.
fn parse_boundary(content_type: &[u8]) -> Result<Boundary, String> {
    const MEDIA_TYPE: &[u8] = b"multipart/form-data";
    let trimmed = super::trim_start(content_type);
    let params = match trimmed.get(..MEDIA_TYPE.len()) {
        Some(media) if media.eq_ignore_ascii_case(MEDIA_TYPE) => {
            trimmed.get(MEDIA_TYPE.len()..).unwrap_or_default()
        }
        _ => return Err("not multipart/form-data".into()),
    };
    if params.first().is_some_and(|&b| b != b';' && !is_c_space(b)) {
        return Err("not multipart/form-data".into());
    }
    // Applications that search for `boundary=` rather than parse parameters would find a
    // second one hidden in another parameter's quoted value: refuse, as ModSecurity does.
    if boundary_assignments(content_type) > 1 {
        return Err("multiple boundary parameters in Content-Type".into());
    }
    let after_space = super::trim_start(params);
    let missing_semicolon = !after_space.is_empty() && after_space.first() != Some(&b';');
    let params = after_space.strip_prefix(b";").unwrap_or(after_space);

    let mut found: Option<Boundary> = None;
    for param in split_params(params) {
        let Some(eq) = param.iter().position(|&b| b == b'=') else {
            continue;
        };
        let (raw_name, raw_value) = (
            param.get(..eq).unwrap_or_default(),
            param.get(eq + 1..).unwrap_or_default(),
        );
        let name = super::trim(raw_name);
        if !name.eq_ignore_ascii_case(b"boundary") {
            continue;
        }
        if found.is_some() {
            return Err("multiple boundary parameters in Content-Type".into());
        }
        let mut whitespace = trim_end(raw_name).len() != raw_name.len();
        let value = super::trim_start(raw_value);
        whitespace |= value.len() != raw_value.len();
        let (value, quoted) = if let Some(inner) = value.strip_prefix(b"\"") {
            let Some(close) = inner.iter().position(|&b| b == b'"') else {
                return Err("boundary in Content-Type has an unterminated quote".into());
            };
            let after = inner.get(close + 1..).unwrap_or_default();
            if !after.iter().all(|&b| is_c_space(b)) {
                return Err("boundary in Content-Type has bytes after its closing quote".into());
            }
            whitespace |= !after.is_empty();
            (inner.get(..close).unwrap_or_default(), true)
        } else {
            let unquoted = trim_end(value);
            whitespace |= unquoted.len() != value.len();
            if unquoted.last() == Some(&b'"') {
                return Err("boundary in Content-Type is partly quoted".into());
            }
            (unquoted, false)
        };
        if value.is_empty() {
            return Err("empty boundary in Content-Type".into());
        }
        if !boundary_characters_valid(value) {
            return Err(format!(
                "invalid characters in the Content-Type boundary: {}",
                show(value)
            ));
        }
        found = Some(Boundary {
            value: value.to_vec(),
            quoted,
            whitespace,
            missing_semicolon,
        });
    }
    found.ok_or_else(|| "no boundary in Content-Type".into())
}

/// How many times `boundary` (any case) is followed by `=`, whitespace allowed between.
fn boundary_assignments(content_type: &[u8]) -> usize {
    let lower = content_type.to_ascii_lowercase();
    memmem::find_iter(&lower, b"boundary")
        .filter(|&at| {
            let after = lower.get(at + b"boundary".len()..).unwrap_or_default();
            super::trim_start(after).first() == Some(&b'=')
        })
        .count()
}

/// Splits parameters on `;` outside double quotes.
fn split_params(params: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = params;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut in_quotes = false;
        let end = rest
            .iter()
            .position(|&b| {
                if b == b'"' {
                    in_quotes = !in_quotes;
                }
                b == b';' && !in_quotes
            })
            .unwrap_or(rest.len());
        let param = rest.get(..end).unwrap_or_default();
        rest = rest.get(end + 1..).unwrap_or_default();
        Some(param)
    })
}

/// RFC 2046 `bchars`: digits, letters, `'()+_,-./:=?` and space, but not as the last character.
fn boundary_characters_valid(boundary: &[u8]) -> bool {
    boundary.last() != Some(&b' ')
        && boundary
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"'()+_,-./:=? ".contains(&b))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Ending {
    CrLf,
    Lf,
    /// The last line of the body, without a line ending.
    None,
}

/// The next line of `bytes`: its content without the line ending, the ending, and the length
/// consumed.
fn next_line(bytes: &[u8]) -> (&[u8], Ending, usize) {
    match memchr::memchr(b'\n', bytes) {
        Some(nl) => {
            let line = bytes.get(..nl).unwrap_or_default();
            match line.strip_suffix(b"\r") {
                Some(content) => (content, Ending::CrLf, nl + 1),
                None => (line, Ending::Lf, nl + 1),
            }
        }
        None => (bytes, Ending::None, bytes.len()),
    }
}

#[derive(Default)]
struct Part {
    in_headers: bool,
    /// Unfolded `(name, value)` pairs, as ModSecurity keeps them.
    headers: Vec<(Vec<u8>, Vec<u8>)>,
    /// The lowercased names in `headers`, so that spotting a duplicate stays cheap however many
    /// header lines a part has.
    header_names: HashSet<Vec<u8>>,
    /// The header lines as sent, folded continuations appended.
    raw_headers: Vec<Vec<u8>>,
    /// Index in `headers` that a folded line continues; `None` after a refused header line.
    last_header: Option<usize>,
    name: Option<Vec<u8>>,
    filename: Option<Vec<u8>>,
    /// The value of a field part; file contents are only counted.
    data: Vec<u8>,
    file_size: u64,
    /// Length of the line ending of the last data line, which belongs to the next delimiter.
    last_ending: usize,
}

impl Part {
    fn data_line(&mut self, line: &[u8], ending: Ending) {
        if self.name.is_none() {
            // A skipped part: nothing of it is reported.
            return;
        }
        self.last_ending = match ending {
            Ending::CrLf => 2,
            Ending::Lf => 1,
            Ending::None => 0,
        };
        if self.filename.is_some() {
            let length = u64::try_from(line.len()).unwrap_or(u64::MAX);
            self.file_size = self.file_size.saturating_add(length);
        } else {
            self.data.extend_from_slice(line);
        }
    }
}

struct Parser<'s, 'l> {
    sink: &'s mut BodySink<'l>,
    flags: MultipartFlags,
    crlf_line: bool,
}

impl Parser<'_, '_> {
    fn line_ending(&mut self, ending: Ending) {
        match ending {
            Ending::CrLf => self.crlf_line = true,
            Ending::Lf => self.flags.lf_line = true,
            Ending::None => {}
        }
    }

    fn header_line(&mut self, part: &mut Part, content: &[u8], ending: Ending) {
        self.line_ending(ending);
        if content.is_empty() {
            self.end_headers(part);
            return;
        }
        if content.contains(&0) {
            self.sink.invalid("multipart: NUL byte in a part header");
        }
        if content.first().is_some_and(|&b| is_c_space(b)) {
            self.folded_header_line(part, content);
            return;
        }
        part.raw_headers.push(content.to_vec());
        let Some(colon) = content.iter().position(|&b| b == b':') else {
            part.last_header = None;
            self.sink.invalid(format!(
                "multipart: invalid part header (colon missing): {}",
                show(content)
            ));
            return;
        };
        let name = content.get(..colon).unwrap_or_default();
        let value = content.get(colon + 1..).unwrap_or_default();
        let value = trim_end(trim_ows_start(value));
        if name.is_empty() {
            part.last_header = None;
            self.sink
                .invalid("multipart: invalid part header (header name missing)");
            return;
        }
        if !part.header_names.insert(name.to_ascii_lowercase()) {
            // Which copy an application uses is anyone's guess: keep the first, like
            // ModSecurity, and make the body invalid.
            part.last_header = None;
            self.sink
                .invalid(format!("multipart: duplicate part header: {}", show(name)));
            return;
        }
        part.last_header = Some(part.headers.len());
        part.headers.push((name.to_vec(), value.to_vec()));
    }

    fn folded_header_line(&mut self, part: &mut Part, content: &[u8]) {
        self.flags.header_folding = true;
        let continuation_start = content
            .iter()
            .position(|&b| !is_c_space(b))
            .unwrap_or(content.len());
        let prefix = content.get(..continuation_start).unwrap_or_default();
        // RFC 5322 folds with space and tab only; PHP and others accept any whitespace.
        if prefix.iter().any(|&b| b != b' ' && b != b'\t') {
            self.flags.invalid_header_folding = true;
        }
        let Some(raw) = part.raw_headers.last_mut() else {
            self.sink
                .invalid("multipart: invalid part header (folding before any header)");
            return;
        };
        raw.extend_from_slice(content);
        if let Some((_, value)) = part.last_header.and_then(|i| part.headers.get_mut(i)) {
            let continuation = trim_end(content.get(continuation_start..).unwrap_or_default());
            value.push(b' ');
            value.extend_from_slice(continuation);
        }
    }

    fn end_headers(&mut self, part: &mut Part) {
        part.in_headers = false;
        let disposition = part
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(b"content-disposition"))
            .map(|(_, v)| v.clone());
        match disposition {
            None => self
                .sink
                .invalid("multipart: part missing Content-Disposition header"),
            Some(value) => {
                let parsed = parse_disposition(&value);
                self.flags.invalid_quoting |= parsed.invalid_quoting;
                if let Some(error) = parsed.error {
                    self.sink.invalid(format!(
                        "multipart: invalid Content-Disposition header ({error}): {}",
                        show(&value)
                    ));
                }
                // Some applications find `filename=` with a plain search; a filename we read
                // without that literal text (`filename ="x"`) could be missed by them.
                if parsed.filename.is_some() && memmem::find(&value, b"filename=").is_none() {
                    self.sink
                        .invalid("multipart: invalid Content-Disposition header (filename)");
                }
                match parsed.name {
                    Some(name) if !name.is_empty() => part.name = Some(name),
                    // A syntax error was reported already; a missing name is its own error.
                    _ if parsed.error.is_none() => self
                        .sink
                        .invalid("multipart: Content-Disposition header missing name field"),
                    _ => {}
                }
                // An empty file name makes no file: ASP.NET Core and ModSecurity read such a
                // part as a form field, and a browser sends one for a file input left empty
                // (with empty content). Taken for a file, its content was read by no rule.
                part.filename = parsed.filename.filter(|f| !f.is_empty());
            }
        }
        if part.name.is_none() {
            self.flags.invalid_part = true;
        }
        self.push_part_headers(part);
    }

    fn push_part_headers(&mut self, part: &mut Part) {
        let name = part.name.clone().unwrap_or_default();
        for raw in part.raw_headers.drain(..) {
            self.sink.push_part_header(Field::new(name.clone(), raw));
        }
    }

    /// Closes a part at a delimiter (`finished`) or at the end of a truncated body.
    fn finish_part(&mut self, mut part: Part, finished: bool) {
        if part.in_headers {
            // No blank line: ModSecurity drops such a part as nameless.
            self.flags.invalid_part = true;
            self.push_part_headers(&mut part);
            return;
        }
        let Some(name) = part.name else {
            return;
        };
        // The line ending before a delimiter belongs to the delimiter.
        let ending = if finished { part.last_ending } else { 0 };
        match part.filename {
            Some(filename) => {
                let size = part
                    .file_size
                    .saturating_sub(u64::try_from(ending).unwrap_or(0));
                self.sink.out.files_combined_size =
                    self.sink.out.files_combined_size.saturating_add(size);
                self.sink.out.files.push(Field::new(name, filename));
            }
            None => {
                let mut data = part.data;
                data.truncate(data.len().saturating_sub(ending));
                self.sink.push_form_field(&name, &data);
            }
        }
    }
}

fn trim_ows_start(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(bytes.len());
    bytes.get(start..).unwrap_or_default()
}

#[derive(Default)]
struct Disposition {
    name: Option<Vec<u8>>,
    filename: Option<Vec<u8>>,
    invalid_quoting: bool,
    error: Option<&'static str>,
}

impl Disposition {
    fn fail(mut self, error: &'static str) -> Disposition {
        self.error = Some(error);
        self
    }
}

/// `form-data; name="x"; filename="y"`, with ModSecurity's rules: only `name` and `filename`
/// are accepted, each once; values are tokens or quoted strings (single quotes accepted but
/// flagged), where `\` escapes only the quote and itself. What was read before an error is kept.
fn parse_disposition(value: &[u8]) -> Disposition {
    let mut out = Disposition::default();
    let Some(rest) = strip_prefix_ignore_case(value, b"form-data") else {
        return out.fail("not form-data");
    };
    let mut p = Cursor(rest);
    p.skip_ows();
    if p.is_empty() {
        return out;
    }
    if !p.eat(b';') {
        return out.fail("missing ';' after form-data");
    }
    loop {
        p.skip_ows();
        if p.is_empty() {
            // A trailing `;` is harmless.
            return out;
        }
        let param = p.take_while(|b| b != b'=' && b != b' ' && b != b'\t');
        p.skip_ows();
        if !p.eat(b'=') {
            return out.fail("parameter without '='");
        }
        p.skip_ows();
        let Some(&first) = p.0.first() else {
            return out.fail("parameter without a value");
        };
        let param_value = if first == b'"' || first == b'\'' {
            if first == b'\'' {
                out.invalid_quoting = true;
            }
            p.eat(first);
            match p.quoted(first) {
                Some(v) => v,
                None => {
                    return out.fail("unterminated quoted value");
                }
            }
        } else {
            p.take_while(is_token_char).to_vec()
        };
        let is_name = param.eq_ignore_ascii_case(b"name");
        if !is_name && !param.eq_ignore_ascii_case(b"filename") {
            return out.fail("unknown parameter");
        }
        // A single quote inside a name or file name is flagged too: it is how quoting tricks
        // that some parsers fall for end up looking.
        if param_value.contains(&b'\'') {
            out.invalid_quoting = true;
        }
        let slot = if is_name {
            &mut out.name
        } else {
            &mut out.filename
        };
        if slot.is_some() {
            return out.fail("duplicate parameter");
        }
        *slot = Some(param_value);
        let before = p.0;
        p.skip_ows();
        if p.is_empty() {
            return out;
        }
        if !p.eat(b';') {
            // A quote next to where the `;` should be is a quoting trick.
            let previous = value
                .len()
                .checked_sub(before.len() + 1)
                .and_then(|at| value.get(at));
            if [previous, p.0.first()]
                .into_iter()
                .any(|b| matches!(b, Some(b'"' | b'\'')))
            {
                out.invalid_quoting = true;
            }
            return out.fail("missing ';' between parameters");
        }
    }
}

/// RFC 2616 token characters, as ModSecurity checks them for unquoted values.
fn is_token_char(b: u8) -> bool {
    b > 32 && b < 127 && !b"()<>@,;:\\\"/[]?=".contains(&b)
}

fn strip_prefix_ignore_case<'a>(bytes: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
    match bytes.get(..prefix.len()) {
        Some(head) if head.eq_ignore_ascii_case(prefix) => bytes.get(prefix.len()..),
        _ => None,
    }
}

struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn skip_ows(&mut self) {
        self.0 = trim_ows_start(self.0);
    }

    fn eat(&mut self, b: u8) -> bool {
        match self.0.split_first() {
            Some((&first, rest)) if first == b => {
                self.0 = rest;
                true
            }
            _ => false,
        }
    }

    fn take_while(&mut self, keep: impl Fn(u8) -> bool) -> &'a [u8] {
        let end = self
            .0
            .iter()
            .position(|&b| !keep(b))
            .unwrap_or(self.0.len());
        let (taken, rest) = self.0.split_at(end);
        self.0 = rest;
        taken
    }

    /// The rest of a quoted string (opening quote already eaten), unescaped, with the cursor
    /// past the closing quote; `None` when it is not closed.
    fn quoted(&mut self, quote: u8) -> Option<Vec<u8>> {
        let mut value = Vec::new();
        let mut bytes = self.0.iter();
        while let Some(&b) = bytes.next() {
            if b == quote {
                self.0 = bytes.as_slice();
                return Some(value);
            }
            if b == b'\\' {
                match bytes.as_slice().first() {
                    Some(&next) if next == quote || next == b'\\' => {
                        value.push(next);
                        bytes.next();
                        continue;
                    }
                    // Browsers send unescaped backslashes (Windows paths); keep them.
                    Some(_) => {}
                    None => return None,
                }
            }
            value.push(b);
        }
        None
    }
}

/// A multipart body, into the sink.
pub(super) fn parse_multipart_body(content_type: &[u8], body: &[u8], sink: &mut BodySink<'_>) {
    let boundary = match parse_boundary(content_type) {
        Ok(boundary) => boundary,
        Err(message) => {
            sink.invalid(format!("multipart: {message}"));
            return;
        }
    };
    let max_parts = sink.limits.max_multipart_parts;
    let mut parser = Parser {
        sink,
        flags: MultipartFlags {
            boundary_quoted: boundary.quoted,
            boundary_whitespace: boundary.whitespace,
            missing_semicolon: boundary.missing_semicolon,
            ..MultipartFlags::default()
        },
        crlf_line: false,
    };
    let mut delimiter = b"--".to_vec();
    delimiter.extend_from_slice(&boundary.value);
    let delimiter_finder = memmem::Finder::new(&delimiter);

    let mut part: Option<Part> = None;
    let mut parts = 0usize;
    let mut delimiters = 0usize;
    let mut complete = false;
    let mut stopped = false;
    let mut rest = body;
    while !rest.is_empty() {
        let (content, ending, consumed) = next_line(rest);
        let line = rest.get(..consumed).unwrap_or_default();
        rest = rest.get(consumed..).unwrap_or_default();

        if let Some(tail) = content.strip_prefix(delimiter.as_slice()) {
            let (is_final, after) = match tail.strip_prefix(b"--") {
                Some(after) => (true, after),
                None => (false, tail),
            };
            if !after.is_empty() {
                parser.sink.invalid(format!(
                    "multipart: invalid boundary line: {}",
                    show(content)
                ));
            }
            parser.line_ending(ending);
            delimiters += 1;
            if let Some(done) = part.take() {
                parser.finish_part(done, true);
            }
            if is_final {
                complete = true;
                parser.flags.data_after = !rest.is_empty();
                parser.check_epilogue(rest, &delimiter);
                break;
            }
            if parts >= max_parts {
                stopped = true;
                parser.flags.file_limit_exceeded = true;
                parser.sink.out.issues.push(ParseIssue::new(
                    ParseIssueKind::TooManyParts,
                    format!("more than {max_parts} multipart parts; the rest was not parsed"),
                ));
                break;
            }
            parts += 1;
            part = Some(Part {
                in_headers: true,
                ..Part::default()
            });
            continue;
        }

        parser.check_lookalike(content, &delimiter_finder, &boundary);
        match part.as_mut() {
            None => parser.flags.data_before = true,
            Some(p) if p.in_headers => parser.header_line(p, content, ending),
            Some(p) => p.data_line(line, ending),
        }
    }

    if !complete && !stopped {
        if let Some(unfinished) = part.take() {
            parser.finish_part(unfinished, false);
        }
        parser.sink.invalid(if delimiters == 0 {
            "multipart: no boundaries found in payload"
        } else {
            "multipart: final boundary missing"
        });
    }
    parser.flags.crlf_lf_lines = parser.crlf_line && parser.flags.lf_line;
    parser.sink.out.multipart = parser.flags;
}

impl Parser<'_, '_> {
    /// What follows the final delimiter is an epilogue, which RFC 2046 says to ignore, and so
    /// does this parser (ModSecurity flags it, [`MultipartFlags::data_after`]). But not every
    /// application stops there: a parser that takes `--boundary--` for one more delimiter, or
    /// reads on to the end of the body, finds the parts that follow, and the rules never saw
    /// them. No client sends a delimiter after the final one, so one makes the body invalid.
    /// Other bytes there (a stray line ending) are left to the flag.
    fn check_epilogue(&mut self, mut epilogue: &[u8], delimiter: &[u8]) {
        while !epilogue.is_empty() {
            let (content, _, consumed) = next_line(epilogue);
            if super::trim_start(content).starts_with(delimiter) {
                self.sink
                    .invalid("multipart: a delimiter after the final boundary");
                return;
            }
            epilogue = epilogue.get(consumed..).unwrap_or_default();
        }
    }

    /// Lines that look like a delimiter but are not ours: a sign that someone hopes the
    /// application splits the body differently.
    fn check_lookalike(
        &mut self,
        content: &[u8],
        delimiter: &memmem::Finder<'_>,
        boundary: &Boundary,
    ) {
        let Some(after_dashes) = content.strip_prefix(b"--") else {
            if delimiter.find(content).is_some() {
                // A parser that looks for the delimiter anywhere, not at the start of a line,
                // splits the body here, and reads a part the rules never saw. No client sends
                // it: the boundary is chosen to be found nowhere in the content.
                self.flags.unmatched_boundary = true;
                self.sink
                    .invalid("multipart: boundary in the middle of a line");
            }
            return;
        };
        if after_dashes.is_empty() {
            return;
        }
        if boundary.quoted
            && after_dashes
                .strip_prefix(b"\"")
                .is_some_and(|b| b.starts_with(&boundary.value))
        {
            self.sink.invalid("multipart: invalid boundary (quotes)");
            return;
        }
        let unspaced = super::trim_start(after_dashes);
        if unspaced.len() != after_dashes.len() && unspaced.starts_with(&boundary.value) {
            self.sink
                .invalid("multipart: invalid boundary (whitespace)");
            return;
        }
        self.flags.unmatched_boundary = true;
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::super::{parse_body, ParseLimits, ParsedBody};
    use super::*;
    use crate::request::Request;

    fn parse_with(content_type: &str, body: &str, limits: &ParseLimits) -> ParsedBody {
        let request = Request::builder()
            .method("POST")
            .header("Content-Type", content_type)
            .body(body)
            .build();
        parse_body(&request, limits, 0)
    }

    fn parse(content_type: &str, body: &str) -> ParsedBody {
        parse_with(content_type, body, &ParseLimits::default())
    }

    fn fields(fields: &[Field]) -> Vec<(String, String)> {
        fields
            .iter()
            .map(|f| {
                (
                    String::from_utf8_lossy(&f.name).into_owned(),
                    String::from_utf8_lossy(&f.value).into_owned(),
                )
            })
            .collect()
    }

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    fn messages(body: &ParsedBody) -> Vec<String> {
        body.issues.iter().map(|i| i.message.clone()).collect()
    }

    const CT: &str = "multipart/form-data; boundary=0000";

    /// ModSecurity's own "normal" regression case.
    const NORMAL: &str = "--0000\r\n\
        Content-Disposition: form-data; name=\"name\"\r\n\
        \r\n\
        Brian Rectanus\r\n\
        --0000\r\n\
        Content-Disposition: form-data; name=\"email\"\r\n\
        \r\n\
        brian.rectanus@breach.com\r\n\
        --0000\r\n\
        Content-Disposition: form-data; name=\"image\"; filename=\"image.jpg\"\r\n\
        Content-Type: image/jpeg\r\n\
        \r\n\
        BINARYDATA\r\n\
        --0000--\r\n";

    #[test]
    fn normal() {
        let body = parse(CT, NORMAL);
        assert_eq!(
            fields(&body.args),
            p(&[
                ("name", "Brian Rectanus"),
                ("email", "brian.rectanus@breach.com")
            ])
        );
        assert_eq!(fields(&body.files), p(&[("image", "image.jpg")]));
        assert_eq!(body.files_combined_size, 10);
        assert_eq!(
            fields(&body.part_headers),
            p(&[
                ("name", "Content-Disposition: form-data; name=\"name\""),
                ("email", "Content-Disposition: form-data; name=\"email\""),
                (
                    "image",
                    "Content-Disposition: form-data; name=\"image\"; filename=\"image.jpg\""
                ),
                ("image", "Content-Type: image/jpeg"),
            ])
        );
        assert!(body.issues.is_empty(), "{:?}", body.issues);
        assert_eq!(body.multipart, MultipartFlags::default());
    }

    #[test]
    fn no_final_line_ending_is_fine() {
        let body = parse(CT, NORMAL.trim_end());
        assert!(body.issues.is_empty(), "{:?}", body.issues);
        assert!(!body.multipart.strict_error);
        assert_eq!(body.args.len(), 2);
    }

    #[test]
    fn values_keep_inner_lines_and_dashes() {
        let body = parse(
            CT,
            "--0000\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n--test\r\nline 2\n\r\n\r\n--0000\r\n\
             Content-Disposition: form-data; name=\"b\"\r\n\r\n\r\n--0000\r\n\
             Content-Disposition: form-data; name=\"c\"\r\n\r\n--0000--",
        );
        assert_eq!(
            fields(&body.args),
            p(&[("a", "--test\r\nline 2\n\r\n"), ("b", ""), ("c", "")])
        );
        assert!(
            body.multipart.unmatched_boundary,
            "`--test` looks like a boundary"
        );
        assert!(
            !body.multipart.strict_error,
            "but that is not a strict error"
        );
        assert!(body.issues.is_empty());
    }

    #[test]
    fn quoted_boundary() {
        let body = parse(
            "multipart/form-data; boundary=\"a'b:c\"",
            "--a'b:c\r\nContent-Disposition: form-data; name=x\r\n\r\n1\r\n--a'b:c--\r\n",
        );
        assert_eq!(fields(&body.args), p(&[("x", "1")]));
        assert!(body.multipart.boundary_quoted);
        assert!(body.multipart.strict_error);
        assert!(body.issues.is_empty());
    }

    #[test]
    fn content_type_boundary_cases() {
        // (content type, boundary, quoted, whitespace, missing semicolon)
        let good: &[(&str, &str, bool, bool, bool)] = &[
            (
                "multipart/form-data; boundary=abc",
                "abc",
                false,
                false,
                false,
            ),
            (
                "MULTIPART/FORM-DATA;boundary=abc",
                "abc",
                false,
                false,
                false,
            ),
            (
                "multipart/form-data; BOUNDARY=abc",
                "abc",
                false,
                false,
                false,
            ),
            (
                "multipart/form-data; charset=utf-8; boundary=abc",
                "abc",
                false,
                false,
                false,
            ),
            (
                "multipart/form-data; boundary=abc; charset=utf-8",
                "abc",
                false,
                false,
                false,
            ),
            (
                "multipart/form-data; boundary=\"a=b\"; charset=x",
                "a=b",
                true,
                false,
                false,
            ),
            (
                "multipart/form-data; boundary=\"a b\"",
                "a b",
                true,
                false,
                false,
            ),
            (
                "multipart/form-data; boundary =abc",
                "abc",
                false,
                true,
                false,
            ),
            (
                "multipart/form-data; boundary= abc",
                "abc",
                false,
                true,
                false,
            ),
            (
                "multipart/form-data; boundary=abc ",
                "abc",
                false,
                true,
                false,
            ),
            (
                "multipart/form-data boundary=abc",
                "abc",
                false,
                false,
                true,
            ),
            (
                "  multipart/form-data;boundary=--=_x'()+,./:?",
                "--=_x'()+,./:?",
                false,
                false,
                false,
            ),
            (
                "multipart/form-data; boundary=----WebKitFormBoundary7MA4YWxkTrZu0gW",
                "----WebKitFormBoundary7MA4YWxkTrZu0gW",
                false,
                false,
                false,
            ),
        ];
        for &(ct, b, quoted, whitespace, missing_semicolon) in good {
            let parsed = parse_boundary(ct.as_bytes()).unwrap_or_else(|e| panic!("{ct}: {e}"));
            assert_eq!(parsed.value, b.as_bytes(), "{ct}");
            assert_eq!(parsed.quoted, quoted, "{ct}");
            assert_eq!(parsed.whitespace, whitespace, "{ct}");
            assert_eq!(parsed.missing_semicolon, missing_semicolon, "{ct}");
        }
        let bad = [
            "multipart/form-data",
            "multipart/form-data;",
            "multipart/form-data; boundary",
            "multipart/form-data; boundary=",
            "multipart/form-data; boundary=\"\"",
            "multipart/form-data; boundary=\"abc",
            "multipart/form-data; boundary=abc\"",
            "multipart/form-data; boundary=\"abc\"x",
            "multipart/form-data; boundary=a; boundary=b",
            "multipart/form-data; boundary=a<b",
            "multipart/form-data; boundary=a\u{e9}",
            "multipart/form-data; boundary=\"abc \"",
            "multipart/form-data; boundary=\"a;b\"",
            "multipart/form-data; x=\"a;boundary=evil\"; boundary=good",
            "multipart/form-data; boundary=good; x=\"Boundary =evil\"",
            "multipart/form-data; boundary=a_boundary=b",
        ];
        for ct in bad {
            assert!(parse_boundary(ct.as_bytes()).is_err(), "{ct}");
            let body = parse(ct, "--abc\r\n");
            assert!(body.has_issue(ParseIssueKind::BodyInvalid), "{ct}");
            assert!(body.args.is_empty());
        }
    }

    #[test]
    fn file_parts() {
        let body = parse(
            CT,
            "--0000\r\nContent-Disposition: form-data; name=\"f1\"; filename=\"a.txt\"\r\n\r\nhello\r\n\
             --0000\r\nContent-Disposition: form-data; name=\"f2\"; filename=\"\"\r\n\r\n\r\n\
             --0000\r\nContent-Disposition: form-data; name=\"f3\"; filename=\"C:\\dir\\b.php\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n\x01\x02\r\n\x03\r\n--0000--\r\n",
        );
        assert_eq!(
            fields(&body.files),
            p(&[("f1", "a.txt"), ("f3", "C:\\dir\\b.php")])
        );
        assert_eq!(body.files_combined_size, 10, "5 + 5");
        assert_eq!(
            fields(&body.args),
            p(&[("f2", "")]),
            "an empty file name makes no file"
        );
        assert!(body.issues.is_empty(), "{:?}", body.issues);
    }

    /// The bug: a part with `filename=""` was taken for a file, whose content no rule reads,
    /// while ASP.NET Core (and ModSecurity) read it as a form field.
    #[test]
    fn a_part_with_an_empty_file_name_is_a_field_whose_value_is_read() {
        let body = parse(
            CT,
            "--0000\r\nContent-Disposition: form-data; name=\"signInName\"; filename=\"\"\r\n\r\n\
             ' OR 1=1--\r\n--0000--\r\n",
        );
        assert!(body.files.is_empty());
        assert_eq!(fields(&body.args), p(&[("signInName", "' OR 1=1--")]));
    }

    #[test]
    fn missing_final_boundary_keeps_what_was_read() {
        let body = parse(
            CT,
            "--0000\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n\
             --0000\r\nContent-Disposition: form-data; name=\"b\"\r\n\r\n<script>",
        );
        assert_eq!(fields(&body.args), p(&[("a", "1"), ("b", "<script>")]));
        assert_eq!(messages(&body), ["multipart: final boundary missing"]);
        assert!(body.multipart.strict_error);
    }

    #[test]
    fn no_boundary_at_all() {
        let body = parse(CT, "just some text\r\n");
        assert_eq!(
            messages(&body),
            ["multipart: no boundaries found in payload"]
        );
        assert!(body.multipart.data_before);
        assert!(body.multipart.strict_error);
    }

    #[test]
    fn lf_only_lines() {
        let body = parse(
            CT,
            "--0000\nContent-Disposition: form-data; name=\"a\"\n\nx\ny\n--0000--\n",
        );
        assert_eq!(fields(&body.args), p(&[("a", "x\ny")]));
        assert!(body.multipart.lf_line);
        assert!(!body.multipart.crlf_lf_lines);
        assert!(body.multipart.strict_error);
        assert!(body.issues.is_empty());

        let body = parse(
            CT,
            "--0000\r\nContent-Disposition: form-data; name=\"a\"\n\r\nx\r\n--0000--\r\n",
        );
        assert!(body.multipart.lf_line);
        assert!(body.multipart.crlf_lf_lines);
    }

    #[test]
    fn part_limit() {
        let three = "--0000\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n\
                     --0000\r\nContent-Disposition: form-data; name=\"b\"\r\n\r\n2\r\n\
                     --0000\r\nContent-Disposition: form-data; name=\"c\"\r\n\r\n3\r\n--0000--\r\n";
        let limits = ParseLimits {
            max_multipart_parts: 2,
            ..ParseLimits::default()
        };
        let body = parse_with(CT, three, &limits);
        assert_eq!(fields(&body.args), p(&[("a", "1"), ("b", "2")]));
        assert!(body.has_issue(ParseIssueKind::TooManyParts));
        assert!(!body.has_issue(ParseIssueKind::BodyInvalid));
        assert!(body.multipart.file_limit_exceeded);
        assert!(body.multipart.strict_error);

        let limits = ParseLimits {
            max_multipart_parts: 3,
            ..ParseLimits::default()
        };
        let body = parse_with(CT, three, &limits);
        assert_eq!(body.args.len(), 3);
        assert!(body.issues.is_empty());
    }

    #[test]
    fn data_before_and_after() {
        let body = parse(
            CT,
            "preamble\r\n--0000\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--0000--\r\n\r\n--0000\r\nContent-Disposition: form-data; name=\"b\"\r\n\r\n2\r\n",
        );
        assert_eq!(fields(&body.args), p(&[("a", "1")]));
        assert!(body.multipart.data_before);
        assert!(body.multipart.data_after);
        assert!(body.multipart.strict_error);
        assert_eq!(
            messages(&body),
            ["multipart: a delimiter after the final boundary"]
        );
    }

    #[test]
    fn a_part_after_the_final_boundary_makes_the_body_invalid() {
        let part = "Content-Disposition: form-data; name=\"b\"\r\n\r\n' OR 1=1--\r\n";
        for (epilogue, invalid) in [
            ("", false),
            ("\r\n", false),
            ("\r\n\r\n", false),
            ("trailing words\r\n", false),
            // Not a delimiter of this body: flagged as data after, nothing more.
            ("--000\r\n-- 0000\r\n", false),
            // The body's delimiter with bytes after it, which the parser takes for one.
            ("--00000\r\n", true),
            (&format!("--0000\r\n{part}--0000--\r\n"), true),
            (&format!("\r\n--0000\n{part}"), true),
            (&format!("--0000--\r\n--0000\r\n{part}"), true),
            (&format!(" \t--0000\r\n{part}"), true),
        ] {
            let data = format!(
                "--0000\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--0000--\r\n{epilogue}"
            );
            let body = parse(CT, &data);
            assert_eq!(fields(&body.args), p(&[("a", "1")]), "{epilogue:?}");
            assert_eq!(
                body.multipart.data_after,
                !epilogue.is_empty(),
                "{epilogue:?}"
            );
            assert_eq!(
                body.has_issue(ParseIssueKind::BodyInvalid),
                invalid,
                "{epilogue:?}: {:?}",
                body.issues
            );
        }
    }

    #[test]
    fn header_folding() {
        let body = parse(
            CT,
            "--0000\r\nContent-Disposition: form-data;\r\n name=\"a\"\r\nX-Y: 1\r\n\t2\r\n\r\nv\r\n--0000--\r\n",
        );
        assert_eq!(fields(&body.args), p(&[("a", "v")]));
        assert_eq!(
            fields(&body.part_headers),
            p(&[
                ("a", "Content-Disposition: form-data; name=\"a\""),
                ("a", "X-Y: 1\t2")
            ])
        );
        assert!(body.multipart.header_folding);
        assert!(!body.multipart.invalid_header_folding);
        assert!(body.multipart.strict_error);

        let body = parse(
            CT,
            "--0000\r\nContent-Disposition: form-data; name=\"a\"\r\nX: 1\r\n\x0b2\r\n\r\nv\r\n--0000--\r\n",
        );
        assert!(body.multipart.invalid_header_folding);

        let body = parse(
            CT,
            "--0000\r\n folded first\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nv\r\n--0000--\r\n",
        );
        assert!(body.has_issue(ParseIssueKind::BodyInvalid));
        assert_eq!(
            fields(&body.args),
            p(&[("a", "v")]),
            "the part is still read"
        );
    }

    #[test]
    fn invalid_parts_are_skipped_and_parsing_goes_on() {
        let body = parse(
            CT,
            "--0000\r\n\r\nno headers\r\n\
             --0000\r\nContent-Disposition: form-data;\r\n\r\nno name\r\n\
             --0000\r\nContent-Disposition: form-data name=\"c\"\r\n\r\nbad syntax\r\n\
             --0000\r\nContent-Disposition: form-data; name=\"d\"\r\n\
             --0000\r\n:\r\n\r\nnameless header\r\n\
             --0000\r\nContent-Disposition: attachment; name=\"f\"\r\n\r\nnot form-data\r\n\
             --0000\r\nContent-Disposition: form-data; name=\"ok\"\r\n\r\nread\r\n--0000--\r\n",
        );
        assert_eq!(fields(&body.args), p(&[("ok", "read")]));
        assert!(body.multipart.invalid_part);
        assert!(body.multipart.strict_error);
        assert_eq!(
            messages(&body),
            [
                "multipart: part missing Content-Disposition header",
                "multipart: Content-Disposition header missing name field",
                "multipart: invalid Content-Disposition header (missing ';' after form-data): form-data name=\"c\"",
                "multipart: invalid part header (header name missing)",
                "multipart: part missing Content-Disposition header",
                "multipart: invalid Content-Disposition header (not form-data): attachment; name=\"f\"",
            ]
        );
        // Part `d` ended without a blank line: its header is still reported, without a name.
        assert!(fields(&body.part_headers).contains(&(
            "".into(),
            "Content-Disposition: form-data; name=\"d\"".into()
        )));
    }

    #[test]
    fn content_disposition_cases() {
        // (value, name, filename, invalid quoting, error)
        type Case = (
            &'static str,
            Option<&'static str>,
            Option<&'static str>,
            bool,
            bool,
        );
        let cases: &[Case] = &[
            ("form-data", None, None, false, false),
            ("form-data;", None, None, false, false),
            ("form-data; name=\"a\"", Some("a"), None, false, false),
            (
                "FORM-DATA;NAME=a;FILENAME=b",
                Some("a"),
                Some("b"),
                false,
                false,
            ),
            (
                "form-data; name = \"a\" ; filename= \"b\" ",
                Some("a"),
                Some("b"),
                false,
                false,
            ),
            (
                "form-data; name=\"a\\\"b\\\\c\\d\"",
                Some("a\"b\\c\\d"),
                None,
                false,
                false,
            ),
            ("form-data; name='a'", Some("a"), None, true, false),
            ("form-data; name=\"it's\"", Some("it's"), None, true, false),
            ("form-data; name=a\"b", Some("a"), None, true, true),
            ("form-data; name=a b", Some("a"), None, false, true),
            ("form-data; name=\"a\"x", Some("a"), None, true, true),
            ("form-data; name=\"a", None, None, false, true),
            ("form-data; name=\"a\\", None, None, false, true),
            (
                "form-data; name=\"a\"; name=\"b\"",
                Some("a"),
                None,
                false,
                true,
            ),
            (
                "form-data; name=\"a\"; filename*=UTF-8''x",
                Some("a"),
                None,
                false,
                true,
            ),
            ("form-data; name=\"a\"; foo", Some("a"), None, false, true),
            ("form-data; name=", None, None, false, true),
            ("form-data name=\"a\"", None, None, false, true),
            ("inline; name=\"a\"", None, None, false, true),
        ];
        for &(value, name, filename, invalid_quoting, error) in cases {
            let d = parse_disposition(value.as_bytes());
            assert_eq!(d.name.as_deref(), name.map(str::as_bytes), "{value}");
            assert_eq!(
                d.filename.as_deref(),
                filename.map(str::as_bytes),
                "{value}"
            );
            assert_eq!(d.invalid_quoting, invalid_quoting, "{value}");
            assert_eq!(d.error.is_some(), error, "{value}: {:?}", d.error);
        }
    }

    #[test]
    fn filename_found_differently_than_by_search() {
        let body = parse(
            CT,
            "--0000\r\nContent-Disposition: form-data; name=\"a\"; filename =\"x.php\"\r\n\r\n1\r\n--0000--\r\n",
        );
        assert_eq!(fields(&body.files), p(&[("a", "x.php")]));
        assert_eq!(
            messages(&body),
            ["multipart: invalid Content-Disposition header (filename)"]
        );
    }

    #[test]
    fn lookalike_boundaries() {
        let part = "Content-Disposition: form-data; name=\"a\"\r\n\r\n";
        let cases: &[(&str, &str, bool, bool)] = &[
            // (content type, data line, unmatched, invalid)
            (CT, "X--0000", true, true),
            (CT, "name=\"a\"; x=\"--0000\"", true, true),
            (CT, "--0001", true, false),
            (CT, "--00000", false, true),
            (CT, "-- 0000", false, true),
            (CT, "--", false, false),
            (
                "multipart/form-data; boundary=\"0000\"",
                "--\"0000\"",
                false,
                true,
            ),
            (CT, "plain text", false, false),
        ];
        for &(ct, data, unmatched, invalid) in cases {
            let body = parse(ct, &format!("--0000\r\n{part}{data}\r\n--0000--\r\n"));
            assert_eq!(body.multipart.unmatched_boundary, unmatched, "{data:?}");
            let bodies_invalid = body.has_issue(ParseIssueKind::BodyInvalid);
            assert_eq!(bodies_invalid, invalid, "{data:?}: {:?}", body.issues);
        }
    }

    #[test]
    fn junk_after_a_boundary_is_invalid_but_still_a_boundary() {
        let body = parse(
            CT,
            "--0000 \r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--0000--junk\r\n",
        );
        assert_eq!(fields(&body.args), p(&[("a", "1")]));
        assert_eq!(body.issues.len(), 2);
        assert!(body.multipart.strict_error);
    }

    #[test]
    fn duplicate_and_broken_part_headers() {
        let body = parse(
            CT,
            "--0000\r\nContent-Disposition: form-data; name=\"a\"\r\n\
             content-disposition: form-data; name=\"b\"\r\nno colon here\r\nX: a\0b\r\n\r\n1\r\n--0000--\r\n",
        );
        assert_eq!(
            fields(&body.args),
            p(&[("a", "1")]),
            "the first header wins"
        );
        assert_eq!(body.part_headers.len(), 4, "every line is reported");
        assert_eq!(body.issues.len(), 3, "{:?}", body.issues);
    }

    #[test]
    fn many_part_headers_stay_cheap_and_bounded() {
        let name = "n".repeat(50_000);
        let mut body = format!("--0000\r\nContent-Disposition: form-data; name=\"{name}\"\r\n");
        for i in 0..100_000 {
            body.push_str(&format!("h{i}:\r\n"));
        }
        body.push_str("\r\nv\r\n--0000--\r\n");
        let parsed = parse(CT, &body);
        assert_eq!(
            parsed.args.len(),
            1,
            "plain fields are never dropped for the budget"
        );
        assert_eq!(parsed.args[0].value, b"v");
        assert!(parsed.has_issue(ParseIssueKind::ExpansionLimit));
        let produced: usize = parsed
            .part_headers
            .iter()
            .map(|f| f.name.len() + f.value.len())
            .sum();
        assert!(
            produced <= body.len() * super::super::EXPANSION_FACTOR + super::super::EXPANSION_SLACK
        );
    }

    #[test]
    fn errors_are_listed_up_to_a_point() {
        let mut body = String::from("--0000\r\n");
        for _ in 0..1000 {
            body.push_str("no colon\r\n");
        }
        let parsed = parse(CT, &body);
        assert_eq!(parsed.issues.len(), 17, "16 listed and a count of the rest");
        // The missing final boundary is one of the unlisted ones.
        assert_eq!(parsed.issues[16].message, "985 more body errors not listed");
    }

    #[test]
    fn json_fields_are_flattened() {
        let body = parse(
            CT,
            "--0000\r\nContent-Disposition: form-data; name=\"attributes\"\r\nContent-Type: application/json\r\n\r\n\
             {\"city\":\"Paris\"}\r\n--0000\r\nContent-Disposition: form-data; name=\"up\"; filename=\"x.json\"\r\n\r\n\
             {\"not\":\"read\"}\r\n--0000--\r\n",
        );
        assert_eq!(
            fields(&body.args),
            p(&[
                ("attributes", "{\"city\":\"Paris\"}"),
                ("attributes.city", "Paris")
            ])
        );
        assert_eq!(fields(&body.json), p(&[("attributes.city", "Paris")]));
    }

    #[test]
    fn invalid_utf8_everywhere() {
        let raw: &[u8] = b"--0000\r\nContent-Disposition: form-data; name=\"\xff\xfe\"; filename=\"\xc0\xae.php\"\r\n\r\n\xff\r\n\
              --0000\r\nContent-Disposition: form-data; name=\"\xe9\"\r\n\r\n\x80\x81\r\n--0000--\r\n";
        let request = Request::builder()
            .method("POST")
            .header("Content-Type", CT)
            .body(raw)
            .build();
        let body = parse_body(&request, &ParseLimits::default(), 0);
        assert_eq!(
            body.files,
            [Field::new(&b"\xff\xfe"[..], &b"\xc0\xae.php"[..])]
        );
        assert_eq!(body.args, [Field::new(&b"\xe9"[..], &b"\x80\x81"[..])]);
        assert!(body.issues.is_empty());
    }

    #[test]
    fn limits_shared_with_args() {
        let limits = ParseLimits {
            max_args: 1,
            ..ParseLimits::default()
        };
        let body = parse_with(CT, NORMAL, &limits);
        assert_eq!(fields(&body.args), p(&[("name", "Brian Rectanus")]));
        assert!(body.has_issue(ParseIssueKind::TooManyArgs));
        assert_eq!(body.files.len(), 1, "files are not arguments");
    }
}
