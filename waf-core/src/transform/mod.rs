//! Transformations: the `t:` functions that normalise a value before an
//! operator looks at it.
//!
//! A rule such as `SecRule ARGS "@rx select" "t:urlDecodeUni,t:lowercase"`
//! runs each target value through a pipeline of transformations first, so
//! that `SeLeCt`, `%53elect` and `%u0053elect` all reach the operator as
//! `select`. This module implements every transformation the OWASP Core Rule
//! Set relies on, with the semantics of ModSecurity v3 (libmodsecurity).
//!
//! # Using it
//!
//! Each transformation is a variant of [`Transform`]. Parse the name used in
//! a rule (ModSecurity's camelCase or this crate's snake_case, any case) and
//! call [`Transform::apply`]:
//!
//! ```
//! use waf_core::transform::Transform;
//!
//! let pipeline: Vec<Transform> = ["urlDecodeUni", "lowercase"]
//!     .iter()
//!     .map(|name| name.parse().unwrap())
//!     .collect();
//! let mut value: Vec<u8> = b"%53eLeCT+1".to_vec();
//! for t in &pipeline {
//!     value = t.apply(&value).into_owned();
//! }
//! assert_eq!(value, b"select 1");
//! ```
//!
//! # Bytes in, bytes out
//!
//! Request data is not text: it is whatever bytes the client sent. Every
//! transformation takes `&[u8]` and accepts any input, including invalid
//! UTF-8, truncated escapes and NUL bytes, without failing or panicking.
//! Malformed escapes are kept as they are, the way ModSecurity keeps them,
//! so that an attacker cannot hide a payload behind a broken escape.
//!
//! The result is a [`Cow`]: `Cow::Borrowed` exactly when the output equals
//! the input (nothing is copied then), `Cow::Owned` when something changed.
//! The engine relies on that to skip work and to tell, for `multiMatch`,
//! whether a step produced a new value.
//!
//! # The transformations
//!
//! | family | variants |
//! |---|---|
//! | case | [`Lowercase`](Transform::Lowercase), [`Uppercase`](Transform::Uppercase) |
//! | URL | [`UrlDecode`](Transform::UrlDecode), [`UrlDecodeUni`](Transform::UrlDecodeUni), [`Utf8ToUnicode`](Transform::Utf8ToUnicode) |
//! | Unicode | [`Nfkc`](Transform::Nfkc) |
//! | markup and script escapes | [`HtmlEntityDecode`](Transform::HtmlEntityDecode), [`JsDecode`](Transform::JsDecode), [`CssDecode`](Transform::CssDecode), [`EscapeSeqDecode`](Transform::EscapeSeqDecode) |
//! | binary encodings | [`Base64Decode`](Transform::Base64Decode), [`Base64DecodeExt`](Transform::Base64DecodeExt), [`Base64Encode`](Transform::Base64Encode), [`HexDecode`](Transform::HexDecode), [`HexEncode`](Transform::HexEncode), [`SqlHexDecode`](Transform::SqlHexDecode), [`Inflate`](Transform::Inflate) |
//! | NUL bytes | [`RemoveNulls`](Transform::RemoveNulls), [`ReplaceNulls`](Transform::ReplaceNulls) |
//! | whitespace | [`RemoveWhitespace`](Transform::RemoveWhitespace), [`CompressWhitespace`](Transform::CompressWhitespace), [`Trim`](Transform::Trim), [`TrimLeft`](Transform::TrimLeft), [`TrimRight`](Transform::TrimRight) |
//! | comments | [`ReplaceComments`](Transform::ReplaceComments), [`RemoveComments`](Transform::RemoveComments), [`RemoveCommentsChar`](Transform::RemoveCommentsChar) |
//! | shells and paths | [`CmdLine`](Transform::CmdLine), [`NormalizePath`](Transform::NormalizePath), [`NormalizePathWin`](Transform::NormalizePathWin) |
//! | digests and sizes | [`Length`](Transform::Length), [`Md5`](Transform::Md5), [`Sha1`](Transform::Sha1) |
//!
//! Each variant's documentation states its exact behaviour, including how
//! malformed input is treated.
//!
//! # Differences from ModSecurity
//!
//! The byte-level behaviour follows libmodsecurity (checked byte for byte
//! against libmodsecurity 3.0.9 on random inputs), with these deliberate
//! exceptions, all of which close evasions or remove C artefacts:
//!
//! * No transformation stops at a NUL byte. Some libmodsecurity functions
//!   (`sqlHexDecode`, `utf8toUnicode`, `cssDecode`, `base64Decode`) lose
//!   everything after the first (decoded) NUL because they call `strlen`;
//!   here NUL is an ordinary byte (it does end the alphabet for
//!   [`Base64Decode`](Transform::Base64Decode), like any other non-base64
//!   byte).
//! * [`SqlHexDecode`](Transform::SqlHexDecode) and
//!   [`RemoveComments`](Transform::RemoveComments) behave as the fixed
//!   versions in current ModSecurity (and its regression tests) do, not as
//!   the off-by-one of 3.0.9 (which turns `ABC` into `AB`).
//! * [`NormalizePath`](Transform::NormalizePath) resolves segments: a name
//!   that merely ends in `..` (`a..`) is a name, not a parent reference, and
//!   `a/.././b/..` resolves fully. libmodsecurity's pointer walk gets these
//!   wrong and, for [`NormalizePathWin`](Transform::NormalizePathWin), can
//!   leave backslashes in its output.
//! * [`Base64DecodeExt`](Transform::Base64DecodeExt) decodes the same
//!   whether or not the last character is `9`; libmodsecurity confuses that
//!   digit's value (61) with the code of `=` and may return nothing.
//! * [`Base64Decode`](Transform::Base64Decode) decodes the valid prefix of
//!   its input, as ModSecurity 2 did, instead of returning nothing for input
//!   that is not perfectly formed: appending one stray byte must not hide a
//!   payload.
//! * [`Utf8ToUnicode`](Transform::Utf8ToUnicode) treats overlong forms,
//!   surrogates and code points above U+10FFFF as invalid and keeps their
//!   bytes, where libmodsecurity emits both an escape and a stray byte.
//! * [`RemoveComments`](Transform::RemoveComments) does not copy the byte
//!   that follows a comment's end unexamined, so `/**//**/` is removed whole.
//! * [`HtmlEntityDecode`](Transform::HtmlEntityDecode) also decodes `&apos;`.
//! * [`Inflate`](Transform::Inflate) is this crate's own: ModSecurity has no
//!   transformation that reads compressed data.
//! * [`Nfkc`](Transform::Nfkc) is this crate's own too: ModSecurity maps
//!   full-width characters to ASCII only when they come as `%uff..` escapes
//!   (`urlDecodeUni`), not when they come as UTF-8.
//! * [`CompressWhitespace`](Transform::CompressWhitespace) counts the
//!   non-breaking space (0xA0) as whitespace, as ModSecurity 2 did, and both
//!   it and [`RemoveWhitespace`](Transform::RemoveWhitespace) treat the UTF-8
//!   non-breaking space C2 A0 as one unit (libmodsecurity 3 deletes every
//!   0xC2 byte instead, damaging unrelated characters).

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

