//! Binary-to-text encodings: base64, hex, SQL hex literals, and
//! `utf8toUnicode`.
//!
//! The decoders never fail: a WAF has to inspect whatever is there, so
//! malformed input decodes as far as it goes instead of being rejected.

use std::borrow::Cow;

use base64::Engine as _;

use super::{finish, hex_pair};

/// Accumulates 6-bit base64 values and emits each completed byte; bits of an
/// unfinished byte are dropped, as every lenient decoder does.
#[derive(Default)]
struct Base64Bits {
    acc: u32,
    bits: u32,
    sextets: usize,
}

impl Base64Bits {
    fn push(&mut self, value: u8, out: &mut Vec<u8>) {
        self.acc = (self.acc << 6 | u32::from(value)) & 0xffff;
        self.bits += 6;
        self.sextets += 1;
        if self.bits >= 8 {
            self.bits -= 8;
            out.push((self.acc >> self.bits) as u8);
        }
    }
}

/// Each byte's value in the standard base64 alphabet, or `NOT_BASE64`: a table, because the
/// decoders look up every byte of values kilobytes long.
const BASE64_VALUES: [u8; 256] = {
    let mut table = [NOT_BASE64; 256];
    let mut i = 0;
    while i < 64 {
        table[b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"[i] as usize] =
            i as u8;
        i += 1;
    }
    table
};

const NOT_BASE64: u8 = 0xff;

fn base64_value(b: u8) -> Option<u8> {
    match BASE64_VALUES[usize::from(b)] {
        NOT_BASE64 => None,
        value => Some(value),
    }
}

/// Raw DEFLATE decompression, bounded by [`INFLATE_MAX`](super::INFLATE_MAX): the output
/// of a complete stream, or what came out before an error or the bound.
///
/// The decompressor's core is driven here rather than through `decompress_to_vec_with_limit`,
/// whose error carries its whole zero-filled buffer instead of the bytes written, and which
/// sets up an 11 KB decompressor and a buffer twice the input for every value. A rule reading
/// `[base64_decode, inflate]` has every argument of every request inflated, nearly all of them
/// random bytes that stop the decoder within a few bytes: so the decompressor is kept per
/// thread (`init` resets it), and the buffer starts small and doubles as output comes.
pub(super) fn inflate(input: &[u8]) -> Cow<'_, [u8]> {
    use miniz_oxide::inflate::core::{decompress, inflate_flags, DecompressorOxide};
    use miniz_oxide::inflate::TINFLStatus;
    use std::cell::RefCell;
    thread_local! {
        static DECOMPRESSOR: RefCell<Box<DecompressorOxide>> = RefCell::default();
    }
    let max = super::INFLATE_MAX;
    let mut out = vec![0; input.len().saturating_mul(2).clamp(64, max)];
    let written = DECOMPRESSOR.with_borrow_mut(|state| {
        state.init();
        let mut rest = input;
        let mut written = 0;
        loop {
            let (status, read, wrote) = decompress(
                state,
                rest,
                &mut out,
                written,
                inflate_flags::TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF,
            );
            written += wrote;
            match status {
                TINFLStatus::HasMoreOutput if out.len() < max => {
                    rest = rest.get(read..).unwrap_or_default();
                    out.resize(out.len().saturating_mul(2).min(max), 0);
                }
                _ => return written,
            }
        }
    });
    out.truncate(written);
    finish(input, out)
}

pub(super) fn base64_decode(input: &[u8]) -> Cow<'_, [u8]> {
    // A SAML message is kilobytes of base64 without a line break: its run of alphabet bytes
    // goes to the `base64` crate's decoder, faster than the byte-by-byte loop below (which
    // stays for values with line breaks, and as the reference the property test holds this
    // path to).
    let run = input
        .iter()
        .position(|&b| base64_value(b).is_none())
        .unwrap_or(input.len());
    if input.get(run).is_none_or(|&b| b != b'\r' && b != b'\n') {
        return finish(
            input,
            base64_decode_run(input.get(..run).unwrap_or_default()),
        );
    }
    base64_decode_bytewise(input)
}

/// Decodes a run of base64 alphabet bytes (no padding, no line break) as
/// [`base64_decode_bytewise`] does: the bits of an unfinished byte are dropped, and so is a
/// last character that carries fewer than eight bits.
fn base64_decode_run(run: &[u8]) -> Vec<u8> {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new()
            .with_decode_allow_trailing_bits(true)
            .with_decode_padding_mode(DecodePaddingMode::RequireNone),
    );
    let whole = match run.split_last() {
        Some((_, rest)) if run.len() % 4 == 1 => rest,
        _ => run,
    };
    LENIENT
        .decode(whole)
        .unwrap_or_else(|_| base64_decode_bytewise(run).into_owned())
}

