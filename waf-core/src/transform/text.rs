//! Byte-level rewrites: case, NUL bytes, and `cmdLine`.

use std::borrow::Cow;

use super::finish;

pub(super) fn lowercase(input: &[u8]) -> Cow<'_, [u8]> {
    if input.iter().any(u8::is_ascii_uppercase) {
        Cow::Owned(input.to_ascii_lowercase())
    } else {
        Cow::Borrowed(input)
    }
}

pub(super) fn uppercase(input: &[u8]) -> Cow<'_, [u8]> {
    if input.iter().any(u8::is_ascii_lowercase) {
        Cow::Owned(input.to_ascii_uppercase())
    } else {
        Cow::Borrowed(input)
    }
}

pub(super) fn remove_nulls(input: &[u8]) -> Cow<'_, [u8]> {
    if memchr::memchr(0, input).is_none() {
        return Cow::Borrowed(input);
    }
    Cow::Owned(input.iter().copied().filter(|&b| b != 0).collect())
}

pub(super) fn replace_nulls(input: &[u8]) -> Cow<'_, [u8]> {
    if memchr::memchr(0, input).is_none() {
        return Cow::Borrowed(input);
    }
    Cow::Owned(
        input
            .iter()
            .map(|&b| if b == 0 { b' ' } else { b })
            .collect(),
    )
}

/// Undoes the tricks shells (`sh` and `cmd.exe`) allow without changing a
/// command's meaning: quotes and escapes inside words (`c^md`, `w"h"o`),
/// separators in odd places (`cmd,/c`), and letter case (Windows).
pub(super) fn cmd_line(input: &[u8]) -> Cow<'_, [u8]> {
    let mut out = Vec::with_capacity(input.len());
    let mut after_space = false;
    for &b in input {
        match b {
            b'\\' | b'"' | b'\'' | b'^' => {}
            b' ' | b',' | b';' | b'\t' | b'\r' | b'\n' => {
                if !after_space {
                    out.push(b' ');
                    after_space = true;
                }
            }
            // `cmd /c` and `cmd/c`, `f (x)` and `f(x)` run alike; keep one
            // spelling so patterns need not allow for both.
            b'/' | b'(' => {
                if after_space {
                    out.pop();
                }
                after_space = false;
                out.push(b);
            }
            _ => {
                out.push(b.to_ascii_lowercase());
                after_space = false;
            }
        }
    }
    finish(input, out)
}
