//! The request's values, laid out for rules: every collection a rule can name, as numbered
//! slots.
//!
//! Parsing produces fields (arguments, headers, cookies, JSON leaves...). Here they are moved
//! into one flat list, and every name and every value gets a *slot* number that stays stable
//! for the whole request. Slots are what the compiled program caches transformed values under:
//! `ARGS` and `ARGS_GET` share the slots of the query arguments, so a value transformed for
//! one is ready for the other.
//!
//! The head (request line, query, headers, cookies) is laid out first; the body's fields are
//! appended when the body phase starts, so head slots never move.

use std::borrow::Cow;

use crate::parse::{self, BodyProcessor, Field, ParseIssueKind, ParseLimits};
use crate::request::Request;
use crate::rules::Collection;

/// Where a field came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    Scalar(Collection),
    QueryArg,
    Header,
    Cookie,
    BodyArg,
    Json,
    File,
    PartHeader,
    Xml,
}

/// Names or values of the fields of a source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Part {
    Value,
    Name,
}

/// A field or scalar: borrowed from the request where its bytes are there as they are
/// (headers, the URI, the body), owned where parsing made them (decoded arguments).
#[derive(Debug)]
struct Entry<'r> {
    source: Source,
    name: Cow<'r, [u8]>,
    value: Cow<'r, [u8]>,
}

/// One value of a collection, as the rules see it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Value<'a> {
    /// Stable within the request; the key of the transformation cache.
    pub slot: u32,
    /// The member's name (the argument name, the header name); empty for scalars.
    pub name: &'a [u8],
    /// The value.
    pub value: &'a [u8],
}

/// The scalars with a slot fixed in every request: the head's, and the raw body's (whose
/// values are there once the body is parsed). They are the first entries, in this order:
/// [`fixed_scalar`] tells which one a slot holds without looking at the request, so a
/// compiled program can scan them for the literals of their own conditions only.
pub(crate) const FIXED_SCALARS: [Collection; 11] = [
    Collection::RequestLine,
    Collection::RequestMethod,
    Collection::RequestProtocol,
    Collection::RequestUri,
    Collection::RequestUriRaw,
    Collection::RequestBasename,
    Collection::RequestFilename,
    Collection::QueryString,
    Collection::RemoteAddr,
    Collection::RequestBody,
    Collection::RequestBodyUnlessXml,
];

/// The request's collections.
#[derive(Debug)]
pub(crate) struct RequestData<'r> {
    request: &'r Request,
    entries: Vec<Entry<'r>>,
    /// Where each source's entries are (each source is pushed in one piece).
    ranges: Vec<(Source, std::ops::Range<usize>)>,
    /// Entry index of each scalar, by `Collection as usize`.
    scalars: Vec<Option<usize>>,
    body_parsed: bool,
    head_urlencoded_error: bool,
    /// Why the body processor failed, once the body is parsed.
    body_error: Option<String>,
    /// The first parse limit the request hit (`ParseIssueKind::is_limit`): some of its
    /// values were dropped, and no rule reads them.
    limit_hit: Option<String>,
}