/// Most bytes [`Transform::Inflate`] produces from one value. A SAML message decompresses to a
/// few kilobytes, and what the rules look for in one (a `DOCTYPE`) comes before its root
/// element; the bound keeps a compressed value a thousandth of its output's size, repeated in
/// every argument of a request, from costing gigabytes.
///
/// ```
/// assert_eq!(waf_core::transform::INFLATE_MAX, 16 * 1024);
/// ```
pub const INFLATE_MAX: usize = 16 * 1024;

mod comments;
mod encoding;
mod escapes;
mod hash;
mod html;
mod path;
mod text;
mod unicode;
mod url;
mod whitespace;

#[cfg(test)]
mod tests;

/// One transformation function, as named by `t:` in a rule.
///
/// ```
/// use waf_core::transform::Transform;
///
/// let t: Transform = "htmlEntityDecode".parse().unwrap();
/// assert_eq!(t, Transform::HtmlEntityDecode);
/// assert_eq!(t.apply(b"&lt;script&gt;").as_ref(), b"<script>");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Transform {
    /// ASCII letters to lower case; other bytes unchanged.
    ///
    /// ```
    /// use waf_core::transform::Transform;
    /// assert_eq!(Transform::Lowercase.apply(b"SeLeCT \xC3\x89").as_ref(), b"select \xC3\x89");
    /// ```
    Lowercase,
    /// ASCII letters to upper case; other bytes unchanged.
    ///
    /// ```
    /// use waf_core::transform::Transform;
    /// assert_eq!(Transform::Uppercase.apply(b"SeLeCT").as_ref(), b"SELECT");
    /// ```
    Uppercase,
    /// URL decoding: `%XX` becomes the byte 0xXX and `+` a space. A `%` not
    /// followed by two hex digits is kept as it is.
    ///
    /// ```
    /// use waf_core::transform::Transform;
    /// assert_eq!(Transform::UrlDecode.apply(b"a%20b+c%zz%4").as_ref(), b"a b c%zz%4");
    /// ```
    UrlDecode,
    /// Like [`UrlDecode`](Transform::UrlDecode), and also decodes IIS's
    /// `%uHHHH`: the result is the low byte of the code unit, except that the
    /// full-width forms U+FF01–U+FF5E become their ASCII counterparts.
    ///
    /// ```
    /// use waf_core::transform::Transform;
    /// assert_eq!(Transform::UrlDecodeUni.apply(b"%u0041%uFF42%41").as_ref(), b"AbA");
    /// ```
    UrlDecodeUni,
    /// HTML character references: `&#DDD;`, `&#xHH;` (the low byte of the
    /// number; the semicolon is optional) and the named references `&quot;`,
    /// `&amp;`, `&lt;`, `&gt;`, `&nbsp;` (to 0xA0) and `&apos;`, in any case.
    /// Anything else is kept.
    ///
    /// ```
    /// use waf_core::transform::Transform;
    /// assert_eq!(Transform::HtmlEntityDecode.apply(b"&#60;&#x3e&QUOT;&foo;").as_ref(), b"<>\"&foo;");
    /// ```
    HtmlEntityDecode,
    /// JavaScript escapes: `\uHHHH` (low byte, full-width ASCII mapped),
    /// `\xHH`, `\OOO` octal, the C escapes `\a \b \f \n \r \t \v`, and
    /// `\c` → `c` for any other character. A trailing lone `\` is kept.
    ///
    /// ```
    /// use waf_core::transform::Transform;
    /// assert_eq!(Transform::JsDecode.apply(br"\x3cscript\u003e\'").as_ref(), b"<script>'");
    /// ```
    JsDecode,
    /// CSS 2 escapes: `\` and 1–6 hex digits (the low byte; one following
    /// whitespace byte is consumed), `\` and a newline (both removed), `\`
    /// and any other byte (that byte).
    ///
    /// ```
    /// use waf_core::transform::Transform;
    /// assert_eq!(Transform::CssDecode.apply(br"\6a \61vascript").as_ref(), b"javascript");
    /// ```
    CssDecode,
    /// Base64 decoding of the longest valid prefix: decoding stops at the
    /// first byte outside the standard alphabet (padding included); CR and
    /// LF are skipped.
    ///
    /// ```
    /// use waf_core::transform::Transform;
    /// assert_eq!(Transform::Base64Decode.apply(b"VGVzdA==").as_ref(), b"Test");
    /// ```
    Base64Decode,
    /// Forgiving base64 decoding: bytes outside the alphabet are ignored, and
    /// the URL-safe `-` and `_` are accepted. Like ModSecurity, a `=` that
    /// leaves a single dangling character (and is not followed by another
    /// `=`) makes the whole result empty.
    ///
    /// ```
    /// use waf_core::transform::Transform;
    /// assert_eq!(Transform::Base64DecodeExt.apply(b"VG.Vz dA").as_ref(), b"Test");
    /// ```
    Base64DecodeExt,
    /// Raw DEFLATE decompression (RFC 1951, no zlib or gzip header), as the SAML
    /// HTTP-Redirect binding compresses a `SAMLRequest` or `SAMLResponse` before its base64:
    /// `[base64_decode, inflate]` reads the XML. At most [`INFLATE_MAX`] bytes come out, so
    /// a small compressed value cannot grow into megabytes; data that is not DEFLATE (or is
    /// cut short) yields what decompressed before the first error, often nothing.
    ///
    /// ```
    /// use waf_core::transform::Transform;
    /// // `<!DOCTYPE x>` compressed with DEFLATE, fixed Huffman codes.
    /// let deflated = [0xb3, 0x51, 0x74, 0xf1, 0x77, 0x0e, 0x89, 0x0c, 0x70, 0x55, 0xa8, 0xb0, 0x03, 0x00];
    /// assert_eq!(Transform::Inflate.apply(&deflated).as_ref(), b"<!DOCTYPE x>");
    /// assert_eq!(Transform::Inflate.apply(b"not deflate").as_ref(), b"");
    /// ```
    Inflate,
    /// Base64 encoding with the standard alphabet and padding.
    ///
    /// ```
    /// use waf_core::transform::Transform;
    /// assert_eq!(Transform::Base64Encode.apply(b"Test").as_ref(), b"VGVzdA==");
    /// ```
    Base64Encode,
    /// Hex decoding of consecutive digit pairs. As in ModSecurity the input
    /// is not validated: non-hex bytes yield arbitrary values and an odd last
    /// byte is dropped.
    ///
    /// ```
    /// use waf_core::transform::Transform;
    /// assert_eq!(Transform::HexDecode.apply(b"414243").as_ref(), b"ABC");
    /// ```
    HexDecode,
    /// Hex encoding, lower case.
    ///
    /// ```
    /// use waf_core::transform::Transform;
    /// assert_eq!(Transform::HexEncode.apply(b"AB\xff").as_ref(), b"4142ff");
    /// ```
    HexEncode,
    /// SQL hex literals: each `0x` (or `0X`) followed by hex digit pairs is
    /// replaced by the decoded bytes; the rest of the text is kept.
    ///
    /// ```
    /// use waf_core::transform::Transform;
    /// assert_eq!(Transform::SqlHexDecode.apply(b"SELECT 0x414243").as_ref(), b"SELECT ABC");
    /// ```
    SqlHexDecode,
    /// ANSI C escapes: `\a \b \f \n \r \t \v \\ \? \' \"`, `\xHH` and
    /// `\OOO`; for an unknown escape the backslash is dropped.
    ///
    /// ```
    /// use waf_core::transform::Transform;
    /// assert_eq!(Transform::EscapeSeqDecode.apply(br"a\tb\x41\101").as_ref(), b"a\tbAA");
    /// ```
    EscapeSeqDecode,
    /// Removes every NUL byte.
    ///
    /// ```
    /// use waf_core::transform::Transform;
    /// assert_eq!(Transform::RemoveNulls.apply(b"a\0b").as_ref(), b"ab");
    /// ```
    RemoveNulls,
    /// Replaces every NUL byte by a space.
    ///
    /// ```
    /// use waf_core::transform::Transform;
    /// assert_eq!(Transform::ReplaceNulls.apply(b"a\0b").as_ref(), b"a b");
    /// ```
    ReplaceNulls,
    /// Removes whitespace: space, `\t \n \v \f \r` and the non-breaking
    /// space, as the byte 0xA0 or as UTF-8 (C2 A0).
    ///
    /// ```
    /// use waf_core::transform::Transform;
    /// assert_eq!(Transform::RemoveWhitespace.apply(b" a \t b\xa0c\xc2\xa0d").as_ref(), b"abcd");
    /// ```
    RemoveWhitespace,
    /// Replaces each run of whitespace (as for
    /// [`RemoveWhitespace`](Transform::RemoveWhitespace), non-breaking spaces
    /// included) by one space.
    ///
    /// ```
    /// use waf_core::transform::Transform;
    /// assert_eq!(Transform::CompressWhitespace.apply(b"a \t\n b").as_ref(), b"a b");
    /// ```
    CompressWhitespace,
    /// Replaces each C-style comment `/* … */` by one space; an unterminated
    /// comment runs to the end and also becomes one space.
    ///
    /// ```
    /// use waf_core::transform::Transform;
    /// assert_eq!(Transform::ReplaceComments.apply(b"UNION/**/SELECT").as_ref(), b"UNION SELECT");
    /// ```
    ReplaceComments,
    /// Removes `/* … */` and `<!-- … -->` comments (an unterminated one
    /// becomes one space), and cuts the value at `--` or `#` outside a
    /// comment.
    ///
    /// ```
    /// use waf_core::transform::Transform;
    /// assert_eq!(Transform::RemoveComments.apply(b"UNION/**/SELECT 1 -- x").as_ref(), b"UNIONSELECT 1 ");
    /// ```
    RemoveComments,
    /// Removes the comment markers `/*`, `*/`, `<!--`, `-->`, `--` and `#`,
    /// keeping the text between them.
    ///
    /// ```
    /// use waf_core::transform::Transform;
    /// assert_eq!(Transform::RemoveCommentsChar.apply(b"a/*b*/c#").as_ref(), b"abc");
    /// ```
    RemoveCommentsChar,
    /// Command-line normalisation: deletes `\ " ' ^`, deletes spaces before
    /// `/` and `(`, turns each run of `, ; space \t \r \n` into one space,
    /// and lowercases ASCII.
    ///
    /// ```
    /// use waf_core::transform::Transform;
    /// assert_eq!(Transform::CmdLine.apply(b"C^md.exe ,/C \"DiR\"").as_ref(), b"cmd.exe/c dir");
    /// ```
    CmdLine,
    /// Path normalisation: collapses repeated `/`, drops `.` segments and
    /// resolves `..` against the previous segment. An absolute path never
    /// climbs above `/`; a relative path keeps its leading `..` segments.
    ///
    /// ```
    /// use waf_core::transform::Transform;
    /// assert_eq!(Transform::NormalizePath.apply(b"/a/./b//../../../etc/passwd").as_ref(), b"/etc/passwd");
    /// ```
    NormalizePath,
    /// Like [`NormalizePath`](Transform::NormalizePath) after turning every
    /// `\` into `/`.
    ///
    /// ```
    /// use waf_core::transform::Transform;
    /// assert_eq!(Transform::NormalizePathWin.apply(br"C:\a\..\b").as_ref(), b"C:/b");
    /// ```
    NormalizePathWin,
    /// Replaces each valid multi-byte UTF-8 sequence by `%u` and its code
    /// point in lower-case hex (at least four digits); ASCII and invalid
    /// bytes are kept as they are.
    ///
    /// ```
    /// use waf_core::transform::Transform;
    /// assert_eq!(Transform::Utf8ToUnicode.apply("a\u{e9}\u{ff1c}".as_bytes()).as_ref(), b"a%u00e9%uff1c");
    /// ```
    Utf8ToUnicode,
    /// Unicode normalization form KC (compatibility composition) of each run of valid UTF-8;
    /// bytes that are not UTF-8 are kept as they are, and ASCII never changes.
    ///
    /// Applications that normalize their input this way (Python's `unicodedata`, Django's
    /// user names, Java's `Normalizer`, identifier and search fields) read the full-width
    /// `＇` (U+FF07), `＜` and `；` as `'`, `<` and `;`, and `ｓｅｌｅｃｔ` as `select`: without this
    /// step a rule sees bytes it does not know where the application sees an attack. NFKC also
    /// spells out ligatures and compatibility forms (`ﬁ` is `fi`, `…` is `...`, `²` is
    /// `2`), so a value may grow, at most eighteen characters for one.
    ///
    /// ```
    /// use waf_core::transform::Transform;
    /// let fullwidth = "1\u{ff07} OR \u{ff07}1\u{ff07}=\u{ff07}1";
    /// assert_eq!(Transform::Nfkc.apply(fullwidth.as_bytes()).as_ref(), b"1' OR '1'='1");
    /// assert_eq!(Transform::Nfkc.apply("Zo\u{eb}".as_bytes()).as_ref(), "Zo\u{eb}".as_bytes());
    /// assert_eq!(Transform::Nfkc.apply(b"\xff\xef\xbc\x9c").as_ref(), b"\xff<");
    /// ```
    Nfkc,
    /// Removes leading and trailing whitespace (space, `\t \n \v \f \r`).
    ///
    /// ```
    /// use waf_core::transform::Transform;
    /// assert_eq!(Transform::Trim.apply(b" \t a b \n").as_ref(), b"a b");
    /// ```
    Trim,
    /// Removes leading whitespace (space, `\t \n \v \f \r`).
    ///
    /// ```
    /// use waf_core::transform::Transform;
    /// assert_eq!(Transform::TrimLeft.apply(b"  a ").as_ref(), b"a ");
    /// ```
    TrimLeft,
    /// Removes trailing whitespace (space, `\t \n \v \f \r`).
    ///
    /// ```
    /// use waf_core::transform::Transform;
    /// assert_eq!(Transform::TrimRight.apply(b"  a ").as_ref(), b"  a");
    /// ```
    TrimRight,
    /// The length of the value in bytes, as decimal ASCII digits.
    ///
    /// ```
    /// use waf_core::transform::Transform;
    /// assert_eq!(Transform::Length.apply(b"hello").as_ref(), b"5");
    /// ```
    Length,
    /// The raw 16-byte MD5 digest (combine with
    /// [`HexEncode`](Transform::HexEncode) for text).
    ///
    /// ```
    /// use waf_core::transform::Transform;
    /// let digest = Transform::Md5.apply(b"");
    /// assert_eq!(Transform::HexEncode.apply(&digest).as_ref(), b"d41d8cd98f00b204e9800998ecf8427e");
    /// ```
    Md5,
    /// The raw 20-byte SHA-1 digest (combine with
    /// [`HexEncode`](Transform::HexEncode) for text).
    ///
    /// ```
    /// use waf_core::transform::Transform;
    /// let digest = Transform::Sha1.apply(b"abc");
    /// assert_eq!(Transform::HexEncode.apply(&digest).as_ref(), b"a9993e364706816aba3e25717850c26c9cd0d89d");
    /// ```
    Sha1,
}

