//! libinjection: `@detectSQLi` and `@detectXSS`.
//!
//! ModSecurity does not use regexes for these two operators. It hands the value to
//! [libinjection](https://github.com/libinjection/libinjection), which tokenizes it as SQL (or
//! HTML) and compares the shape of the token stream against a list of shapes known to be
//! attacks. The OWASP Core Rule Set leans on both (rules 942100 and 941100 and their siblings),
//! so they must behave like the C library.
//!
//! This module is a thin wrapper over the pure-Rust port [`libinjectionrs`]. What it adds is the
//! ModSecurity contract:
//!
//! * [`detect_sqli`] returns the *fingerprint* of a match, a short string with one character
//!   per folded token (`s&sos` for `1' OR '1'='1`: string, logic operator, string, operator,
//!   string). ModSecurity stores it in `TX:0` when the rule captures, and logs it.
//! * [`detect_xss`] is a plain yes or no; libinjection has nothing more to say about XSS.
//!
//! Both look at raw bytes: no UTF-8 requirement and no decoding. Rules apply
//! transformations (`t:urlDecodeUni`, `t:htmlEntityDecode`, ...) before the value gets here.
//!
//! ```
//! use waf_core::operator::injection::{detect_sqli, detect_xss};
//!
//! assert_eq!(detect_sqli(b"1' OR '1'='1").as_deref(), Some("s&sos"));
//! assert_eq!(detect_sqli(b"O'Brien"), None);
//! assert!(detect_xss(b"<img src=x onerror=alert(1)>"));
//! assert!(!detect_xss(b"I <3 this"));
//! ```
//!
//! # How far the port can be trusted
//!
//! `libinjectionrs` 0.1.1 is a machine translation of the C library. Its SQL keyword and
//! fingerprint tables are exactly those of libinjection 3.9.2, the version ModSecurity shipped
//! for years, and it was checked against that C code on about a thousand of libinjection's
//! published sample lines and on 900,000 generated inputs. Verdicts and fingerprints agree
//! except in a few narrow classes, nearly all misses of the port:
//!
//! * `INTO OUTFILE 'x'` or `INTO DUMPFILE 'x'` right after a value (`1 into outfile 'x'`);
//! * the MySQL phrases `IN BOOLEAN MODE` and `LOCK IN SHARE MODE`, which the port does not
//!   fold into one keyword;
//! * libinjection's rule that a comment mentioning `sp_password` is an attack, which the port
//!   skips when the input is not valid UTF-8;
//! * a NUL byte inside a `$` or `@` token (misses and extra matches both).
//!
//! The XSS detector matches event-handler attribute names exactly against a list, as newer
//! libinjection does (3.9.2 matched any attribute *starting* with a listed name), so handlers
//! missing from the list, such as `onauxclick`, pass; the Core Rule Set's regex rules cover
//! them. Neither the port nor 3.9.2 has libinjection 4's SQL fixes (`1.e` numbers, `==`).
//! `tests/data/libinjection.tsv` pins this behaviour row by row, the known misses included.

use libinjectionrs::{SqliFlags, SqliState};

/// A per-thread memo of detector verdicts, for the compiled engine.
///
/// On a sign-in domain most parameter values recur from request to request: the app's
/// `client_id`, its `redirect_uri` and `scope`, `response_mode`, the MSAL `x-client-SKU` and
/// `x-client-VER`, `ui_locales`, the `x-ms-cpim-dc` cookie. libinjection costs microseconds per
/// value (the port's keyword lookup dominates), a hash lookup tens of nanoseconds, so the
/// verdict for a value seen recently on the same worker thread is taken from here.
///
/// The key is the whole value, so a hit is exact: the memo cannot change a verdict, only skip
/// recomputing it (the differential tests hold the memoizing compiled engine to the reference
/// evaluator, which never memoizes). Memory is bounded: values longer than
/// [`MEMO_MAX_VALUE`] bytes are not kept (long values are the unique ones: tokens, bodies), and
/// a table that reaches [`MEMO_ENTRIES`] is emptied and refills with what recurs. A flood of
/// distinct values can only lower the hit rate. The tables are per thread, so there is no lock.
mod memo {
    use std::cell::RefCell;
    use std::collections::HashMap;

