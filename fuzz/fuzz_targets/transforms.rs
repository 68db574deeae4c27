//! The first byte picks one of the engine's transformations (`Transform::ALL`, so a
//! transformation added to the engine is fuzzed without touching this file); the rest is the
//! value. Besides "no panic", it checks what can be stated of each transformation:
//!
//! - `apply` returns `Cow::Borrowed` exactly when the output equals the input (the engine
//!   relies on this for `multiMatch`);
//! - decoders (but `inflate`, which is bounded), removers and normalisers (but `nfkc`, which
//!   spells out compatibility characters, at most 11 bytes for one byte) never lengthen a
//!   value;
//! - case, NUL, whitespace, trim, path and command-line transformations are idempotent, and
//!   their output lacks what they remove (no ASCII upper case after `lowercase`, no NUL after
//!   `removeNulls`, no backslash after `normalizePathWin`...);
//! - the encoders round-trip through their decoders, and `length`, `md5`, `sha1` have the
//!   right shape.
#![no_main]

use std::borrow::Cow;

use libfuzzer_sys::fuzz_target;
use waf_core::transform::Transform;

/// C's `isspace`, which the whitespace transformations use.
fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

fn apply(t: Transform, input: &[u8]) -> Vec<u8> {
    t.apply(input).into_owned()
}