impl Transform {
    /// Every transformation, in declaration order.
    ///
    /// ```
    /// use waf_core::transform::Transform;
    /// assert!(Transform::ALL.contains(&Transform::CmdLine));
    /// assert!(Transform::ALL.iter().all(|t| t.name().parse() == Ok(*t)));
    /// ```
    pub const ALL: &'static [Transform] = &[
        Transform::Lowercase,
        Transform::Uppercase,
        Transform::UrlDecode,
        Transform::UrlDecodeUni,
        Transform::HtmlEntityDecode,
        Transform::JsDecode,
        Transform::CssDecode,
        Transform::Base64Decode,
        Transform::Base64DecodeExt,
        Transform::Base64Encode,
        Transform::HexDecode,
        Transform::HexEncode,
        Transform::SqlHexDecode,
        Transform::Inflate,
        Transform::EscapeSeqDecode,
        Transform::RemoveNulls,
        Transform::ReplaceNulls,
        Transform::RemoveWhitespace,
        Transform::CompressWhitespace,
        Transform::ReplaceComments,
        Transform::RemoveComments,
        Transform::RemoveCommentsChar,
        Transform::CmdLine,
        Transform::NormalizePath,
        Transform::NormalizePathWin,
        Transform::Utf8ToUnicode,
        Transform::Nfkc,
        Transform::Trim,
        Transform::TrimLeft,
        Transform::TrimRight,
        Transform::Length,
        Transform::Md5,
        Transform::Sha1,
    ];

    /// Applies the transformation. Returns `Cow::Borrowed(input)` exactly
    /// when the output equals the input.
    ///
    /// ```
    /// use std::borrow::Cow;
    /// use waf_core::transform::Transform;
    ///
    /// assert!(matches!(Transform::UrlDecode.apply(b"plain"), Cow::Borrowed(_)));
    /// assert_eq!(Transform::UrlDecode.apply(b"a%2fb").as_ref(), b"a/b");
    /// ```
    pub fn apply<'a>(&self, input: &'a [u8]) -> Cow<'a, [u8]> {
        match self {
            Transform::Lowercase => text::lowercase(input),
            Transform::Uppercase => text::uppercase(input),
            Transform::UrlDecode => url::url_decode(input),
            Transform::UrlDecodeUni => url::url_decode_uni(input),
            Transform::HtmlEntityDecode => html::html_entity_decode(input),
            Transform::JsDecode => escapes::js_decode(input),
            Transform::CssDecode => escapes::css_decode(input),
            Transform::Base64Decode => encoding::base64_decode(input),
            Transform::Base64DecodeExt => encoding::base64_decode_ext(input),
            Transform::Base64Encode => encoding::base64_encode(input),
            Transform::HexDecode => encoding::hex_decode(input),
            Transform::HexEncode => encoding::hex_encode(input),
            Transform::SqlHexDecode => encoding::sql_hex_decode(input),
            Transform::Inflate => encoding::inflate(input),
            Transform::EscapeSeqDecode => escapes::escape_seq_decode(input),
            Transform::RemoveNulls => text::remove_nulls(input),
            Transform::ReplaceNulls => text::replace_nulls(input),
            Transform::RemoveWhitespace => whitespace::remove_whitespace(input),
            Transform::CompressWhitespace => whitespace::compress_whitespace(input),
            Transform::ReplaceComments => comments::replace_comments(input),
            Transform::RemoveComments => comments::remove_comments(input),
            Transform::RemoveCommentsChar => comments::remove_comments_char(input),
            Transform::CmdLine => text::cmd_line(input),
            Transform::NormalizePath => path::normalize_path(input, false),
            Transform::NormalizePathWin => path::normalize_path(input, true),
            Transform::Utf8ToUnicode => encoding::utf8_to_unicode(input),
            Transform::Nfkc => unicode::nfkc(input),
            Transform::Trim => whitespace::trim(input, true, true),
            Transform::TrimLeft => whitespace::trim(input, true, false),
            Transform::TrimRight => whitespace::trim(input, false, true),
            Transform::Length => hash::length(input),
            Transform::Md5 => hash::md5(input),
            Transform::Sha1 => hash::sha1(input),
        }
    }

    /// The bytes without which the transformation leaves a value as it is, but for the ASCII
    /// case change of [`case_change`](Transform::case_change); `None` when it may change any
    /// value (decoders of whole values, digests, `length`).
    ///
    /// The compiled program reads these to skip transformations: a value holding none of a
    /// chain's trigger bytes needs no decoding pass at all. No set holds an ASCII letter, so a
    /// set of a value's bytes stays valid across case changes. A property test holds every set
    /// to `apply`.
    pub(crate) fn triggers(&self) -> Option<&'static [u8]> {
        const SPACES: &[u8] = b" \t\n\x0b\x0c\r\xa0";
        Some(match self {
            Transform::Lowercase | Transform::Uppercase => b"",
            Transform::UrlDecode | Transform::UrlDecodeUni => b"%+",
            Transform::HtmlEntityDecode => b"&",
            Transform::JsDecode | Transform::CssDecode | Transform::EscapeSeqDecode => b"\\",
            // A literal starts with `0x`.
            Transform::SqlHexDecode => b"0",
            Transform::RemoveNulls | Transform::ReplaceNulls => b"\0",
            Transform::RemoveWhitespace | Transform::CompressWhitespace => SPACES,
            // Every comment marker holds one of these: `/*`, `*/`, `<!--`, `-->`, `--`, `#`.
            Transform::ReplaceComments => b"*",
            Transform::RemoveComments | Transform::RemoveCommentsChar => b"*!-#",
            Transform::CmdLine => b"\\\"'^,; \t\r\n",
            // Without a separator the whole value is one segment, which changes only if it
            // is `.`.
            Transform::NormalizePath => b"/.",
            Transform::NormalizePathWin => b"/\\.",
            Transform::Utf8ToUnicode | Transform::Nfkc => NON_ASCII,
            Transform::Trim | Transform::TrimLeft | Transform::TrimRight => b" \t\n\x0b\x0c\r",
            Transform::Base64Decode
            | Transform::Base64DecodeExt
            | Transform::Base64Encode
            | Transform::HexDecode
            | Transform::HexEncode
            | Transform::Inflate
            | Transform::Length
            | Transform::Md5
            | Transform::Sha1 => return None,
        })
    }

    /// The ASCII case change the transformation makes to a value holding none of its
    /// [`triggers`](Transform::triggers): `lowercase` and `cmd_line` lowercase it, `uppercase`
    /// uppercases it; the others leave it alone (`None`).
    pub(crate) fn case_change(&self) -> Option<Transform> {
        match self {
            Transform::Lowercase | Transform::CmdLine => Some(Transform::Lowercase),
            Transform::Uppercase => Some(Transform::Uppercase),
            _ => None,
        }
    }

    /// This crate's snake_case name, as used in configuration and logs.
    ///
    /// ```
    /// use waf_core::transform::Transform;
    /// assert_eq!(Transform::UrlDecodeUni.name(), "url_decode_uni");
    /// ```
    pub fn name(&self) -> &'static str {
        match self {
            Transform::Lowercase => "lowercase",
            Transform::Uppercase => "uppercase",
            Transform::UrlDecode => "url_decode",
            Transform::UrlDecodeUni => "url_decode_uni",
            Transform::HtmlEntityDecode => "html_entity_decode",
            Transform::JsDecode => "js_decode",
            Transform::CssDecode => "css_decode",
            Transform::Base64Decode => "base64_decode",
            Transform::Base64DecodeExt => "base64_decode_ext",
            Transform::Base64Encode => "base64_encode",
            Transform::HexDecode => "hex_decode",
            Transform::HexEncode => "hex_encode",
            Transform::SqlHexDecode => "sql_hex_decode",
            Transform::Inflate => "inflate",
            Transform::EscapeSeqDecode => "escape_seq_decode",
            Transform::RemoveNulls => "remove_nulls",
            Transform::ReplaceNulls => "replace_nulls",
            Transform::RemoveWhitespace => "remove_whitespace",
            Transform::CompressWhitespace => "compress_whitespace",
            Transform::ReplaceComments => "replace_comments",
            Transform::RemoveComments => "remove_comments",
            Transform::RemoveCommentsChar => "remove_comments_char",
            Transform::CmdLine => "cmd_line",
            Transform::NormalizePath => "normalize_path",
            Transform::NormalizePathWin => "normalize_path_win",
            Transform::Utf8ToUnicode => "utf8_to_unicode",
            Transform::Nfkc => "nfkc",
            Transform::Trim => "trim",
            Transform::TrimLeft => "trim_left",
            Transform::TrimRight => "trim_right",
            Transform::Length => "length",
            Transform::Md5 => "md5",
            Transform::Sha1 => "sha1",
        }
    }

    /// The name ModSecurity rules use after `t:`.
    ///
    /// ```
    /// use waf_core::transform::Transform;
    /// assert_eq!(Transform::Utf8ToUnicode.modsec_name(), "utf8toUnicode");
    /// ```
    pub fn modsec_name(&self) -> &'static str {
        match self {
            Transform::Lowercase => "lowercase",
            Transform::Uppercase => "uppercase",
            Transform::UrlDecode => "urlDecode",
            Transform::UrlDecodeUni => "urlDecodeUni",
            Transform::HtmlEntityDecode => "htmlEntityDecode",
            Transform::JsDecode => "jsDecode",
            Transform::CssDecode => "cssDecode",
            Transform::Base64Decode => "base64Decode",
            Transform::Base64DecodeExt => "base64DecodeExt",
            Transform::Base64Encode => "base64Encode",
            Transform::HexDecode => "hexDecode",
            Transform::HexEncode => "hexEncode",
            Transform::SqlHexDecode => "sqlHexDecode",
            Transform::Inflate => "inflate",
            Transform::EscapeSeqDecode => "escapeSeqDecode",
            Transform::RemoveNulls => "removeNulls",
            Transform::ReplaceNulls => "replaceNulls",
            Transform::RemoveWhitespace => "removeWhitespace",
            Transform::CompressWhitespace => "compressWhitespace",
            Transform::ReplaceComments => "replaceComments",
            Transform::RemoveComments => "removeComments",
            Transform::RemoveCommentsChar => "removeCommentsChar",
            Transform::CmdLine => "cmdLine",
            Transform::NormalizePath => "normalizePath",
            Transform::NormalizePathWin => "normalizePathWin",
            Transform::Utf8ToUnicode => "utf8toUnicode",
            Transform::Nfkc => "nfkc",
            Transform::Trim => "trim",
            Transform::TrimLeft => "trimLeft",
            Transform::TrimRight => "trimRight",
            Transform::Length => "length",
            Transform::Md5 => "md5",
            Transform::Sha1 => "sha1",
        }
    }
}

