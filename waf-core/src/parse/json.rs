//! JSON, flattened to dotted names.
//!
//! Rules match names and values, not trees, so a JSON document becomes the list of its leaves:
//!
//! | document | leaves |
//! |---|---|
//! | `{"attributes":{"city":"x"}}` | `attributes.city` = `x` |
//! | `{"items":[{"id":1}]}` | `items.0.id` = `1` |
//! | `[true,null]` | `0` = `true`, `1` = `null` |
//! | `"text"` | `json` = `text` |
//! | `{"a":{},"b":[]}` | `a` = `{}`, `b` = `[]` |
//!
//! - Strings are decoded (`"\u003c"` gives `<`), so rules see what the application will see.
//! - Numbers, `true`, `false` and `null` are given as JSON text (numbers as serde_json writes
//!   them: `1.50` gives `1.5`).
//! - Names are bare dotted paths. ModSecurity prefixes every name with `json.`; we don't, so that
//!   the names match what the application calls its fields. Only a document that is a single
//!   scalar, which has no path, gets the name `json`. Keys containing dots are not escaped.
//! - An empty object or array inside the document is a leaf too (`{}` or `[]`), so that its key
//!   still reaches the rules on argument names.
//! - Duplicate keys are all kept, in document order: applications disagree on which one wins,
//!   so the WAF must see both.
//!
//! Parsing is done by serde_json, driven through a visitor that flattens while it parses: no
//! tree is built, a document nested deeper than [`ParseLimits::max_json_depth`] has its deeper
//! parts skipped (siblings still read), and once [`ParseLimits::max_json_elements`] leaves are
//! kept the rest is only checked for syntax. serde_json skips values without recursion, so a
//! document nested 10,000 levels is merely too deep; but it refuses to descend more than 128
//! levels into values it hands over, so with a depth limit above 128 such a document is
//! reported invalid instead. Either way the recursion stays bounded whatever the input.
//!
//! [`ParseLimits::max_json_depth`]: super::ParseLimits::max_json_depth
//! [`ParseLimits::max_json_elements`]: super::ParseLimits::max_json_elements
//!
//! ```
//! use waf_core::parse::json::flatten_json;
//!
//! let flat = flatten_json(br#"{"user":{"name":"\u003cb\u003e","roles":["a","b"]}}"#, b"", 32, 100);
//! let leaves: Vec<_> = flat.leaves.iter().map(|f| (&f.name[..], &f.value[..])).collect();
//! assert_eq!(
//!     leaves,
//!     [
//!         (&b"user.name"[..], &b"<b>"[..]),
//!         (b"user.roles.0", b"a"),
//!         (b"user.roles.1", b"b"),
//!     ]
//! );
//! assert!(flat.error.is_none());
//! ```

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::{expansion_budget, BodySink, Field};

/// The name of a document that is a single scalar (`"text"`, `42`).
///
/// ```
/// use waf_core::parse::json::{flatten_json, SCALAR_NAME};
///
/// assert_eq!(flatten_json(b"42", b"", 32, 10).leaves[0].name, SCALAR_NAME);
/// ```
pub const SCALAR_NAME: &[u8] = b"json";

/// What [`flatten_json`] found.
///
/// ```
/// use waf_core::parse::json::flatten_json;
///
/// let flat = flatten_json(b"[1,2,3]", b"", 32, 2);
/// assert_eq!(flat.leaves.len(), 2);
/// assert!(flat.truncated);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JsonLeaves {
    /// The leaves, in document order, at most the `max_elements` given.
    pub leaves: Vec<Field>,
    /// Whether objects or arrays nested deeper than `max_depth` were skipped.
    pub too_deep: bool,
    /// Whether leaves beyond `max_elements` were dropped.
    pub truncated: bool,
    /// Whether leaves were dropped because their names and values would have exceeded
    /// [`EXPANSION_FACTOR`](super::EXPANSION_FACTOR) times the input (prefix included) plus
    /// [`EXPANSION_SLACK`](super::EXPANSION_SLACK) bytes — what a long key repeated in the
    /// name of every value under it does.
    pub expansion_exceeded: bool,
    /// Why the document is not valid JSON (serde_json's message, with line and column), if it
    /// is not. The leaves read before the error are kept, as ModSecurity's streaming parser
    /// keeps them.
    pub error: Option<String>,
}

