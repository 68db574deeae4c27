//! `length`, `md5` and `sha1`: values about the input rather than
//! rewritings of it.
//!
//! The digests are the raw bytes, as in ModSecurity; chain `hexEncode` to
//! compare them with a hex string.

use std::borrow::Cow;

use md5::Digest as _;

use super::finish;

pub(super) fn length(input: &[u8]) -> Cow<'_, [u8]> {
    finish(input, input.len().to_string().into_bytes())
}

pub(super) fn md5(input: &[u8]) -> Cow<'_, [u8]> {
    finish(input, md5::Md5::digest(input).to_vec())
}

pub(super) fn sha1(input: &[u8]) -> Cow<'_, [u8]> {
    finish(
        input,
        sha1_smol::Sha1::from(input).digest().bytes().to_vec(),
    )
}