impl<'r> RequestData<'r> {
    /// Lays out the head of the request.
    pub(crate) fn new(request: &'r Request, limits: &ParseLimits) -> RequestData<'r> {
        let mut head = parse::parse_head(request, limits);
        let mut data = RequestData {
            request,
            entries: Vec::with_capacity(
                16 + head.query_args.len() + request.headers().len() + head.cookies.len(),
            ),
            ranges: Vec::with_capacity(8),
            scalars: Vec::new(),
            body_parsed: false,
            head_urlencoded_error: false,
            body_error: None,
            limit_hit: None,
        };
        data.note_limit_hit(&head.issues);
        let mut basename = head
            .decoded_path
            .rsplit(|&b| b == b'/' || b == b'\\')
            .next()
            .unwrap_or_default()
            .to_vec();
        let mut remote = request
            .remote_addr()
            .map(|a| a.to_string().into_bytes())
            .unwrap_or_default();
        for c in FIXED_SCALARS {
            if matches!(
                c,
                Collection::RequestBody | Collection::RequestBodyUnlessXml
            ) {
                // Its entry, empty and out of its collection until the body is parsed.
                data.entries.push(Entry {
                    source: Source::Scalar(c),
                    name: Cow::Borrowed(b""),
                    value: Cow::Borrowed(b""),
                });
                continue;
            }
            let value: Cow<'r, [u8]> = match c {
                Collection::RequestLine => request.request_line().into(),
                Collection::RequestMethod => request.method().into(),
                Collection::RequestProtocol => request.protocol().into(),
                Collection::RequestUri | Collection::RequestUriRaw => request.uri().into(),
                Collection::RequestBasename => Cow::Owned(std::mem::take(&mut basename)),
                Collection::RequestFilename => Cow::Owned(std::mem::take(&mut head.decoded_path)),
                Collection::QueryString => request.query().unwrap_or_default().into(),
                Collection::RemoteAddr => Cow::Owned(std::mem::take(&mut remote)),
                _ => Cow::Borrowed(b""),
            };
            data.push_scalar(c, value);
        }
        data.push_fields(Source::QueryArg, head.query_args);
        let start = data.entries.len();
        for (n, v) in request.headers().iter() {
            data.entries.push(Entry {
                source: Source::Header,
                name: n.into(),
                value: v.into(),
            });
        }
        data.ranges
            .push((Source::Header, start..data.entries.len()));
        data.push_fields(Source::Cookie, head.cookies);
        if head
            .issues
            .iter()
            .any(|i| i.kind == ParseIssueKind::InvalidUrlEncoding)
        {
            // Recorded under the body's URLENCODED_ERROR, which also counts the body's own.
            data.head_urlencoded_error = true;
        }
        data
    }

    /// Why the body could not be parsed as its declared type; `None` until
    /// [`parse_body`](Self::parse_body) has run, or when it could.
    pub(crate) fn body_error(&self) -> Option<&str> {
        self.body_error.as_deref()
    }

    /// The first parse limit the request hit, query or body (once the body is parsed): what it
    /// dropped was never inspected.
    pub(crate) fn limit_hit(&self) -> Option<&str> {
        self.limit_hit.as_deref()
    }

    fn note_limit_hit(&mut self, issues: &[parse::ParseIssue]) {
        if self.limit_hit.is_none() {
            self.limit_hit = issues
                .iter()
                .find(|i| i.kind.is_limit())
                .map(|i| i.message.clone());
        }
    }

    /// Parses the body and appends its fields. Idempotent.
    pub(crate) fn parse_body(&mut self, limits: &ParseLimits) {
        if self.body_parsed {
            return;
        }
        self.body_parsed = true;
        let args_already = self.count(Source::QueryArg);
        let body = parse::parse_body(self.request, limits, args_already);
        let processor: &[u8] = match body.processor {
            BodyProcessor::UrlEncoded => b"URLENCODED",
            BodyProcessor::Json => b"JSON",
            BodyProcessor::Multipart => b"MULTIPART",
            BodyProcessor::Xml => b"XML",
            _ => b"",
        };
        let error = body
            .issues
            .iter()
            .find(|i| i.kind == ParseIssueKind::BodyInvalid);
        self.body_error = error.map(|e| e.message.clone());
        self.note_limit_hit(&body.issues);
        let urlencoded_error = self.head_urlencoded_error
            || body
                .issues
                .iter()
                .any(|i| i.kind == ParseIssueKind::InvalidUrlEncoding);
        let flag = |b: bool| if b { b"1".to_vec() } else { b"0".to_vec() };
        let combined: usize = self
            .entries
            .iter()
            .filter(|e| e.source == Source::QueryArg)
            .map(|e| e.name.len() + e.value.len())
            .chain(body.args.iter().map(|f| f.name.len() + f.value.len()))
            .sum();
        let request = self.request;
        let scalars: [(Collection, Vec<u8>); 9] = [
            (
                Collection::RequestBodyLength,
                self.request.body().len().to_string().into_bytes(),
            ),
            (
                Collection::ArgsCombinedSize,
                combined.to_string().into_bytes(),
            ),
            (
                Collection::FilesCombinedSize,
                body.files_combined_size.to_string().into_bytes(),
            ),
            (
                Collection::MultipartStrictError,
                flag(body.multipart.strict_error),
            ),
            (
                Collection::MultipartUnmatchedBoundary,
                flag(body.multipart.unmatched_boundary),
            ),
            (Collection::ReqbodyError, flag(error.is_some())),
            (
                Collection::ReqbodyErrorMsg,
                error
                    .map(|e| e.message.clone().into_bytes())
                    .unwrap_or_default(),
            ),
            (Collection::ReqbodyProcessor, processor.to_vec()),
            (Collection::UrlencodedError, flag(urlencoded_error)),
        ];
        self.set_fixed_scalar(Collection::RequestBody, request.body());
        for (c, v) in scalars {
            self.push_scalar(c, v.into());
        }
        if body.processor != BodyProcessor::Xml {
            self.set_fixed_scalar(Collection::RequestBodyUnlessXml, request.body());
        }
        let mut xml = Vec::new();
        if let Some(values) = body.xml {
            xml.push(parse::Field::new(b"/*", values.text));
            xml.extend(
                values
                    .attributes
                    .into_iter()
                    .map(|v| parse::Field::new(b"//@*", v)),
            );
        }
        self.push_fields(Source::Xml, xml);
        self.push_fields(Source::BodyArg, body.args);
        self.push_fields(Source::Json, body.json);
        self.push_fields(Source::File, body.files);
        self.push_fields(Source::PartHeader, body.part_headers);
    }

