//! The bounded backtracking matcher, for the few PCRE patterns no linear-time engine can run.
//!
//! Two rules of the OWASP CRS 3.3.4 need backtracking: 920120 looks behind a `;` for an HTML
//! entity name (`(?<!&(?:amp|apos|…));`), and 942130 finds SQL tautologies by comparing a word
//! with itself (`([\d\w]+)…=…\1`). A lookaround or a backreference has no finite automaton, so
//! the regex engine behind every other rule cannot run them; before this matcher, both never
//! matched. [`Operator::RxBacktracking`](super::Operator::RxBacktracking) runs such a pattern
//! in three steps:
//!
//! 1. **A linear-time prefilter.** The pattern is relaxed into one `regex-automata` can run
//!    and that matches wherever the original does (lookarounds dropped, a backreference
//!    replaced by its group's pattern: see `rules::seclang`'s PCRE rewriting). The compiler
//!    gates it on its literals like any regex; on a value it does not match, nothing else
//!    runs. Clean sign-in values almost never get past it.
//! 2. **The backtracking search**, by `fancy-regex` in its ASCII bytes mode: `.` is any byte
//!    but a newline, and `\w`, `\d`, `\s` and `\b` are ASCII, as in PCRE without its UTF flag.
//! 3. **A step limit.** A backtracking search can take exponential time. Each search may
//!    backtrack at most `step_limit` times ([`BACKTRACK_LIMIT`] unless a SecLang file sets
//!    `SecPcreMatchLimit`); a search that reaches it is taken as no match, as ModSecurity
//!    takes a PCRE search that reaches its match limit.
//!
//! ```
//! use waf_core::operator::{Matcher, Operator};
//!
//! // CRS 942130's idea in small: a word compared with itself.
//! let m = Matcher::new(&Operator::RxBacktracking {
//!     pattern: r"\b(\w+)\s*=\s*\1\b".into(),
//!     step_limit: waf_core::operator::backtrack::BACKTRACK_LIMIT,
//! })
//! .unwrap();
//! assert!(m.matches(b"x' or abc = abc --", &mut |_| None).is_some());
//! assert!(m.matches(b"x' or abc = abd --", &mut |_| None).is_none());
//! ```

use regex_automata::meta::Regex;

use super::{build_regex, one_line, Evidence, OperatorError};
use crate::rules::seclang::{pcre_to_backtracking, pcre_to_relaxed};

/// The default of the most times one search may backtrack before it is given up as no match;
/// `SecPcreMatchLimit` in a SecLang file sets another for the rules after it.
///
/// ModSecurity's recommended configuration sets its PCRE match limit to 1,000
/// (`SecPcreMatchLimit`); this is the same order. On this project's benchmark machine one
/// step costs about 30 to 50 ns, so a search costs at most about 50 µs beyond reading the
/// value. The search starts where the prefilter first matches, so the words ahead of the
/// first plausible match cost nothing; a tautology matches in a few dozen steps after it.
/// What the limit gives up on is a value with many plausible matches ahead of the real one:
/// CRS 942130 misses `1=1` behind a dozen or more `a=b`, where ModSecurity, whose own
/// default limit is far higher, does not.
///
/// ```
/// use waf_core::operator::backtrack::BACKTRACK_LIMIT;
/// use waf_core::operator::{Matcher, Operator};
///
/// assert_eq!(BACKTRACK_LIMIT, 1_000);
/// let m = Matcher::new(&Operator::RxBacktracking {
///     pattern: r"\b(\w+)=\1\b".into(),
///     step_limit: BACKTRACK_LIMIT,
/// })
/// .unwrap();
/// assert!(m.matches(b"x a=a", &mut |_| None).is_some());
/// // Each `a=b` is a comparison to try and give up: many thousand steps before the `c=c`,
/// // so the search is given up, as PCRE's would be.
/// let padded = format!("{}c=c", "a=b ".repeat(2_000));
/// assert!(m.matches(padded.as_bytes(), &mut |_| None).is_none());
/// ```
pub const BACKTRACK_LIMIT: usize = 1_000;