fn assert_idempotent(t: Transform, out: &[u8]) {
    let again = t.apply(out);
    assert!(
        matches!(again, Cow::Borrowed(_)),
        "{t} is not idempotent: {out:?} -> {:?}",
        again.as_ref()
    );
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, input)) = data.split_first() else {
        return;
    };
    let t = Transform::ALL[usize::from(pick) % Transform::ALL.len()];
    let result = t.apply(input);
    match &result {
        Cow::Borrowed(b) => {
            assert_eq!(
                b.as_ptr(),
                input.as_ptr(),
                "{t}: borrowed output is not the input"
            );
            assert_eq!(
                b.len(),
                input.len(),
                "{t}: borrowed output is not the input"
            );
        }
        Cow::Owned(o) => assert_ne!(o.as_slice(), input, "{t}: unchanged value copied"),
    }
    let out: &[u8] = &result;

    // Transformations that only decode, remove or normalise never make a value longer.
    // (The sole exception among decoders would be an escape that decodes to more bytes than
    // it is written with; none does.) `inflate` decompresses and `nfkc` spells out ligatures:
    // their bounds are checked below.
    let shrinks = !matches!(
        t,
        Transform::Base64Encode
            | Transform::HexEncode
            | Transform::Inflate
            | Transform::Nfkc
            | Transform::Utf8ToUnicode
            | Transform::Length
            | Transform::Md5
            | Transform::Sha1
    );
    if shrinks {
        assert!(
            out.len() <= input.len(),
            "{t} lengthened {input:?} to {out:?}"
        );
    }

    match t {
        Transform::Lowercase => {
            assert!(!out.iter().any(u8::is_ascii_uppercase), "{t}: {out:?}");
            assert_eq!(out, input.to_ascii_lowercase().as_slice());
            assert_idempotent(t, out);
        }
        Transform::Uppercase => {
            assert!(!out.iter().any(u8::is_ascii_lowercase), "{t}: {out:?}");
            assert_eq!(out, input.to_ascii_uppercase().as_slice());
            assert_idempotent(t, out);
        }
        Transform::RemoveNulls => {
            assert!(!out.contains(&0), "{t}: {out:?}");
            assert_eq!(out.len(), input.iter().filter(|&&b| b != 0).count());
            assert_idempotent(t, out);
        }
        Transform::ReplaceNulls => {
            assert!(!out.contains(&0), "{t}: {out:?}");
            assert_eq!(out.len(), input.len());
            assert_idempotent(t, out);
        }
        Transform::RemoveWhitespace => {
            assert!(
                !out.iter().any(|&b| is_c_space(b) || b == 0xa0),
                "{t}: {out:?}"
            );
            assert_idempotent(t, out);
        }
        Transform::CompressWhitespace => {
            assert!(
                !out.iter()
                    .any(|&b| (is_c_space(b) && b != b' ') || b == 0xa0),
                "{t}: {out:?}"
            );
            assert!(!out.windows(2).any(|w| w == b"  "), "{t}: {out:?}");
            assert_idempotent(t, out);
        }
        Transform::Trim | Transform::TrimLeft | Transform::TrimRight => {
            if matches!(t, Transform::Trim | Transform::TrimLeft) {
                assert!(!out.first().is_some_and(|&b| is_c_space(b)), "{t}: {out:?}");
            }
            if matches!(t, Transform::Trim | Transform::TrimRight) {
                assert!(!out.last().is_some_and(|&b| is_c_space(b)), "{t}: {out:?}");
            }
            // What is kept is a contiguous part of the input.
            assert!(
                out.is_empty() || input.windows(out.len()).any(|w| w == out),
                "{t}: {out:?} is not part of {input:?}"
            );
            assert_idempotent(t, out);
        }
        Transform::NormalizePath => {
            assert!(!out.windows(2).any(|w| w == b"//"), "{t}: {out:?}");
            assert_idempotent(t, out);
        }
        Transform::NormalizePathWin => {
            assert!(!out.contains(&b'\\'), "{t}: {out:?}");
            assert!(!out.windows(2).any(|w| w == b"//"), "{t}: {out:?}");
            assert_idempotent(t, out);
            // After the backslashes are turned around, it is normalizePath.
            let slashed: Vec<u8> = input
                .iter()
                .map(|&b| if b == b'\\' { b'/' } else { b })
                .collect();
            assert_eq!(out, apply(Transform::NormalizePath, &slashed).as_slice());
        }
        Transform::CmdLine => {
            assert!(
                !out.iter()
                    .any(|&b| b.is_ascii_uppercase() || b"\\\"'^,;\t\r\n".contains(&b)),
                "{t}: {out:?}"
            );
            assert!(!out.windows(2).any(|w| w == b"  "), "{t}: {out:?}");
            assert_idempotent(t, out);
        }
        Transform::Utf8ToUnicode => {
            // Every valid multi-byte character became `%u` and ASCII hex digits.
            if let Ok(text) = std::str::from_utf8(out) {
                assert!(text.is_ascii(), "{t}: {out:?}");
            }
            assert_idempotent(t, out);
        }
        Transform::Base64Encode => {
            assert_eq!(out.len(), input.len().div_ceil(3) * 4, "{t}");
            assert_eq!(apply(Transform::Base64Decode, out), input, "{t} round trip");
            assert_eq!(
                apply(Transform::Base64DecodeExt, out),
                input,
                "{t} round trip (ext)"
            );
        }
        Transform::HexEncode => {
            assert_eq!(out.len(), input.len() * 2, "{t}");
            assert!(
                out.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
                "{t}: {out:?}"
            );
            assert_eq!(apply(Transform::HexDecode, out), input, "{t} round trip");
        }
        Transform::HexDecode => assert_eq!(out.len(), input.len() / 2, "{t}"),
        Transform::Base64Decode => assert!(out.len() <= input.len() / 4 * 3 + 2, "{t}"),
        Transform::Inflate => assert!(out.len() <= waf_core::transform::INFLATE_MAX, "{t}"),
        // Unicode's bound for NFKC in UTF-8 (UAX #15), and a normal form is its own.
        Transform::Nfkc => {
            assert!(out.len() <= input.len() * 11, "{t} lengthened {input:?} to {out:?}");
            assert_eq!(apply(t, out), out, "{t} is not idempotent on {input:?}");
        }
        Transform::Length => assert_eq!(out, input.len().to_string().as_bytes(), "{t}"),
        Transform::Md5 => assert_eq!(out.len(), 16, "{t}"),
        Transform::Sha1 => assert_eq!(out.len(), 20, "{t}"),
        _ => {}
    }
});