/// Flattens a JSON document to its leaves.
///
/// `prefix` is put before every name (`prefix.key`); with an empty prefix names start at the
/// top-level keys and a scalar document is named [`SCALAR_NAME`]. `max_depth` is the number of
/// nested objects and arrays read; `max_elements` the number of leaves kept.
///
/// ```
/// use waf_core::parse::json::flatten_json;
///
/// let flat = flatten_json(br#"{"city":"Paris"}"#, b"attributes", 32, 100);
/// assert_eq!(flat.leaves[0].name, b"attributes.city");
///
/// let flat = flatten_json(br#"{"a":{"b":{"c":1}},"d":2}"#, b"", 2, 100);
/// assert_eq!(flat.leaves.len(), 1);
/// assert_eq!(flat.leaves[0].name, b"d");
/// assert!(flat.too_deep);
///
/// let flat = flatten_json(b"{\"a\":", b"", 32, 100);
/// assert!(flat.error.unwrap().contains("EOF"));
/// ```
pub fn flatten_json(
    input: &[u8],
    prefix: &[u8],
    max_depth: usize,
    max_elements: usize,
) -> JsonLeaves {
    let mut flattener = Flattener {
        path: prefix.to_vec(),
        scalar_name: if prefix.is_empty() {
            SCALAR_NAME
        } else {
            prefix
        },
        depth: 0,
        max_depth,
        max_elements,
        bytes_left: expansion_budget(input.len().saturating_add(prefix.len())),
        out: JsonLeaves::default(),
    };
    let mut deserializer = serde_json::Deserializer::from_slice(input);
    let result = Node(&mut flattener)
        .deserialize(&mut deserializer)
        .and_then(|()| deserializer.end());
    if let Err(error) = result {
        flattener.out.error = Some(error.to_string());
    }
    flattener.out
}

/// A JSON body: its leaves are both JSON values and arguments.
pub(super) fn parse_json_body(body: &[u8], sink: &mut BodySink<'_>) {
    let flattened = flatten_json(body, b"", sink.limits.max_json_depth, sink.json_left);
    let error = flattened.error.clone();
    sink.push_json(flattened);
    if let Some(error) = error {
        sink.invalid(format!("JSON parsing error: {error}"));
    }
}

struct Flattener<'p> {
    /// The dotted name of the value being read; segments are pushed and truncated as the
    /// visitor enters and leaves containers.
    path: Vec<u8>,
    scalar_name: &'p [u8],
    depth: usize,
    max_depth: usize,
    max_elements: usize,
    /// Names repeat their whole path, so their total size is bounded apart from their number.
    bytes_left: usize,
    out: JsonLeaves,
}

impl Flattener<'_> {
    fn leaf(&mut self, value: &[u8]) {
        if self.out.leaves.len() >= self.max_elements {
            self.out.truncated = true;
            return;
        }
        let name: &[u8] = if self.depth == 0 {
            self.scalar_name
        } else {
            &self.path
        };
        let size = name.len().saturating_add(value.len());
        let Some(left) = self.bytes_left.checked_sub(size) else {
            self.out.expansion_exceeded = true;
            return;
        };
        self.bytes_left = left;
        let leaf = Field::new(name, value);
        self.out.leaves.push(leaf);
    }

    fn push_segment(&mut self, segment: &[u8]) {
        if !self.path.is_empty() {
            self.path.push(b'.');
        }
        self.path.extend_from_slice(segment);
    }

    /// Whether the container about to be read must be skipped, recording why.
    fn skip_container(&mut self) -> bool {
        if self.out.truncated || self.out.expansion_exceeded {
            return true;
        }
        if self.depth >= self.max_depth {
            self.out.too_deep = true;
            return true;
        }
        false
    }
}

/// Reads one value into the flattener. Being both the seed and the visitor lets each nested
/// value reuse the same flattener without building a tree.
struct Node<'f, 'p>(&'f mut Flattener<'p>);

impl<'de> DeserializeSeed<'de> for Node<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<(), E> {
        self.0.leaf(if v { b"true" } else { b"false" });
        Ok(())
    }

    fn visit_i64<E>(self, v: i64) -> Result<(), E> {
        self.0.leaf(v.to_string().as_bytes());
        Ok(())
    }

    fn visit_u64<E>(self, v: u64) -> Result<(), E> {
        self.0.leaf(v.to_string().as_bytes());
        Ok(())
    }

    fn visit_f64<E>(self, v: f64) -> Result<(), E> {
        // serde_json's own formatting, so that a number reads the same as in serde_json::Value.
        let text = serde_json::Number::from_f64(v).map_or_else(|| v.to_string(), |n| n.to_string());
        self.0.leaf(text.as_bytes());
        Ok(())
    }

    fn visit_str<E>(self, v: &str) -> Result<(), E> {
        self.0.leaf(v.as_bytes());
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        self.0.leaf(b"null");
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let f = self.0;
        if f.skip_container() {
            // Still parsed, so that syntax errors further on are reported.
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            return Ok(());
        }
        f.depth += 1;
        let base = f.path.len();
        let mut index = 0usize;
        loop {
            f.push_segment(index.to_string().as_bytes());
            let more = seq.next_element_seed(Node(&mut *f))?;
            f.path.truncate(base);
            if more.is_none() {
                break;
            }
            index += 1;
        }
        f.depth -= 1;
        if index == 0 && f.depth > 0 {
            f.leaf(b"[]");
        }
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let f = self.0;
        if f.skip_container() {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            return Ok(());
        }
        f.depth += 1;
        let base = f.path.len();
        let mut entries = 0usize;
        while map.next_key_seed(Key(&mut *f))?.is_some() {
            map.next_value_seed(Node(&mut *f))?;
            f.path.truncate(base);
            entries += 1;
        }
        f.depth -= 1;
        if entries == 0 && f.depth > 0 {
            f.leaf(b"{}");
        }
        Ok(())
    }
}