    use foldhash::fast::RandomState;

    pub(super) const MEMO_ENTRIES: usize = 4096;
    pub(super) const MEMO_MAX_VALUE: usize = 256;

    #[derive(Default)]
    struct Tables {
        sqli: HashMap<Box<[u8]>, Option<Box<str>>, RandomState>,
        xss: HashMap<Box<[u8]>, bool, RandomState>,
    }

    thread_local! {
        static TABLES: RefCell<Tables> = RefCell::new(Tables::default());
    }

    fn remember<V: Clone>(
        table: &mut HashMap<Box<[u8]>, V, RandomState>,
        input: &[u8],
        compute: impl FnOnce(&[u8]) -> V,
    ) -> V {
        if let Some(v) = table.get(input) {
            return v.clone();
        }
        let v = compute(input);
        if table.len() >= MEMO_ENTRIES {
            table.clear();
        }
        table.insert(input.into(), v.clone());
        v
    }

    pub(super) fn sqli(input: &[u8]) -> Option<String> {
        if input.len() > MEMO_MAX_VALUE {
            return super::detect_sqli(input);
        }
        TABLES
            .with(|t| {
                remember(&mut t.borrow_mut().sqli, input, |i| {
                    super::detect_sqli(i).map(String::into_boxed_str)
                })
            })
            .map(String::from)
    }

    pub(super) fn forget() {
        TABLES.with(|t| {
            let mut t = t.borrow_mut();
            t.sqli.clear();
            t.xss.clear();
        });
    }

    /// How many verdicts are remembered, of both detectors.
    #[cfg(test)]
    pub(super) fn len() -> usize {
        TABLES.with(|t| {
            let t = t.borrow();
            t.sqli.len() + t.xss.len()
        })
    }

    pub(super) fn xss(input: &[u8]) -> bool {
        if input.len() > MEMO_MAX_VALUE {
            return super::detect_xss(input);
        }
        TABLES.with(|t| remember(&mut t.borrow_mut().xss, input, super::detect_xss))
    }
}

/// [`detect_sqli`], answered from this thread's memo when the value was seen recently.
pub(crate) fn detect_sqli_memoized(input: &[u8]) -> Option<String> {
    memo::sqli(input)
}

/// Empties this thread's memo of detector verdicts.
pub(crate) fn forget_memo() {
    memo::forget();
}

/// [`detect_xss`], answered from this thread's memo when the value was seen recently.
pub(crate) fn detect_xss_memoized(input: &[u8]) -> bool {
    memo::xss(input)
}

/// Runs libinjection's SQL injection detector over `input`.
///
/// Returns `Some(fingerprint)` when libinjection classifies the input as SQL injection, which
/// is what ModSecurity's `@detectSQLi` puts in `TX:0`, and `None` otherwise. Like the C
/// library, the input is tried as it is, as if it followed a single quote and as if it
/// followed a double quote, in ANSI and MySQL comment dialects, so both `1 OR 1=1` and
/// `x' OR 'a'='a` are caught.
///
/// ```
/// use waf_core::operator::injection::detect_sqli;
///
/// assert_eq!(detect_sqli(b"admin'--").as_deref(), Some("sc"));
/// assert_eq!(detect_sqli(b"1 UNION SELECT password FROM users").as_deref(), Some("1UEnk"));
/// assert_eq!(detect_sqli(b"select a plan"), None);
/// ```
pub fn detect_sqli(input: &[u8]) -> Option<String> {
    // Not `libinjectionrs::detect_sqli`: after deciding, it tokenizes and folds the whole input
    // once more to return a fingerprint, even for a clean value whose fingerprint nobody reads.
    // On a token that needs one pass (no quote, no comment) that doubled the cost. The state
    // keeps the fingerprint of the pass that decided, which is the one that call would return.
    let mut state = SqliState::new(input, SqliFlags::FLAG_NONE);
    if !state.detect() {
        return None;
    }
    let fingerprint = &state.fingerprint;
    let len = fingerprint
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(fingerprint.len());
    Some(String::from_utf8_lossy(&fingerprint[..len]).into_owned())
}