/// Shows the snake_case [`name`](Transform::name).
///
/// ```
/// use waf_core::transform::Transform;
/// assert_eq!(Transform::CmdLine.to_string(), "cmd_line");
/// ```
impl fmt::Display for Transform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Parses a transformation name, ignoring ASCII case: the snake_case
/// [`name`](Transform::name), ModSecurity's
/// [`modsec_name`](Transform::modsec_name), or the British spellings
/// `normalisePath` / `normalisePathWin` (`normalise_path` / `normalise_path_win`)
/// that ModSecurity also accepts.
///
/// ```
/// use waf_core::transform::Transform;
/// assert_eq!("URLDECODEUNI".parse(), Ok(Transform::UrlDecodeUni));
/// assert_eq!("normalisePathWin".parse(), Ok(Transform::NormalizePathWin));
/// assert_eq!("utf8_to_unicode".parse(), Ok(Transform::Utf8ToUnicode));
/// assert!("none".parse::<Transform>().is_err());
/// ```
impl FromStr for Transform {
    type Err = UnknownTransform;

    fn from_str(s: &str) -> Result<Transform, UnknownTransform> {
        // The British spellings are ModSecurity's canonical ones; keep them
        // out of `modsec_name` so there is one name per variant to print.
        const ALIASES: &[(&str, Transform)] = &[
            ("normalisePath", Transform::NormalizePath),
            ("normalise_path", Transform::NormalizePath),
            ("normalisePathWin", Transform::NormalizePathWin),
            ("normalise_path_win", Transform::NormalizePathWin),
        ];
        Transform::ALL
            .iter()
            .copied()
            .find(|t| s.eq_ignore_ascii_case(t.name()) || s.eq_ignore_ascii_case(t.modsec_name()))
            .or_else(|| {
                ALIASES
                    .iter()
                    .find(|(alias, _)| s.eq_ignore_ascii_case(alias))
                    .map(|&(_, t)| t)
            })
            .ok_or_else(|| UnknownTransform(s.to_string()))
    }
}