/// Reads an object key straight into the path, saving an allocation per key.
struct Key<'f, 'p>(&'f mut Flattener<'p>);

impl<'de> DeserializeSeed<'de> for Key<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E>(self, v: &str) -> Result<(), E> {
        self.0.push_segment(v.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
mod tests {
    use super::*;

    fn flat(input: &str) -> Vec<(String, String)> {
        let out = flatten_json(input.as_bytes(), b"", 32, 10_000);
        assert_eq!(out.error, None, "{input}");
        pairs(&out)
    }

    fn pairs(out: &JsonLeaves) -> Vec<(String, String)> {
        out.leaves
            .iter()
            .map(|f| {
                (
                    String::from_utf8(f.name.clone()).unwrap(),
                    String::from_utf8(f.value.clone()).unwrap(),
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

    #[test]
    fn nested_objects_and_arrays() {
        assert_eq!(
            flat(r#"{"attributes":{"city":"x"},"items":[{"id":1},{"id":2,"tags":["a",["b"]]}]}"#),
            p(&[
                ("attributes.city", "x"),
                ("items.0.id", "1"),
                ("items.1.id", "2"),
                ("items.1.tags.0", "a"),
                ("items.1.tags.1.0", "b"),
            ])
        );
    }

    #[test]
    fn scalars_as_json_text() {
        assert_eq!(
            flat(
                r#"{"t":true,"f":false,"n":null,"i":-3,"u":18446744073709551615,"x":1.50,"e":1e3,"s":"\"q\""}"#
            ),
            p(&[
                ("t", "true"),
                ("f", "false"),
                ("n", "null"),
                ("i", "-3"),
                ("u", "18446744073709551615"),
                ("x", "1.5"),
                ("e", "1000.0"),
                ("s", "\"q\""),
            ])
        );
    }

    #[test]
    fn top_level_scalars_and_arrays() {
        assert_eq!(flat(r#""<script>""#), p(&[("json", "<script>")]));
        assert_eq!(flat(" 7 "), p(&[("json", "7")]));
        assert_eq!(flat("null"), p(&[("json", "null")]));
        assert_eq!(flat("[1,[2]]"), p(&[("0", "1"), ("1.0", "2")]));
        assert_eq!(flat("{}"), p(&[]));
        assert_eq!(flat("[]"), p(&[]));
    }

    #[test]
    fn empty_containers_inside_are_leaves() {
        assert_eq!(
            flat(r#"{"a":{},"b":[],"c":[{}],"d":1}"#),
            p(&[("a", "{}"), ("b", "[]"), ("c.0", "{}"), ("d", "1")])
        );
    }

    #[test]
    fn strings_are_decoded() {
        assert_eq!(
            flat(r#"{"\u0061":"\u003cimg src=x onerror=alert(1)\u003e","b":"\ud83d\ude00\n"}"#),
            p(&[("a", "<img src=x onerror=alert(1)>"), ("b", "\u{1f600}\n")])
        );
    }

    #[test]
    fn duplicate_keys_are_all_kept_in_order() {
        assert_eq!(
            flat(r#"{"b":"1","a":"<script>","a":"safe"}"#),
            p(&[("b", "1"), ("a", "<script>"), ("a", "safe")])
        );
    }

    #[test]
    fn odd_keys() {
        assert_eq!(
            flat(r#"{"":1,"a.b":2,"c":{"":3}}"#),
            p(&[("", "1"), ("a.b", "2"), ("c.", "3")])
        );
    }

    #[test]
    fn prefix() {
        let out = flatten_json(br#"[{"city":"Paris"}]"#, b"attributes", 32, 10);
        assert_eq!(pairs(&out), p(&[("attributes.0.city", "Paris")]));
        let out = flatten_json(b"3", b"field", 32, 10);
        assert_eq!(pairs(&out), p(&[("field", "3")]));
    }

    #[test]
    fn depth_limit_skips_deeper_parts_but_reads_siblings() {
        let doc = br#"{"a":{"b":{"c":"deep"}},"s":"<x>","t":[[1]],"u":[2]}"#;
        let out = flatten_json(doc, b"", 2, 100);
        assert_eq!(pairs(&out), p(&[("s", "<x>"), ("u.0", "2")]));
        assert!(out.too_deep);
        assert!(out.error.is_none());

        let out = flatten_json(doc, b"", 3, 100);
        assert!(!out.too_deep);
        assert_eq!(out.leaves.len(), 4);

        let out = flatten_json(b"[1]", b"", 0, 100);
        assert!(out.leaves.is_empty());
        assert!(out.too_deep);
        let out = flatten_json(b"1", b"", 0, 100);
        assert_eq!(out.leaves.len(), 1, "a scalar has no depth");
    }

    #[test]
    fn element_limit_keeps_the_first_ones() {
        let out = flatten_json(br#"{"a":1,"b":[2,3],"c":4}"#, b"", 32, 2);
        assert_eq!(pairs(&out), p(&[("a", "1"), ("b.0", "2")]));
        assert!(out.truncated);
        assert!(!out.too_deep);

        let out = flatten_json(br#"{"a":1}"#, b"", 32, 0);
        assert!(out.leaves.is_empty());
        assert!(out.truncated);

        let out = flatten_json(br#"{"a":1}"#, b"", 32, 1);
        assert!(!out.truncated, "exactly at the limit is fine");
    }

    #[test]
    fn long_keys_cannot_blow_up_memory() {
        let key = "k".repeat(100_000);
        let doc = format!("{{\"{key}\":[{}0]}}", "0,".repeat(50_000));
        let out = flatten_json(doc.as_bytes(), b"", 32, usize::MAX);
        assert!(out.expansion_exceeded);
        assert!(!out.truncated);
        let produced: usize = out
            .leaves
            .iter()
            .map(|f| f.name.len() + f.value.len())
            .sum();
        assert!(
            produced <= doc.len() * super::super::EXPANSION_FACTOR + super::super::EXPANSION_SLACK
        );
        assert!(out.leaves.len() > 10, "the first leaves are kept");
        assert!(out.error.is_none());
    }

    #[test]
    fn errors_after_the_limits_are_still_found() {
        let out = flatten_json(br#"[1,2,3,}"#, b"", 32, 1);
        assert!(out.truncated);
        assert!(out.error.is_some());
        let out = flatten_json(br#"[[[1]],}"#, b"", 1, 10);
        assert!(out.too_deep);
        assert!(out.error.is_some());
    }

    #[test]
    fn invalid_documents() {
        for doc in [
            &b""[..],
            b"{",
            b"{\"a\"}",
            b"{'a':1}",
            b"[1,]",
            b"{\"a\":1} x",
            b"{\"a\":1}{}",
            b"nul",
            b"\"\xff\"",
            b"\"\\ud800\"",
            b"1e400",
            b"\xef\xbb\xbf{}",
        ] {
            let out = flatten_json(doc, b"", 32, 100);
            assert!(out.error.is_some(), "{doc:?} should be invalid");
        }
        let out = flatten_json(b"{\"a\":\"x\",\n\"b\"", b"", 32, 100);
        assert_eq!(
            pairs(&out),
            p(&[("a", "x")]),
            "leaves before the error stay"
        );
        assert!(out.error.unwrap().contains("line 2"));
    }

    #[test]
    fn deep_nesting_does_not_crash() {
        for open in [b'[', b'{'] {
            let mut doc = Vec::new();
            for _ in 0..10_000 {
                doc.push(open);
                if open == b'{' {
                    doc.extend_from_slice(b"\"k\":");
                }
            }
            doc.push(b'1');
            for _ in 0..10_000 {
                doc.push(if open == b'[' { b']' } else { b'}' });
            }
            // Past our limit the rest is skipped by serde_json without recursion: the document
            // is valid, only too deep.
            let out = flatten_json(&doc, b"", 32, 100);
            assert!(out.too_deep);
            assert!(out.leaves.is_empty());
            assert_eq!(out.error, None);

            // With a limit above serde_json's own, serde_json refuses the document.
            let out = flatten_json(&doc, b"", usize::MAX, 100);
            let error = out.error.unwrap();
            assert!(error.contains("recursion limit"), "{error}");
            assert!(!out.too_deep);
        }
        // Unclosed nesting too.
        let out = flatten_json(&[b'['; 100_000], b"", 32, 100);
        assert!(out.error.is_some());
    }

    #[test]
    fn within_serde_json_limit_and_ours() {
        let doc = format!("{}1{}", "[".repeat(100), "]".repeat(100));
        let out = flatten_json(doc.as_bytes(), b"", 100, 10);
        assert_eq!(out.leaves.len(), 1);
        assert_eq!(out.leaves[0].name.len(), 199, "0.0.….0");
        assert!(out.error.is_none());
    }
}