/// Runs libinjection's cross-site scripting detector over `input`.
///
/// The input is parsed as HTML from five starting points (plain text, and inside an
/// unquoted, single-, double- and back-quoted attribute value), and reported when any of them
/// reaches a dangerous tag, an event-handler attribute, a `javascript:`-like URL or similar.
///
/// ```
/// use waf_core::operator::injection::detect_xss;
///
/// assert!(detect_xss(b"<script>alert(1)</script>"));
/// assert!(detect_xss(b"\" onmouseover=alert(1) x=\""));
/// assert!(!detect_xss(b"hello world"));
/// ```
pub fn detect_xss(input: &[u8]) -> bool {
    libinjectionrs::detect_xss(input).is_injection()
}

#[cfg(test)]
mod tests {
    use super::{detect_sqli, detect_sqli_memoized, detect_xss, detect_xss_memoized, memo};
    use crate::test_data::unescape;
    use proptest::prelude::*;

    const VECTORS: &str = include_str!("../../tests/data/libinjection.tsv");

    fn describe(kind: &str, input: &[u8]) -> Result<String, String> {
        match kind {
            "sqli" => Ok(detect_sqli(input).map_or_else(|| "0".to_owned(), |fp| format!("1={fp}"))),
            "xss" => Ok(if detect_xss(input) { "1" } else { "0" }.to_owned()),
            other => Err(format!("unknown kind {other:?}")),
        }
    }

    #[test]
    fn published_vectors() {
        let mut failures = Vec::new();
        let (mut sqli, mut xss) = (0, 0);
        for (index, line) in VECTORS.lines().enumerate() {
            let at = format!("tests/data/libinjection.tsv:{}", index + 1);
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let mut columns = line.splitn(3, '\t');
            let (Some(kind), Some(expected), Some(input)) =
                (columns.next(), columns.next(), columns.next())
            else {
                failures.push(format!("{at}: expected kind, expected and input columns"));
                continue;
            };
            let input = match unescape(input) {
                Ok(input) => input,
                Err(e) => {
                    failures.push(format!("{at}: {e}"));
                    continue;
                }
            };
            let actual = match describe(kind, &input) {
                Ok(actual) => actual,
                Err(e) => {
                    failures.push(format!("{at}: {e}"));
                    continue;
                }
            };
            if kind == "sqli" {
                sqli += 1;
            } else {
                xss += 1;
            }
            // A bare `1` accepts any fingerprint.
            let (known_miss, want) = match expected.strip_prefix('!') {
                Some(want) => (true, want),
                None => (false, expected),
            };
            let agrees = actual == want || (want == "1" && actual.starts_with("1="));
            let shown = String::from_utf8_lossy(&input);
            if known_miss && agrees {
                failures.push(format!(
                    "{at}: {kind} {shown:?} is marked as a known miss (!) but now gives {actual}: \
                     drop the !"
                ));
            } else if !known_miss && !agrees {
                failures.push(format!(
                    "{at}: {kind} {shown:?}: expected {want}, got {actual}"
                ));
            }
        }
        assert!(
            failures.is_empty(),
            "{} failing rows:\n{}",
            failures.len(),
            failures.join("\n")
        );
        assert!(
            sqli >= 60 && xss >= 40,
            "too few rows: {sqli} sqli, {xss} xss"
        );
    }

