//! Helpers shared by the table-driven tests.

/// Decodes the escapes of the test data files (`waf-core/tests/data/*.tsv`):
/// `\\ \t \n \r \0 \xHH`. Any other escape is an error, so a typo in a table is caught.
pub(crate) fn unescape(s: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        if b != b'\\' {
            out.push(b);
            continue;
        }
        match bytes.next() {
            Some(b'\\') => out.push(b'\\'),
            Some(b't') => out.push(b'\t'),
            Some(b'n') => out.push(b'\n'),
            Some(b'r') => out.push(b'\r'),
            Some(b'0') => out.push(0),
            Some(b'x') => {
                let (Some(hi), Some(lo)) = (bytes.next(), bytes.next()) else {
                    return Err("truncated \\x escape".into());
                };
                let text = [hi, lo];
                let text = std::str::from_utf8(&text).map_err(|e| e.to_string())?;
                out.push(u8::from_str_radix(text, 16).map_err(|e| format!("\\x{text}: {e}"))?);
            }
            other => return Err(format!("unknown escape \\{:?}", other.map(char::from))),
        }
    }
    Ok(out)
}

#[test]
fn unescape_rejects_typos() {
    assert_eq!(unescape(r"a\x41\\\t\0").as_deref(), Ok(&b"aA\\\t\0"[..]));
    assert!(unescape(r"\q").is_err());
    assert!(unescape(r"\x4").is_err());
    assert!(unescape(r"\xzz").is_err());
}
