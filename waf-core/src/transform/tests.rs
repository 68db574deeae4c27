//! Table-driven cases from `tests/data/transforms.tsv`, plus properties that
//! must hold for any input.
//!
//! The table has one case per line: a transformation name, the input and the
//! expected output, separated by tabs. Blank lines and lines starting with
//! `#` are ignored. Input and output use these escapes so any bytes can be
//! written: `\\` (backslash), `\t`, `\n`, `\r`, `\0`, and `\xHH`.

use std::borrow::Cow;
use std::collections::BTreeMap;

use proptest::prelude::*;

use super::Transform;

use crate::test_data::unescape;

const TABLE: &str = include_str!("../../tests/data/transforms.tsv");

/// Every transformation must have at least this many table cases.
const MIN_CASES: usize = 8;

/// Shows bytes the way the table writes them, so a failure can be compared
/// with the line at a glance.
fn escape(bytes: &[u8]) -> String {
    let mut s = String::new();
    for &b in bytes {
        match b {
            b'\\' => s.push_str("\\\\"),
            b'\t' => s.push_str("\\t"),
            b'\n' => s.push_str("\\n"),
            b'\r' => s.push_str("\\r"),
            0x20..=0x7e => s.push(b as char),
            _ => s.push_str(&format!("\\x{b:02x}")),
        }
    }
    s
}

struct Case {
    line: usize,
    transform: Transform,
    input: Vec<u8>,
    expected: Vec<u8>,
}

/// The parsed cases, and the lines that could not be parsed (line number
/// and message).
fn parse_table() -> (Vec<Case>, Vec<(usize, String)>) {
    let mut cases = Vec::new();
    let mut errors = Vec::new();
    for (index, line) in TABLE.lines().enumerate() {
        let line_no = index + 1;
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split('\t').collect();
        let [name, input, expected] = fields[..] else {
            let found = fields.len();
            errors.push((
                line_no,
                format!("expected 3 tab-separated fields, found {found}"),
            ));
            continue;
        };
        let parsed = name
            .parse::<Transform>()
            .map_err(|e| e.to_string())
            .and_then(|t| Ok((t, unescape(input)?, unescape(expected)?)));
        match parsed {
            Ok((transform, input, expected)) => cases.push(Case {
                line: line_no,
                transform,
                input,
                expected,
            }),
            Err(e) => errors.push((line_no, e)),
        }
    }
    (cases, errors)
}

#[test]
fn table_cases() {
    let (cases, mut failures) = parse_table();
    for case in &cases {
        let output = case.transform.apply(&case.input);
        if output.as_ref() != case.expected.as_slice() {
            failures.push((
                case.line,
                format!(
                    "{}(\"{}\")\n    expected \"{}\"\n    got      \"{}\"",
                    case.transform,
                    escape(&case.input),
                    escape(&case.expected),
                    escape(&output),
                ),
            ));
        }
    }
    failures.sort();
    let report: Vec<String> = failures
        .iter()
        .map(|(line, msg)| format!("line {line}: {msg}"))
        .collect();
    assert!(
        report.is_empty(),
        "{} bad lines in the table ({} cases parsed):\n{}",
        report.len(),
        cases.len(),
        report.join("\n")
    );
}

#[test]
fn table_covers_every_transform() {
    let (cases, _) = parse_table();
    let mut counts: BTreeMap<Transform, usize> = Transform::ALL.iter().map(|&t| (t, 0)).collect();
    for case in &cases {
        *counts.entry(case.transform).or_default() += 1;
    }
    let thin: Vec<String> = counts
        .iter()
        .filter(|&(_, &n)| n < MIN_CASES)
        .map(|(t, n)| format!("{t}: {n}"))
        .collect();
    assert!(
        thin.is_empty(),
        "fewer than {MIN_CASES} table cases: {}",
        thin.join(", ")
    );
}

#[test]
fn all_lists_each_variant_once() {
    let mut seen = std::collections::BTreeSet::new();
    for t in Transform::ALL {
        assert!(seen.insert(*t), "{t} listed twice");
    }
    assert_eq!(seen.len(), 33);
}

#[test]
fn names_parse_back() {
    for &t in Transform::ALL {
        assert_eq!(t.name().parse(), Ok(t), "{}", t.name());
        assert_eq!(t.modsec_name().parse(), Ok(t), "{}", t.modsec_name());
        assert_eq!(t.name().to_ascii_uppercase().parse(), Ok(t));
        assert_eq!(t.modsec_name().to_ascii_lowercase().parse(), Ok(t));
        assert_eq!(t.to_string(), t.name());
        assert!(t
            .name()
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'));
    }
}

#[test]
fn aliases_parse() {
    let aliases = [
        ("normalisePath", Transform::NormalizePath),
        ("normalisepath", Transform::NormalizePath),
        ("normalise_path", Transform::NormalizePath),
        ("normalizePath", Transform::NormalizePath),
        ("normalisePathWin", Transform::NormalizePathWin),
        ("normalise_path_win", Transform::NormalizePathWin),
        ("normalizePathWin", Transform::NormalizePathWin),
        ("utf8toUnicode", Transform::Utf8ToUnicode),
        ("utf8ToUnicode", Transform::Utf8ToUnicode),
        ("utf8_to_unicode", Transform::Utf8ToUnicode),
        ("url_decode", Transform::UrlDecode),
        ("urlDecode", Transform::UrlDecode),
        ("URLDECODEUNI", Transform::UrlDecodeUni),
        ("cmdline", Transform::CmdLine),
        ("SHA1", Transform::Sha1),
    ];
    for (name, t) in aliases {
        assert_eq!(name.parse(), Ok(t), "{name}");
    }
}

#[test]
fn unknown_names_are_rejected() {
    for name in [
        "",
        "none",
        "url decode",
        "urlDecode ",
        "sha256",
        "lower_case_x",
    ] {
        let err = name.parse::<Transform>().unwrap_err();
        assert_eq!(err, super::UnknownTransform(name.to_string()));
        assert_eq!(err.to_string(), format!("unknown transformation `{name}`"));
    }
}

/// Bytes that start or end escapes, comments and path segments, so that
/// random inputs reach the interesting branches of every decoder.
fn interesting_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        any::<u8>(),
        proptest::sample::select(
            b"%+&#;\\/*-<!>xXuU0123456789abcdefABCDEF=. \t\n\r\x00\xa0\xc3\xe2\xf0\x80\xbf"
                .to_vec()
        ),
    ]
}