    /// Gives the entry that [`new`](RequestData::new) reserved for `c` its value, and puts it
    /// in its collection.
    fn set_fixed_scalar(&mut self, c: Collection, value: &'r [u8]) {
        let Some(at) = FIXED_SCALARS.iter().position(|&f| f == c) else {
            return;
        };
        let Some(entry) = self.entries.get_mut(at) else {
            return;
        };
        entry.value = Cow::Borrowed(value);
        if self.scalars.len() <= c as usize {
            self.scalars.resize(c as usize + 1, None);
        }
        if let Some(index) = self.scalars.get_mut(c as usize) {
            *index = Some(at);
        }
    }

    fn push_scalar(&mut self, c: Collection, value: Cow<'r, [u8]>) {
        let at = c as usize;
        if self.scalars.len() <= at {
            self.scalars.resize(at + 1, None);
        }
        self.scalars[at] = Some(self.entries.len());
        self.entries.push(Entry {
            source: Source::Scalar(c),
            name: Cow::Borrowed(b""),
            value,
        });
    }

    fn push_fields(&mut self, source: Source, fields: Vec<Field>) {
        let start = self.entries.len();
        self.entries.extend(fields.into_iter().map(|f| Entry {
            source,
            name: f.name.into(),
            value: f.value.into(),
        }));
        self.ranges.push((source, start..self.entries.len()));
    }

    fn range(&self, source: Source) -> std::ops::Range<usize> {
        self.ranges
            .iter()
            .find(|(s, _)| *s == source)
            .map_or(0..0, |(_, r)| r.clone())
    }

    fn count(&self, source: Source) -> usize {
        self.range(source).len()
    }

    /// Whether the body's fields have been laid out.
    pub(crate) fn body_parsed(&self) -> bool {
        self.body_parsed
    }

    /// The number of slots so far.
    pub(crate) fn slot_count(&self) -> usize {
        self.entries.len() * 2
    }

