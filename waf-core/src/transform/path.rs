//! `normalizePath` and `normalizePathWin`.
//!
//! Path traversal hides behind equivalent spellings of one path
//! (`/a/./b/../../etc//passwd`); normalising gives rules the spelling a file
//! system would resolve. The result follows ModSecurity:
//!
//! * runs of `/` collapse to one, and `.` segments vanish;
//! * `..` removes the segment before it; at the top of an absolute path it
//!   is dropped, while a relative path keeps the `..` it
//!   cannot resolve (`a/../../b` is `../b`), since those are exactly what a
//!   traversal rule needs to see;
//! * the output ends in `/` only if the input did: a path that normalises
//!   away entirely becomes empty, or `/` when the input ended in `/`
//!   (`/..` is empty, `/../` is `/`).
//!
//! The Windows flavour first reads every `\` as `/`; the output uses `/`.

use std::borrow::Cow;

use super::finish;

pub(super) fn normalize_path(input: &[u8], windows: bool) -> Cow<'_, [u8]> {
    let is_separator = |b: &u8| *b == b'/' || (windows && *b == b'\\');
    let (Some(first), Some(last)) = (input.first(), input.last()) else {
        return Cow::Borrowed(input);
    };
    let absolute = is_separator(first);
    let trailing = is_separator(last);
    if is_normal(input, windows) {
        return Cow::Borrowed(input);
    }

    let mut segments: Vec<&[u8]> = Vec::new();
    for segment in input.split(is_separator) {
        match segment {
            b"" | b"." => {}
            b".." => match segments.last() {
                Some(&previous) if previous != b".." => {
                    segments.pop();
                }
                _ if absolute => {}
                _ => segments.push(segment),
            },
            _ => segments.push(segment),
        }
    }

    let mut out = Vec::with_capacity(input.len());
    if absolute {
        out.push(b'/');
    }
    for (i, segment) in segments.iter().enumerate() {
        if i > 0 {
            out.push(b'/');
        }
        out.extend_from_slice(segment);
    }
    if trailing && !segments.is_empty() {
        out.push(b'/');
    }
    // ModSecurity never adds a trailing slash the input did not have, even
    // when that leaves nothing of an absolute path (`/..` becomes empty).
    if !trailing && out.last() == Some(&b'/') {
        out.pop();
    }
    finish(input, out)
}

/// Whether normalising leaves `input` as it is, decided without building anything: most paths
/// and URLs already are normal, and this runs on every value of many rules. A path is normal
/// when it has no `.` or `..` segment and no empty segment but a leading or trailing one (the
/// root and a final `/`), and, for Windows, no backslash.
fn is_normal(input: &[u8], windows: bool) -> bool {
    if windows && memchr::memchr(b'\\', input).is_some() {
        return false;
    }
    let last = input.split(|&b| b == b'/').count() - 1;
    input
        .split(|&b| b == b'/')
        .enumerate()
        .all(|(i, segment)| match segment {
            b"." | b".." => false,
            b"" => i == 0 || i == last,
            _ => true,
        })
}
