//! `replaceComments`, `removeComments` and `removeCommentsChar`.
//!
//! Comments are the classic way to split a keyword for a pattern while the
//! target (a SQL engine, a browser) still sees it whole: `UN/**/ION`. The
//! three transformations trade precision differently:
//!
//! * `replaceComments` turns each `/* … */` into one space, as SQL does.
//! * `removeComments` deletes `/* … */` and `<!-- … -->` outright and cuts
//!   the value at a line comment (`--`, `#`), after which a SQL engine
//!   ignores everything.
//! * `removeCommentsChar` deletes only the markers, keeping what was inside.
//!
//! An unterminated comment runs to the end of the value, since that is how
//! the engines receiving it would read it.

use std::borrow::Cow;

use super::finish;

pub(super) fn replace_comments(input: &[u8]) -> Cow<'_, [u8]> {
    let Some(first) = memchr::memmem::find(input, b"/*") else {
        return Cow::Borrowed(input);
    };
    let (head, mut rest) = input.split_at(first);
    let mut out = Vec::with_capacity(input.len());
    out.extend_from_slice(head);
    while let Some(start) = memchr::memmem::find(rest, b"/*") {
        let (plain, comment) = rest.split_at(start);
        out.extend_from_slice(plain);
        out.push(b' ');
        let body = comment.get(2..).unwrap_or_default();
        match memchr::memmem::find(body, b"*/") {
            Some(end) => rest = body.get(end + 2..).unwrap_or_default(),
            None => {
                rest = &[];
                break;
            }
        }
    }
    out.extend_from_slice(rest);
    finish(input, out)
}

pub(super) fn remove_comments(input: &[u8]) -> Cow<'_, [u8]> {
    let mut out = Vec::with_capacity(input.len());
    let mut rest = input;
    let mut in_comment = false;
    loop {
        rest = if in_comment {
            // Either terminator closes either kind of comment, as in
            // ModSecurity.
            match rest {
                [b'*', b'/', after @ ..] | [b'-', b'-', b'>', after @ ..] => {
                    in_comment = false;
                    after
                }
                [_, after @ ..] => after,
                [] => break,
            }
        } else {
            match rest {
                [b'/', b'*', after @ ..] | [b'<', b'!', b'-', b'-', after @ ..] => {
                    in_comment = true;
                    after
                }
                // A line comment hides the rest of the value from the
                // database, so it is dropped from the inspected value too.
                [b'-', b'-', ..] | [b'#', ..] | [] => break,
                [b, after @ ..] => {
                    out.push(*b);
                    after
                }
            }
        };
    }
    if in_comment {
        out.push(b' ');
    }
    finish(input, out)
}

pub(super) fn remove_comments_char(input: &[u8]) -> Cow<'_, [u8]> {
    let mut out = Vec::with_capacity(input.len());
    let mut rest = input;
    loop {
        rest = match rest {
            [b'/', b'*', after @ ..]
            | [b'*', b'/', after @ ..]
            | [b'<', b'!', b'-', b'-', after @ ..]
            | [b'-', b'-', b'>', after @ ..]
            | [b'-', b'-', after @ ..]
            | [b'#', after @ ..] => after,
            [b, after @ ..] => {
                out.push(*b);
                after
            }
            [] => break,
        };
    }
    finish(input, out)
}