    /// The request.
    pub(crate) fn request(&self) -> &'r Request {
        self.request
    }

    /// Calls `f` with every value of `collection`, in order. Dynamic collections (`TX`,
    /// `MATCHED_VAR`...) have no values here.
    pub(crate) fn for_each<'s>(&'s self, collection: Collection, mut f: impl FnMut(Value<'s>)) {
        let Some(sources) = sources(collection) else {
            if let Some(value) = self.scalar(collection) {
                f(value);
            }
            return;
        };
        // The sources of one collection are few (at most two), so a pass per source keeps the
        // collection's order: all query arguments, then all body arguments, as ModSecurity.
        for &(source, part) in sources {
            let range = self.range(source);
            let start = range.start;
            for (i, e) in self
                .entries
                .get(range)
                .unwrap_or_default()
                .iter()
                .enumerate()
            {
                f(value_of(start + i, e, part));
            }
        }
    }

    /// Calls `f` with the values of `collection` in `slots` (sorted), in the collection's
    /// order: what [`for_each`](RequestData::for_each) would call it with, but for values in
    /// other slots, without visiting them. A gated condition lists a few slots of collections
    /// of dozens of values.
    pub(crate) fn for_each_in<'s>(
        &'s self,
        collection: Collection,
        slots: &[u32],
        mut f: impl FnMut(Value<'s>),
    ) {
        let Some(sources) = sources(collection) else {
            if let Some(value) = self.scalar(collection) {
                if slots.binary_search(&value.slot).is_ok() {
                    f(value);
                }
            }
            return;
        };
        // A gate's list holds the slots of every collection its condition reads (a rule
        // reads six or seven), and each target asks for its own: a pass per source, as in
        // `for_each`, over the part of the sorted list inside the source's entries, found by
        // a binary search, instead of a look at every listed slot for every target.
        for &(source, part) in sources {
            let range = self.range(source);
            let first = slots.partition_point(|&s| s < slot(range.start, Part::Value));
            for &s in slots.get(first..).unwrap_or_default() {
                let (i, p) = entry_of(s);
                if i >= range.end {
                    break;
                }
                if p != part {
                    continue;
                }
                if let Some(e) = self.entries.get(i) {
                    f(value_of(i, e, part));
                }
            }
        }
    }

    /// The value of a scalar collection (`REQUEST_URI`), if the request has it.
    fn scalar(&self, collection: Collection) -> Option<Value<'_>> {
        if collection.is_dynamic() {
            return None;
        }
        let i = self.scalars.get(collection as usize).copied().flatten()?;
        let e = self.entries.get(i)?;
        Some(Value {
            slot: slot(i, Part::Value),
            name: b"",
            value: &e.value,
        })
    }
}

/// The fields a collection of fields (not a scalar, not a dynamic collection) holds: which part
/// of which source's entries, in the collection's order.
fn sources(collection: Collection) -> Option<&'static [(Source, Part)]> {
    Some(match collection {
        Collection::Args => &[
            (Source::QueryArg, Part::Value),
            (Source::BodyArg, Part::Value),
        ],
        Collection::ArgsNames => &[
            (Source::QueryArg, Part::Name),
            (Source::BodyArg, Part::Name),
        ],
        Collection::ArgsGet => &[(Source::QueryArg, Part::Value)],
        Collection::ArgsGetNames => &[(Source::QueryArg, Part::Name)],
        Collection::ArgsPost => &[(Source::BodyArg, Part::Value)],
        Collection::ArgsPostNames => &[(Source::BodyArg, Part::Name)],
        Collection::RequestHeaders => &[(Source::Header, Part::Value)],
        Collection::RequestHeadersNames => &[(Source::Header, Part::Name)],
        Collection::RequestCookies => &[(Source::Cookie, Part::Value)],
        Collection::RequestCookiesNames => &[(Source::Cookie, Part::Name)],
        Collection::Json => &[(Source::Json, Part::Value)],
        Collection::JsonNames => &[(Source::Json, Part::Name)],
        Collection::Files => &[(Source::File, Part::Value)],
        Collection::FilesNames => &[(Source::File, Part::Name)],
        Collection::MultipartPartHeaders => &[(Source::PartHeader, Part::Value)],
        Collection::Xml => &[(Source::Xml, Part::Value)],
        _ => return None,
    })
}

/// The value of entry `i` as a member of a collection of `part`s.
fn value_of<'s>(i: usize, e: &'s Entry<'_>, part: Part) -> Value<'s> {
    let (name, value) = match part {
        Part::Value => (&e.name[..], &e.value[..]),
        Part::Name => (&e.name[..], &e.name[..]),
    };
    Value {
        slot: slot(i, part),
        name,
        value,
    }
}

/// The fixed scalar whose value is in `slot`, if it is one: its index in [`FIXED_SCALARS`].
pub(crate) fn fixed_scalar(slot: u32) -> Option<usize> {
    match entry_of(slot) {
        (i, Part::Value) if i < FIXED_SCALARS.len() => Some(i),
        _ => None,
    }
}

/// The entry index and part of a slot: what [`slot`] made it from.
fn entry_of(slot: u32) -> (usize, Part) {
    let part = if slot.is_multiple_of(2) {
        Part::Value
    } else {
        Part::Name
    };
    ((slot / 2) as usize, part)
}