fn inputs() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(interesting_byte(), 0..64)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn borrowed_exactly_when_unchanged(input in inputs()) {
        for t in Transform::ALL {
            match t.apply(&input) {
                Cow::Borrowed(out) => prop_assert_eq!(out, input.as_slice(), "{} borrowed a changed value", t),
                Cow::Owned(out) => prop_assert_ne!(&out, &input, "{} copied an unchanged value", t),
            }
        }
    }

    /// What the compiled program relies on to skip transformations: without a trigger byte,
    /// a transformation changes at most the value's case, and only as `case_change` says.
    #[test]
    fn values_without_trigger_bytes_change_only_in_case(input in inputs()) {
        for t in Transform::ALL {
            let Some(triggers) = t.triggers() else { continue };
            prop_assert!(!triggers.iter().any(u8::is_ascii_alphabetic), "{} has a letter among its triggers", t);
            let value: Vec<u8> = input.iter().copied().filter(|b| !triggers.contains(b)).collect();
            let expected = match t.case_change() {
                Some(case) => case.apply(&value).into_owned(),
                None => value.clone(),
            };
            prop_assert_eq!(t.apply(&value).into_owned(), expected, "{} changed {:?}", t, value);
        }
    }

    #[test]
    fn length_is_the_decimal_byte_count(input in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let out = Transform::Length.apply(&input).into_owned();
        prop_assert_eq!(out, input.len().to_string().into_bytes());
    }

    #[test]
    fn digests_have_fixed_sizes(input in inputs()) {
        prop_assert_eq!(Transform::Md5.apply(&input).len(), 16);
        prop_assert_eq!(Transform::Sha1.apply(&input).len(), 20);
    }

    #[test]
    fn base64_decode_agrees_with_the_bytewise_decoder(
        input in proptest::collection::vec(
            proptest::sample::select(b"ABCxyz0189+/=\r\n-_ \0\xff".to_vec()),
            0..64,
        )
    ) {
        let fast = Transform::Base64Decode.apply(&input);
        let bytewise = super::encoding::base64_decode_bytewise(&input);
        prop_assert_eq!(fast.as_ref(), bytewise.as_ref());
        prop_assert_eq!(matches!(fast, Cow::Borrowed(_)), matches!(bytewise, Cow::Borrowed(_)));
    }

    #[test]
    fn hex_and_base64_round_trip(input in proptest::collection::vec(any::<u8>(), 0..128)) {
        let hex = Transform::HexEncode.apply(&input);
        prop_assert_eq!(Transform::HexDecode.apply(&hex).into_owned(), input.clone());
        let b64 = Transform::Base64Encode.apply(&input);
        prop_assert_eq!(Transform::Base64Decode.apply(&b64).into_owned(), input.clone());
        prop_assert_eq!(Transform::Base64DecodeExt.apply(&b64).into_owned(), input);
    }

    #[test]
    fn case_and_whitespace_are_idempotent(input in inputs()) {
        for t in [
            Transform::Lowercase,
            Transform::Uppercase,
            Transform::RemoveNulls,
            Transform::ReplaceNulls,
            Transform::RemoveWhitespace,
            Transform::CompressWhitespace,
            Transform::Trim,
            Transform::TrimLeft,
            Transform::TrimRight,
            Transform::NormalizePath,
            Transform::NormalizePathWin,
        ] {
            let once = t.apply(&input).into_owned();
            let twice = t.apply(&once);
            prop_assert!(matches!(twice, Cow::Borrowed(_)), "{} is not idempotent on {:?}", t, input);
        }
    }

    #[test]
    fn utf8_to_unicode_leaves_only_ascii_for_valid_text(text in "\\PC{0,16}") {
        let out = Transform::Utf8ToUnicode.apply(text.as_bytes());
        prop_assert!(out.is_ascii());
    }
}

/// A DEFLATE bomb: a megabyte of zeros compresses to about a kilobyte, and decompresses to
/// no more than the bound.
#[test]
fn inflate_stops_at_its_bound() {
    let zeros = vec![0u8; 1 << 20];
    let bomb = miniz_oxide::deflate::compress_to_vec(&zeros, 9);
    assert!(bomb.len() < 2048, "{}", bomb.len());
    let out = Transform::Inflate.apply(&bomb);
    assert_eq!(out.len(), super::INFLATE_MAX);
    assert!(out.iter().all(|&b| b == 0));
    // Within the bound, the round trip is exact.
    let text: Vec<u8> = (0..super::INFLATE_MAX).map(|i| (i % 251) as u8).collect();
    let packed = miniz_oxide::deflate::compress_to_vec(&text, 6);
    assert_eq!(Transform::Inflate.apply(&packed).as_ref(), &text[..]);
}
