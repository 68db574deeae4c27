//! Unicode compatibility normalization ([`Transform::Nfkc`](super::Transform::Nfkc)).

use std::borrow::Cow;

use unicode_normalization::{is_nfkc_quick, IsNormalized, UnicodeNormalization};

/// NFKC of each run of valid UTF-8 in `input`, the other bytes kept between them.
///
/// A value is the client's bytes, not text: a run of UTF-8 is normalized on its own, and a
/// byte that is not UTF-8 stays where it was, as a boundary no composition crosses.
pub(super) fn nfkc(input: &[u8]) -> Cow<'_, [u8]> {
    // ASCII is NFKC already, and so are most values with other characters (names with
    // accents): the quick check answers for those without building anything.
    let normalized = |run: &str| is_nfkc_quick(run.chars()) == IsNormalized::Yes;
    if input.is_ascii() || input.utf8_chunks().all(|chunk| normalized(chunk.valid())) {
        return Cow::Borrowed(input);
    }
    let mut out = Vec::with_capacity(input.len() + 8);
    for chunk in input.utf8_chunks() {
        let run = chunk.valid();
        if normalized(run) {
            out.extend_from_slice(run.as_bytes());
        } else {
            let mut utf8 = [0; 4];
            for c in run.nfkc() {
                out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
            }
        }
        out.extend_from_slice(chunk.invalid());
    }
    // The quick check may answer "maybe" for a run that normalizes to itself.
    if out == input {
        Cow::Borrowed(input)
    } else {
        Cow::Owned(out)
    }
}