/// A compiled [`Operator::RxBacktracking`](super::Operator::RxBacktracking).
#[derive(Clone, Debug)]
pub(crate) struct Backtracking {
    /// The relaxed pattern: no match here, no match at all.
    prefilter: Regex,
    /// The pattern itself.
    pattern: fancy_regex::Regex,
}

impl Backtracking {
    /// Compiles a PCRE pattern.
    pub(crate) fn new(pcre: &str, step_limit: usize) -> Result<Backtracking, OperatorError> {
        let relaxed = pcre_to_relaxed(pcre).map_err(OperatorError)?;
        let prefilter = build_regex(&relaxed)?;
        let bytes = pcre_to_backtracking(pcre).map_err(OperatorError)?;
        let pattern = fancy_regex::RegexBuilder::new(&bytes)
            .bytes_mode(fancy_regex::BytesMode::Ascii)
            .backtrack_limit(step_limit)
            .build()
            .map_err(|e| {
                OperatorError(format!(
                    "regex does not compile: {}",
                    one_line(&e.to_string())
                ))
            })?;
        Ok(Backtracking { prefilter, pattern })
    }

    /// The first match in `value`, with capture groups 0–9 when `capture`.
    pub(crate) fn find(&self, value: &[u8], capture: bool) -> Option<Evidence> {
        // Every match of the pattern is a match of the relaxed one, so the pattern's leftmost
        // match starts no earlier than the relaxed one's: the search starts there (seeing the
        // bytes before it, for `\b` and lookbehind). The steps of the limit then go to the
        // part of the value that can match, not to the words ahead of it.
        let from = self.prefilter.find(value)?.start();
        // An `Err` is the step limit reached: no match, as in ModSecurity.
        if !capture {
            // Without the capture slots: most calls, and all negated ones (CRS 920600 on
            // every `Accept` header).
            let whole = self.pattern.find_from_pos(value, from).ok()??;
            return Some(Evidence {
                fragment: whole.as_bytes().to_vec(),
                captures: Vec::new(),
            });
        }
        let caps = self.pattern.captures_from_pos(value, from).ok()??;
        let whole = caps.get(0)?;
        Some(Evidence {
            fragment: whole.as_bytes().to_vec(),
            captures: (0..caps.len().min(10))
                .map(|i| {
                    caps.get(i)
                        .map(|m| m.as_bytes().to_vec())
                        .unwrap_or_default()
                })
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Each row: a PCRE pattern, a value, and the span PCRE (without its UTF flag) matches.
    #[test]
    fn matches_as_pcre_over_bytes() {
        type Row = (&'static str, &'static [u8], Option<&'static [u8]>);
        let rows: &[Row] = &[
            // Lookbehind, CRS 920120's shape: a `;` not ending an entity.
            (r"(?<!&amp|&apos);|['=]", b"a&amp;b", None),
            (r"(?<!&amp|&apos);|['=]", b"a&amp;b;", Some(b";")),
            (r"(?<!&amp|&apos);|['=]", b"x'", Some(b"'")),
            // Backreference and negative lookahead, CRS 942130's shape.
            (r"(?i)\b(\w+)\b\s*=\s*\b\1\b", b"or 1=1", Some(b"1=1")),
            (r"(?i)\b(\w+)\b\s*=\s*\b\1\b", b"or A = a", Some(b"A = a")),
            (r"(?i)\b(\w+)\b\s*=\s*\b\1\b", b"or a=ab", None),
            (r"(\w+)<(?!\1\b)\w+", b"1<2", Some(b"1<2")),
            (r"(\w+)<(?!\1\b)\w+", b"1<1", None),
            // Bytes above 0x7F are neither word characters nor spaces, and have no case.
            (r"\w+", b"\xe9t\xe9", Some(b"t")),
            (r"\s", b"\xa0\x85", None),
            (r"(?i)\xc9", b"\xe9", None),
            (r"\xe9", b"\xe9", Some(b"\xe9")),
            (r"[^a]", b"a\xff", Some(b"\xff")),
            (r"[\x80-\xff]+", b"ab\x80\xc3\xa9z", Some(b"\x80\xc3\xa9")),
            (r"(.)\1", b"a\xff\xff", Some(b"\xff\xff")),
            ("é", "café".as_bytes(), Some("é".as_bytes())),
            // Possessive quantifiers and atomic groups give nothing back.
            (r"a*+a", b"aaa", None),
            (r"(?>a+)b", b"aab", Some(b"aab")),
        ];
        for &(pattern, value, want) in rows {
            let m = Backtracking::new(pattern, BACKTRACK_LIMIT)
                .unwrap_or_else(|e| panic!("{pattern}: {e}"));
            let got = m.find(value, false).map(|e| e.fragment);
            assert_eq!(got.as_deref(), want, "{pattern} on {value:?}");
        }
    }

    #[test]
    fn captures_are_bytes() {
        let m = Backtracking::new(r"(\w+)=\1(x)?", BACKTRACK_LIMIT).unwrap();
        let e = m.find(b"\xff ab=ab", true).unwrap();
        assert_eq!(
            e.captures,
            vec![b"ab=ab".to_vec(), b"ab".to_vec(), Vec::new()]
        );
    }

    /// Patterns from a small grammar of what PCRE has and the linear engine lacks, nested.
    fn pcre_pattern() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            Just("a".to_string()),
            Just("b".to_string()),
            Just("[ab]".to_string()),
            Just("[^a]".to_string()),
            Just(".".to_string()),
            Just(r"\w".to_string()),
            Just(r"\s".to_string()),
            Just(r"\b".to_string()),
            Just("=".to_string()),
            Just(r"\1".to_string()),
            Just(r"\2".to_string()),
        ];
        leaf.prop_recursive(4, 24, 3, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 1..4).prop_map(|v| v.concat()),
                (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a}|{b}")),
                (
                    inner.clone(),
                    prop::sample::select(vec![
                        "(", "(?:", "(?i:", "(?=", "(?!", "(?<=", "(?<!", "(?>"
                    ])
                )
                    .prop_map(|(a, open)| format!("{open}{a})")),
                (
                    inner,
                    prop::sample::select(vec!["*", "+", "?", "{1,2}", "*+", "++", "*?", "+?"])
                )
                    .prop_map(|(a, q)| format!("(?:{a}){q}")),
            ]
        })
    }

    proptest! {
        /// The relaxed prefilter is sound: wherever the backtracking search finds a match, the
        /// prefilter does too, or a rule would miss what PCRE catches.
        #[test]
        fn the_prefilter_never_hides_a_match(
            pattern in pcre_pattern(),
            caseless in any::<bool>(),
            value in "[abAB= ]{0,10}",
        ) {
            let pattern = if caseless { format!("(?i){pattern}") } else { pattern };
            // Patterns fancy-regex refuses (a reference to a group that does not exist, a
            // lookbehind of unbounded length) never reach a value.
            let Ok(m) = Backtracking::new(&pattern, BACKTRACK_LIMIT) else { return Ok(()) };
            if m.pattern.is_match(value.as_bytes()).unwrap_or(false) {
                prop_assert!(m.prefilter.is_match(value.as_bytes()), "{} on {:?}", pattern, value);
            }
            // And starting the search at the prefilter's first match finds the match a
            // search from the start finds.
            if let Ok(direct) = m.pattern.find(value.as_bytes()) {
                let found = m.find(value.as_bytes(), false).map(|e| e.fragment);
                prop_assert_eq!(found, direct.map(|d| d.as_bytes().to_vec()), "{} on {:?}", pattern, value);
            }
        }
    }

    /// The prefilter must match wherever the pattern does, or it hides matches: every row of
    /// the table above is checked from the other side here, on values the pattern matches.
    #[test]
    fn the_prefilter_matches_wherever_the_pattern_does() {
        for (pattern, value) in [
            (r"(?i)(a+)=\1", "Aa=aA"),
            (r"(?i:(a+))=\1", "Aa=Aa"),
            (r"(a)(?=b)b\1", "aba"),
            (r"\1?(a)", "a"),
            (r"(?<!x)y", "zy"),
            (r"(?>a|ab)c", "ac"),
            (r"a++b", "aab"),
        ] {
            let m = Backtracking::new(pattern, BACKTRACK_LIMIT).unwrap();
            assert!(m.pattern.is_match(value).unwrap(), "{pattern} on {value}");
            assert!(
                m.prefilter.is_match(value),
                "prefilter of {pattern} on {value}"
            );
        }
    }
}
