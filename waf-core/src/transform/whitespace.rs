//! `removeWhitespace`, `compressWhitespace` and the `trim` family.
//!
//! Whitespace means C's `isspace` (space, `\t \n \v \f \r`). Removing and
//! compressing also count the non-breaking space, both as the byte 0xA0
//! (Latin-1) and as its UTF-8 form C2 A0, which HTML and many SQL engines
//! treat as a separator: `UNION\xa0SELECT` must not slip past a rule written
//! for `UNION SELECT`. Trimming keeps ModSecurity's narrower set.

use std::borrow::Cow;

use super::{finish, is_c_space};

const NBSP: u8 = 0xa0;

/// The length of the whitespace at the start of `rest`, 0 if none. The
/// UTF-8 encoding of the non-breaking space (C2 A0) counts as one unit, so
/// no orphaned lead byte is left behind.
fn whitespace_len(rest: &[u8]) -> usize {
    match rest {
        [0xc2, NBSP, ..] => 2,
        [b, ..] if is_c_space(*b) || *b == NBSP => 1,
        _ => 0,
    }
}

/// By byte: whether it is whitespace on its own (a C space or 0xA0).
static IS_SPACE: [bool; 256] = byte_table(false);

/// By byte: whether whitespace may start there: a space, or 0xC2, the lead byte of C2 A0.
static MAY_START: [bool; 256] = byte_table(true);

const fn byte_table(with_lead: bool) -> [bool; 256] {
    let mut table = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        table[i] = matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | NBSP)
            || (with_lead && b == 0xc2);
        i += 1;
    }
    table
}

/// Whether `input` has anything `whitespace_len` would match; every match
/// contains a C space or 0xA0, so a byte scan decides it.
fn has_whitespace(input: &[u8]) -> bool {
    input.iter().any(|&b| IS_SPACE[usize::from(b)])
}

/// The next whitespace at or after `from`: where it starts, and its length.
///
/// These transformations run over every header of a request at several chain nodes; one
/// table lookup per byte between the spaces costs a third of testing `whitespace_len` at
/// every byte.
fn next_whitespace(input: &[u8], from: usize) -> Option<(usize, usize)> {
    let mut i = from;
    loop {
        let at = i + input
            .get(i..)?
            .iter()
            .position(|&b| MAY_START[usize::from(b)])?;
        match whitespace_len(input.get(at..).unwrap_or_default()) {
            // A C2 that does not lead a non-breaking space.
            0 => i = at + 1,
            n => return Some((at, n)),
        }
    }
}

pub(super) fn remove_whitespace(input: &[u8]) -> Cow<'_, [u8]> {
    if !has_whitespace(input) {
        return Cow::Borrowed(input);
    }
    // Copies the runs between whitespace in one piece each: a byte at a time cost the
    // User-Agent of every request a few thousand instructions.
    let mut out = Vec::with_capacity(input.len());
    let mut plain = 0;
    while let Some((at, n)) = next_whitespace(input, plain) {
        out.extend_from_slice(input.get(plain..at).unwrap_or_default());
        plain = at + n;
    }
    out.extend_from_slice(input.get(plain..).unwrap_or_default());
    finish(input, out)
}

pub(super) fn compress_whitespace(input: &[u8]) -> Cow<'_, [u8]> {
    if !has_whitespace(input) {
        return Cow::Borrowed(input);
    }
    let mut out = Vec::with_capacity(input.len());
    let (mut plain, mut in_run) = (0, false);
    while let Some((at, n)) = next_whitespace(input, plain) {
        if plain < at {
            out.extend_from_slice(input.get(plain..at).unwrap_or_default());
            in_run = false;
        }
        if !in_run {
            out.push(b' ');
            in_run = true;
        }
        plain = at + n;
    }
    out.extend_from_slice(input.get(plain..).unwrap_or_default());
    finish(input, out)
}

pub(super) fn trim(input: &[u8], left: bool, right: bool) -> Cow<'_, [u8]> {
    let start = if left {
        input
            .iter()
            .position(|&b| !is_c_space(b))
            .unwrap_or(input.len())
    } else {
        0
    };
    let end = if right {
        input
            .iter()
            .rposition(|&b| !is_c_space(b))
            .map_or(0, |i| i + 1)
    } else {
        input.len()
    };
    let kept = input.get(start..end.max(start)).unwrap_or_default();
    // A shorter slice of the input is still a different value: the engine
    // reads `Borrowed` as "unchanged", so a trimmed value is returned owned.
    if kept.len() == input.len() {
        Cow::Borrowed(input)
    } else {
        Cow::Owned(kept.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The byte-at-a-time definitions the run-copying versions replaced.
    fn removed(input: &[u8]) -> Vec<u8> {
        let (mut out, mut rest) = (Vec::new(), input);
        while let [b, after @ ..] = rest {
            match whitespace_len(rest) {
                0 => {
                    out.push(*b);
                    rest = after;
                }
                n => rest = rest.get(n..).unwrap_or_default(),
            }
        }
        out
    }

    fn compressed(input: &[u8]) -> Vec<u8> {
        let (mut out, mut rest, mut in_run) = (Vec::new(), input, false);
        while let [b, after @ ..] = rest {
            match whitespace_len(rest) {
                0 => {
                    out.push(*b);
                    in_run = false;
                    rest = after;
                }
                n => {
                    if !in_run {
                        out.push(b' ');
                    }
                    in_run = true;
                    rest = rest.get(n..).unwrap_or_default();
                }
            }
        }
        out
    }

    proptest! {
        #[test]
        fn run_copying_agrees_with_the_definition(
            input in proptest::collection::vec(
                prop_oneof![any::<u8>(), proptest::sample::select(b" \t\n\x0b\x0c\r\xa0\xc2ab".to_vec())],
                0..48,
            )
        ) {
            prop_assert_eq!(remove_whitespace(&input).into_owned(), removed(&input));
            prop_assert_eq!(compress_whitespace(&input).into_owned(), compressed(&input));
        }
    }
}