/// The error for a name that is no transformation; holds the name as given.
///
/// ```
/// use waf_core::transform::{Transform, UnknownTransform};
///
/// let err = "rot13".parse::<Transform>().unwrap_err();
/// assert_eq!(err, UnknownTransform("rot13".to_string()));
/// assert_eq!(err.to_string(), "unknown transformation `rot13`");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownTransform(pub String);

impl fmt::Display for UnknownTransform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown transformation `{}`", self.0)
    }
}

impl std::error::Error for UnknownTransform {}

// ---------------------------------------------------------------------------
// Helpers shared by the families.

/// Every byte above 0x7F: the triggers of `utf8_to_unicode`.
const NON_ASCII: &[u8] = &{
    let mut bytes = [0u8; 128];
    let mut i = 0;
    while i < 128 {
        bytes[i] = 0x80 + i as u8;
        i += 1;
    }
    bytes
};

/// Hands back the input itself when a rebuilt value turned out identical, so
/// that `Borrowed` always means "unchanged", whichever path produced it.
fn finish(input: &[u8], out: Vec<u8>) -> Cow<'_, [u8]> {
    if out == input {
        Cow::Borrowed(input)
    } else {
        Cow::Owned(out)
    }
}

/// The value of one hex digit (shared with the parsers' percent-decoding).
pub(crate) fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The byte written as two hex digits, if both are hex digits.
fn hex_pair(hi: u8, lo: u8) -> Option<u8> {
    Some(hex_value(hi)? << 4 | hex_value(lo)?)
}

/// C's `isspace` in the "C" locale, which is what ModSecurity tests with:
/// unlike `u8::is_ascii_whitespace` it includes the vertical tab.
fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// Maps a 16-bit code unit, written as four hex digits, to one byte the way
/// ModSecurity's `%uHHHH` and `\uHHHH` decoders do: the low byte, except
/// that the full-width forms U+FF01–U+FF5E fold to ASCII (so `%uFF1C` cannot
/// smuggle a `<` past a rule looking for one).
fn unicode_to_byte(digits: [u8; 4]) -> Option<u8> {
    let [a, b, c, d] = digits;
    let high = hex_pair(a, b)?;
    let low = hex_pair(c, d)?;
    if high == 0xff && (0x01..=0x5e).contains(&low) {
        Some(low + 0x20)
    } else {
        Some(low)
    }
}