fn slot(index: usize, part: Part) -> u32 {
    let base = u32::try_from(index).unwrap_or(u32::MAX / 2) * 2;
    match part {
        Part::Value => base,
        Part::Name => base + 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A compiled program knows a fixed scalar by its slot alone; the body's are in their
    /// collections only once the body is parsed.
    #[test]
    fn fixed_scalars_have_fixed_slots() {
        let request = Request::builder()
            .method("POST")
            .uri("/a/b.php?x=1")
            .header("Host", "h")
            .header("Cookie", "c=2")
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body("y=3")
            .build();
        let mut data = RequestData::new(&request, &ParseLimits::default());
        let body = [Collection::RequestBody, Collection::RequestBodyUnlessXml];
        for c in body {
            let mut values = 0;
            data.for_each(c, |_| values += 1);
            assert_eq!(values, 0, "{c:?} before the body is parsed");
        }
        data.parse_body(&ParseLimits::default());
        for c in body {
            let mut values = Vec::new();
            data.for_each(c, |v| values.push(v.value.to_vec()));
            assert_eq!(values, [b"y=3".to_vec()], "{c:?}");
        }
        for &c in &FIXED_SCALARS {
            let mut slots = Vec::new();
            data.for_each(c, |v| slots.push(v.slot));
            assert_eq!(slots.len(), 1, "{c:?}");
            let found: Vec<_> = slots
                .iter()
                .map(|&s| fixed_scalar(s).and_then(|i| FIXED_SCALARS.get(i)))
                .collect();
            assert_eq!(found, [Some(&c)]);
        }
        // No other value is taken for one.
        let mut others = Vec::new();
        for c in [
            Collection::Args,
            Collection::ArgsNames,
            Collection::RequestHeaders,
        ] {
            data.for_each(c, |v| others.push(fixed_scalar(v.slot)));
        }
        assert_eq!(others.len(), 7);
        assert!(others.iter().all(Option::is_none), "{others:?}");
    }

    /// A request of `query` arguments, `headers` headers, `cookies` cookies and a form body
    /// of `form` fields.
    fn request_of(query: usize, headers: usize, cookies: usize, form: usize) -> Request {
        let args = |n: usize, prefix: &str| {
            (0..n)
                .map(|i| format!("{prefix}{i}=v{i}"))
                .collect::<Vec<_>>()
                .join("&")
        };
        let mut b = Request::builder()
            .method("POST")
            .uri(format!("/p?{}", args(query, "q")))
            .header("Content-Type", "application/x-www-form-urlencoded");
        for i in 0..headers {
            b = b.header(format!("X-H{i}"), format!("h{i}"));
        }
        if cookies > 0 {
            b = b.header("Cookie", args(cookies, "c").replace('&', "; "));
        }
        b.body(args(form, "f")).build()
    }

    proptest::proptest! {
        /// `for_each_in` calls back with what `for_each` does, in the same order, but for the
        /// values outside the listed slots.
        #[test]
        fn for_each_in_visits_the_listed_slots_of_for_each(
            (query, headers, cookies, form) in (0..5usize, 0..5usize, 0..4usize, 0..5usize),
            keep in proptest::collection::vec(proptest::bool::ANY, 64),
            body_parsed: bool,
        ) {
            let request = request_of(query, headers, cookies, form);
            let mut data = RequestData::new(&request, &ParseLimits::default());
            if body_parsed {
                data.parse_body(&ParseLimits::default());
            }
            let slots: Vec<u32> = (0..data.slot_count() as u32)
                .filter(|&s| keep.get(s as usize % keep.len()).copied().unwrap_or(true))
                .collect();
            for c in [
                Collection::Args,
                Collection::ArgsNames,
                Collection::ArgsGet,
                Collection::ArgsPost,
                Collection::ArgsPostNames,
                Collection::RequestHeaders,
                Collection::RequestHeadersNames,
                Collection::RequestCookies,
                Collection::RequestCookiesNames,
                Collection::RequestUri,
                Collection::RequestBody,
            ] {
                let mut expected = Vec::new();
                data.for_each(c, |v| {
                    if slots.contains(&v.slot) {
                        expected.push((v.slot, v.name.to_vec(), v.value.to_vec()));
                    }
                });
                let mut got = Vec::new();
                data.for_each_in(c, &slots, |v| got.push((v.slot, v.name.to_vec(), v.value.to_vec())));
                proptest::prop_assert_eq!(got, expected, "{:?}", c);
            }
        }
    }
}