/// The byte-by-byte base64 decoder: skips line breaks, stops at any other byte outside the
/// alphabet.
pub(super) fn base64_decode_bytewise(input: &[u8]) -> Cow<'_, [u8]> {
    let mut out = Vec::with_capacity(input.len() / 4 * 3 + 2);
    let mut bits = Base64Bits::default();
    for &b in input {
        // Line breaks are how MIME and PEM wrap base64; they carry nothing.
        if b == b'\r' || b == b'\n' {
            continue;
        }
        // Padding or any other stray byte ends the encoded part; what was
        // decoded up to there is kept (ModSecurity 2's behaviour), so junk
        // appended to a payload cannot make it vanish.
        let Some(value) = base64_value(b) else {
            break;
        };
        bits.push(value, &mut out);
    }
    finish(input, out)
}

pub(super) fn base64_decode_ext(input: &[u8]) -> Cow<'_, [u8]> {
    let mut out = Vec::with_capacity(input.len() / 4 * 3 + 2);
    let mut bits = Base64Bits::default();
    for (i, &b) in input.iter().enumerate() {
        if b == b'=' {
            // ModSecurity's forgiving decoder gives up on padding that
            // follows a single dangling character, unless more padding
            // follows; match it so rules see the same value.
            if bits.sextets % 4 == 1 && input.get(i + 1) != Some(&b'=') {
                return finish(input, Vec::new());
            }
            continue;
        }
        // Both alphabets at once: `-` and `_` are the URL-safe 62 and 63.
        let value = match b {
            b'-' => Some(62),
            b'_' => Some(63),
            _ => base64_value(b),
        };
        if let Some(value) = value {
            bits.push(value, &mut out);
        }
    }
    finish(input, out)
}

pub(super) fn base64_encode(input: &[u8]) -> Cow<'_, [u8]> {
    let encoded = base64::engine::general_purpose::STANDARD.encode(input);
    finish(input, encoded.into_bytes())
}

pub(super) fn hex_decode(input: &[u8]) -> Cow<'_, [u8]> {
    let out = input
        .chunks_exact(2)
        .map(|pair| match *pair {
            [hi, lo] => unchecked_hex_pair(hi, lo),
            _ => 0,
        })
        .collect();
    finish(input, out)
}

/// ModSecurity's `x2c`, which does not validate: a non-hex byte still gets a
/// digit value by the same arithmetic. Reproduced so that rules see the same
/// bytes for malformed input as under ModSecurity.
fn unchecked_hex_pair(hi: u8, lo: u8) -> u8 {
    let digit = |c: u8| {
        if c >= b'A' {
            (c & 0xdf).wrapping_sub(b'A').wrapping_add(10)
        } else {
            c.wrapping_sub(b'0')
        }
    };
    digit(hi).wrapping_mul(16).wrapping_add(digit(lo))
}

pub(super) fn hex_encode(input: &[u8]) -> Cow<'_, [u8]> {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = Vec::with_capacity(input.len() * 2);
    for &b in input {
        out.extend(DIGITS.get(usize::from(b >> 4)));
        out.extend(DIGITS.get(usize::from(b & 0x0f)));
    }
    finish(input, out)
}

pub(super) fn sql_hex_decode(input: &[u8]) -> Cow<'_, [u8]> {
    let mut out = Vec::with_capacity(input.len());
    let mut rest = input;
    loop {
        rest = match rest {
            // A literal needs at least one whole byte after `0x`; otherwise
            // the `0` is ordinary text and scanning resumes at the `x`.
            [b'0', b'x' | b'X', hi, lo, ..] if hex_pair(*hi, *lo).is_some() => {
                let mut digits = rest.get(2..).unwrap_or_default();
                while let [hi, lo, after @ ..] = digits {
                    let Some(byte) = hex_pair(*hi, *lo) else {
                        break;
                    };
                    out.push(byte);
                    digits = after;
                }
                // An odd last digit is not part of the literal; it stays.
                digits
            }
            [b, after @ ..] => {
                out.push(*b);
                after
            }
            [] => break,
        };
    }
    finish(input, out)
}

pub(super) fn utf8_to_unicode(input: &[u8]) -> Cow<'_, [u8]> {
    if input.is_ascii() {
        return Cow::Borrowed(input);
    }
    let mut out = Vec::with_capacity(input.len() * 3);
    for chunk in input.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c.is_ascii() {
                out.push(c as u8);
            } else {
                push_unicode_escape(c, &mut out);
            }
        }
        // Overlong forms, surrogates and truncated sequences are not
        // characters; their bytes pass through for later rules to judge.
        out.extend_from_slice(chunk.invalid());
    }
    finish(input, out)
}

/// Writes `%u` and the code point in lower-case hex, at least four digits.
fn push_unicode_escape(c: char, out: &mut Vec<u8>) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let code = u32::from(c);
    let width = if code > 0xfffff {
        6
    } else if code > 0xffff {
        5
    } else {
        4
    };
    out.extend_from_slice(b"%u");
    for shift in (0..width).rev() {
        let nibble = (code >> (shift * 4)) & 0xf;
        out.extend(DIGITS.get(nibble as usize));
    }
}
