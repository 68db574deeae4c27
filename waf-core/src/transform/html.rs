//! `htmlEntityDecode`.
//!
//! Browsers decode character references liberally (a missing semicolon is
//! fine, numbers may be huge), so the decoder must be at least as liberal:
//! the semicolon is optional, and a number of any size yields its low byte,
//! after saturating like C's `strtol` as ModSecurity does.

use std::borrow::Cow;

use super::finish;

const NBSP: u8 = 0xa0;

pub(super) fn html_entity_decode(input: &[u8]) -> Cow<'_, [u8]> {
    let Some(first) = memchr::memchr(b'&', input) else {
        return Cow::Borrowed(input);
    };
    let (head, mut rest) = input.split_at(first);
    let mut out = Vec::with_capacity(input.len());
    out.extend_from_slice(head);
    loop {
        let Some(pos) = memchr::memchr(b'&', rest) else {
            out.extend_from_slice(rest);
            break;
        };
        let (plain, tail) = rest.split_at(pos);
        out.extend_from_slice(plain);
        let after = tail.get(1..).unwrap_or_default();
        rest = match entity(after) {
            Some((byte, used)) => {
                out.push(byte);
                after.get(used..).unwrap_or_default()
            }
            // Nothing in a rejected reference can start another one except a
            // later `&`, so resuming right after this `&` keeps it literal.
            None => {
                out.push(b'&');
                after
            }
        };
    }
    finish(input, out)
}

/// Decodes the reference that follows an `&`: the byte and how many bytes
/// after the `&` it used, semicolon included.
fn entity(after: &[u8]) -> Option<(u8, usize)> {
    let (byte, used) = match after {
        [b'#', b'x' | b'X', digits @ ..] => {
            let (value, n) = number(digits, 16)?;
            (value, 2 + n)
        }
        [b'#', digits @ ..] => {
            let (value, n) = number(digits, 10)?;
            (value, 1 + n)
        }
        _ => {
            let n = after
                .iter()
                .take_while(|b| b.is_ascii_alphanumeric())
                .count();
            (named(after.get(..n)?)?, n)
        }
    };
    let semicolon = usize::from(after.get(used) == Some(&b';'));
    Some((byte, used + semicolon))
}

/// Parses the leading digits in `radix`; `None` when there are none.
fn number(digits: &[u8], radix: u32) -> Option<(u8, usize)> {
    // Clamp where a 64-bit `long` would, so overlong numbers give the same
    // byte as in ModSecurity (0xFF) instead of wrapping to something else.
    const LONG_MAX: u64 = i64::MAX as u64;
    let mut value: u64 = 0;
    let mut n = 0;
    for &b in digits {
        let Some(d) = char::from(b).to_digit(radix) else {
            break;
        };
        value = value
            .saturating_mul(u64::from(radix))
            .saturating_add(u64::from(d))
            .min(LONG_MAX);
        n += 1;
    }
    if n == 0 {
        return None;
    }
    Some(((value & 0xff) as u8, n))
}

fn named(name: &[u8]) -> Option<u8> {
    const NAMES: &[(&[u8], u8)] = &[
        (b"quot", b'"'),
        (b"amp", b'&'),
        (b"lt", b'<'),
        (b"gt", b'>'),
        (b"nbsp", NBSP),
        (b"apos", b'\''),
    ];
    NAMES
        .iter()
        .find(|(known, _)| known.eq_ignore_ascii_case(name))
        .map(|&(_, byte)| byte)
}