    #[test]
    fn the_memo_answers_like_the_detector() {
        let long = format!("1' OR '1'='1 {}", "x".repeat(memo::MEMO_MAX_VALUE));
        let inputs = [
            "1' OR '1'='1",
            "O'Brien",
            "<script>alert(1)</script>",
            "hello",
            &long,
        ];
        // Twice: the second round is answered from the memo.
        for _ in 0..2 {
            for input in inputs {
                let b = input.as_bytes();
                assert_eq!(detect_sqli_memoized(b), detect_sqli(b), "{input}");
                assert_eq!(detect_xss_memoized(b), detect_xss(b), "{input}");
            }
        }
        // A full table is emptied, not grown.
        for i in 0..memo::MEMO_ENTRIES + 10 {
            let v = format!("value-{i}");
            assert_eq!(detect_sqli_memoized(v.as_bytes()), None);
        }
    }

    #[test]
    fn a_forgotten_memo_is_empty() {
        // Tests may share a thread (`--test-threads=1`), and with it the memo.
        super::forget_memo();
        detect_sqli_memoized(b"hello");
        detect_xss_memoized(b"hello");
        assert_eq!(memo::len(), 2);
        super::forget_memo();
        assert_eq!(memo::len(), 0);
    }

    #[test]
    fn empty_input_is_clean() {
        // Not in the data file: a row ending in an empty column is too easy to lose to an
        // editor that trims trailing whitespace.
        assert_eq!(detect_sqli(b""), None);
        assert!(!detect_xss(b""));
    }

    /// What `libinjectionrs::detect_sqli` says, in [`detect_sqli`]'s terms.
    fn the_ports_own_call(input: &[u8]) -> Option<String> {
        let result = libinjectionrs::detect_sqli(input);
        result.is_injection().then(|| {
            result
                .fingerprint
                .map(|fp| fp.as_str().to_owned())
                .unwrap_or_default()
        })
    }

    #[test]
    fn published_vectors_agree_with_the_ports_own_call() {
        for line in VECTORS.lines().filter(|l| l.starts_with("sqli\t")) {
            let Some(input) = line.splitn(3, '\t').nth(2) else {
                continue;
            };
            let input = unescape(input).expect("the vectors file parses (published_vectors)");
            assert_eq!(detect_sqli(&input), the_ports_own_call(&input), "{line}");
        }
    }

    proptest! {
        #[test]
        fn sql_shaped_text_gets_the_ports_own_verdict_and_fingerprint(
            input in "([0-9a-zA-Z'\"`=(),;#/*@$\\ .+-]|or|and|union|select|from|/\\*!|--)*"
        ) {
            prop_assert_eq!(detect_sqli(input.as_bytes()), the_ports_own_call(input.as_bytes()));
        }

        #[test]
        fn arbitrary_bytes_get_the_ports_own_verdict_and_fingerprint(
            input in proptest::collection::vec(any::<u8>(), 0..256)
        ) {
            prop_assert_eq!(detect_sqli(&input), the_ports_own_call(&input));
        }

        #[test]
        fn arbitrary_bytes_do_not_panic(input in proptest::collection::vec(any::<u8>(), 0..512)) {
            if let Some(fp) = detect_sqli(&input) {
                // libinjection folds to at most five tokens, one character each.
                prop_assert!((1..=5).contains(&fp.len()), "fingerprint {fp:?}");
            }
            detect_xss(&input);
        }

        #[test]
        fn sql_and_html_shaped_text_does_not_panic(
            input in "([0-9a-zA-Z'\"`<>=(),;#/*@$\\\\ \t\n-]|union|select|script|onerror|/\\*!|--|&#x)*"
        ) {
            if let Some(fp) = detect_sqli(input.as_bytes()) {
                prop_assert!((1..=5).contains(&fp.len()), "fingerprint {fp:?}");
            }
            detect_xss(input.as_bytes());
        }
    }
}
