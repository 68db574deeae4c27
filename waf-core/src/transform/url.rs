//! `urlDecode` and `urlDecodeUni`.
//!
//! Both are lenient in ModSecurity's way: a `%` that does not start a valid
//! escape is kept literally rather than rejected, so that a broken escape
//! next to a payload cannot make the whole value disappear.

use std::borrow::Cow;

use super::{finish, hex_pair, unicode_to_byte};

pub(super) fn url_decode(input: &[u8]) -> Cow<'_, [u8]> {
    decode(input, false)
}

pub(super) fn url_decode_uni(input: &[u8]) -> Cow<'_, [u8]> {
    decode(input, true)
}

fn decode(input: &[u8], uni: bool) -> Cow<'_, [u8]> {
    let Some(first) = memchr::memchr2(b'%', b'+', input) else {
        return Cow::Borrowed(input);
    };
    let (head, mut rest) = input.split_at(first);
    let mut out = Vec::with_capacity(input.len());
    out.extend_from_slice(head);
    loop {
        let Some(pos) = memchr::memchr2(b'%', b'+', rest) else {
            out.extend_from_slice(rest);
            break;
        };
        let (plain, special) = rest.split_at(pos);
        out.extend_from_slice(plain);
        rest = match special {
            [b'+', after @ ..] => {
                out.push(b' ');
                after
            }
            [b'%', after @ ..] => match percent_escape(after, uni) {
                Some((byte, used)) => {
                    out.push(byte);
                    after.get(used..).unwrap_or_default()
                }
                None => {
                    out.push(b'%');
                    after
                }
            },
            // memchr2 only stops on the two bytes matched above.
            _ => {
                out.extend_from_slice(special);
                &[]
            }
        };
    }
    finish(input, out)
}

/// Decodes the escape that follows a `%`: the byte and how many bytes after
/// the `%` it used.
fn percent_escape(after: &[u8], uni: bool) -> Option<(u8, usize)> {
    match after {
        [b'u' | b'U', a, b, c, d, ..] if uni => Some((unicode_to_byte([*a, *b, *c, *d])?, 5)),
        [hi, lo, ..] => Some((hex_pair(*hi, *lo)?, 2)),
        _ => None,
    }
}
