//! Backslash escapes: `jsDecode`, `cssDecode` and `escapeSeqDecode`.
//!
//! The three share a shape (scan to the next `\`, decode what follows) but
//! differ in the details ModSecurity gives them, and rules are written
//! against those details, so each keeps its own decoder:
//!
//! * JavaScript takes `\uHHHH` and `\xHH` with a lower-case letter only, and
//!   caps octal escapes at one byte (`\477` is `\47` then `7`).
//! * CSS takes up to six hex digits and uses the last two.
//! * ANSI C takes `\x` or `\X`, and lets a three-digit octal escape wrap.

use std::borrow::Cow;

use super::{finish, hex_pair, hex_value, is_c_space, unicode_to_byte};

/// Runs `decode` on what follows each backslash. `decode` pushes the
/// replacement and returns how many bytes after the backslash it consumed.
fn each_escape<'a>(
    input: &'a [u8],
    mut decode: impl FnMut(&[u8], &mut Vec<u8>) -> usize,
) -> Cow<'a, [u8]> {
    let Some(first) = memchr::memchr(b'\\', input) else {
        return Cow::Borrowed(input);
    };
    let (head, mut rest) = input.split_at(first);
    let mut out = Vec::with_capacity(input.len());
    out.extend_from_slice(head);
    loop {
        let Some(pos) = memchr::memchr(b'\\', rest) else {
            out.extend_from_slice(rest);
            break;
        };
        let (plain, tail) = rest.split_at(pos);
        out.extend_from_slice(plain);
        let after = tail.get(1..).unwrap_or_default();
        let used = decode(after, &mut out);
        rest = after.get(used..).unwrap_or_default();
    }
    finish(input, out)
}

fn is_octal(b: &u8) -> bool {
    (b'0'..=b'7').contains(b)
}

/// The value of the leading octal digits (at most `max` of them) and how
/// many there were. Three digits are at most 0o777, so `u16` holds it.
fn octal(digits: &[u8], max: usize) -> (u16, usize) {
    digits
        .iter()
        .take(max)
        .take_while(|b| is_octal(b))
        .fold((0, 0), |(value, n), &b| {
            (value * 8 + u16::from(b - b'0'), n + 1)
        })
}

/// The C single-letter escapes both JavaScript and ANSI C understand.
fn c_escape(c: u8) -> Option<u8> {
    Some(match c {
        b'a' => 0x07,
        b'b' => 0x08,
        b'f' => 0x0c,
        b'n' => b'\n',
        b'r' => b'\r',
        b't' => b'\t',
        b'v' => 0x0b,
        _ => return None,
    })
}

pub(super) fn js_decode(input: &[u8]) -> Cow<'_, [u8]> {
    each_escape(input, |after, out| {
        if let [b'u', a, b, c, d, ..] = after {
            if let Some(byte) = unicode_to_byte([*a, *b, *c, *d]) {
                out.push(byte);
                return 5;
            }
        }
        if let [b'x', hi, lo, ..] = after {
            if let Some(byte) = hex_pair(*hi, *lo) {
                out.push(byte);
                return 3;
            }
        }
        match after {
            [first, ..] if is_octal(first) => {
                let (mut value, mut n) = octal(after, 3);
                // Three digits starting above 3 exceed a byte; JavaScript
                // then reads only two of them.
                if n == 3 && *first > b'3' {
                    (value, n) = octal(after, 2);
                }
                out.push((value & 0xff) as u8);
                n
            }
            // Any other escaped byte stands for itself (`\'`, `\"`, `\\`,
            // `\?`, but also `\z`, and `\u` or `\x` without valid digits).
            [c, ..] => {
                out.push(c_escape(*c).unwrap_or(*c));
                1
            }
            // A backslash at the very end escapes nothing; keep it.
            [] => {
                out.push(b'\\');
                0
            }
        }
    })
}

pub(super) fn css_decode(input: &[u8]) -> Cow<'_, [u8]> {
    each_escape(input, |after, out| {
        let n = after
            .iter()
            .take(6)
            .take_while(|b| b.is_ascii_hexdigit())
            .count();
        if n > 0 {
            if let Some(byte) = css_hex(after.get(..n).unwrap_or_default()) {
                out.push(byte);
            }
            // CSS lets one whitespace byte end a hex escape, so that
            // `\41 B` can mean "AB"; it belongs to the escape.
            let space = usize::from(after.get(n).copied().is_some_and(is_c_space));
            return n + space;
        }
        match after {
            // A backslash-newline is a line continuation: both vanish.
            [b'\n', ..] => 1,
            [c, ..] => {
                out.push(*c);
                1
            }
            // So does a backslash at the very end.
            [] => 0,
        }
    })
}

/// Decodes 1–6 hex digits to one byte as ModSecurity does: only the last two
/// digits count, except that the full-width forms U+FF01–U+FF5E fold to
/// ASCII when the number fits in 16 bits.
fn css_hex(digits: &[u8]) -> Option<u8> {
    match *digits {
        [d] => hex_value(d),
        [.., hi, lo] if digits.len() <= 3 => hex_pair(hi, lo),
        [a, b, c, d] => unicode_to_byte([a, b, c, d]),
        [b'0', a, b, c, d] => unicode_to_byte([a, b, c, d]),
        [b'0', b'0', a, b, c, d] => unicode_to_byte([a, b, c, d]),
        [.., hi, lo] => hex_pair(hi, lo),
        [] => None,
    }
}

pub(super) fn escape_seq_decode(input: &[u8]) -> Cow<'_, [u8]> {
    each_escape(input, |after, out| match after {
        [c @ (b'x' | b'X'), rest @ ..] => {
            let byte = match rest {
                [hi, lo, ..] => hex_pair(*hi, *lo),
                _ => None,
            };
            match byte {
                Some(byte) => {
                    out.push(byte);
                    3
                }
                // `\x` without two hex digits: drop the backslash only.
                None => {
                    out.push(*c);
                    1
                }
            }
        }
        [first, ..] if is_octal(first) => {
            let (value, n) = octal(after, 3);
            // C wraps `\777` into a byte rather than refusing it.
            out.push((value & 0xff) as u8);
            n
        }
        [c, ..] => {
            out.push(c_escape(*c).unwrap_or(*c));
            1
        }
        [] => {
            out.push(b'\\');
            0
        }
    })
}
