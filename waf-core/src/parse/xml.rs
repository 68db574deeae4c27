//! XML bodies: the text and attribute values ModSecurity's XML processor exposes as `XML:/*`
//! and `XML://@*`.
//!
//! ModSecurity hands an XML body to libxml2 and lets rules query it with XPath. The OWASP CRS
//! asks two questions only: `XML:/*`, the string value of the root element — every text node
//! of the document, concatenated in order — and `XML://@*`, every attribute value. This module
//! answers those two with `quick-xml`, a streaming parser: no tree is built, nothing from a
//! `DOCTYPE` is expanded (entities a document declares stay as written), and a malformed
//! document is reported, keeping what came before the fault.

use std::borrow::Cow;

use quick_xml::events::Event;
use quick_xml::Reader;

/// What an XML body holds for the rules.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct XmlValues {
    /// The document's text: text and CDATA nodes, concatenated (`XML:/*`).
    pub text: Vec<u8>,
    /// Every attribute value, in document order (`XML://@*`).
    pub attributes: Vec<Vec<u8>>,
    /// Why the document is not well-formed, when it is not.
    pub error: Option<String>,
}

/// Reads the text and attribute values of an XML document.
///
/// ```
/// use waf_core::parse::xml::xml_values;
///
/// let v = xml_values(b"<a x='1'>one<b y=\"2\">two</b><![CDATA[<three>]]></a>");
/// assert_eq!(v.text, b"onetwo<three>");
/// assert_eq!(v.attributes, [b"1".to_vec(), b"2".to_vec()]);
/// assert!(v.error.is_none());
/// assert!(xml_values(b"<a><b></a>").error.is_some());
/// ```
pub fn xml_values(body: &[u8]) -> XmlValues {
    let mut out = XmlValues::default();
    let mut reader = Reader::from_reader(body);
    reader.config_mut().check_end_names = true;
    let mut depth = 0usize;
    let mut seen_root = false;
    // A document has one root element, and nothing but comments, processing instructions and
    // whitespace around it. What an application reads out of anything else is anyone's guess,
    // so it makes the document malformed, as it does for libxml2 ("Extra content at the end
    // of the document"): otherwise `<a/><script>…` would hide its second half from the rules.
    loop {
        match reader.read_event() {
            Ok(Event::Start(_) | Event::Empty(_)) if depth == 0 && seen_root => {
                out.error = Some(outside_root(seen_root));
                break;
            }
            Ok(Event::Text(t)) if depth == 0 && !t.iter().all(u8::is_ascii_whitespace) => {
                out.error = Some(outside_root(seen_root));
                break;
            }
            Ok(Event::GeneralRef(_) | Event::CData(_)) if depth == 0 => {
                out.error = Some(outside_root(seen_root));
                break;
            }
            Ok(Event::Start(e)) => {
                depth += 1;
                seen_root = true;
                push_attributes(&e, &mut out);
            }
            Ok(Event::Empty(e)) => {
                seen_root = true;
                push_attributes(&e, &mut out);
            }
            Ok(Event::End(_)) => depth = depth.saturating_sub(1),
            Ok(Event::Text(t)) if depth > 0 => out.text.extend_from_slice(&unescape(&t)),
            Ok(Event::GeneralRef(r)) if depth > 0 => {
                // `&amp;`, `&#60;`: the predefined and numeric references are the text they
                // stand for; a declared entity (`&xxe;`) stays as written, unexpanded.
                out.text.extend_from_slice(&reference(&r));
            }
            Ok(Event::CData(c)) if depth > 0 => {
                out.text.extend_from_slice(&normalize_line_ends(&c));
            }
            Ok(Event::Eof) => {
                if depth > 0 {
                    out.error = Some("XML document ends inside an element".into());
                } else if !seen_root {
                    out.error = Some("XML document has no root element".into());
                }
                break;
            }
            Ok(_) => {}
            Err(e) => {
                out.error = Some(format!("XML parsing error: {e}"));
                break;
            }
        }
    }
    // XML 1.0 allows no control character but tab, LF and CR, not even escaped; libxml2
    // refuses the document. quick-xml passes them through (and so the values keep them), but
    // a NUL would let the text before it stand for the whole value in an application that
    // reads C strings.
    if let Some(&c) = body
        .iter()
        .find(|&&b| b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r'))
    {
        out.error = Some(format!(
            "XML document holds the control character 0x{c:02X}"
        ));
    }
    out
}

fn outside_root(seen_root: bool) -> String {
    if seen_root {
        "XML document has content after its root element".into()
    } else {
        "XML document has text before its root element".into()
    }
}

/// An attribute value as an XML processor hands it over (3.3.3): line ends normalized, then
/// each tab and line feed read as a space, then references replaced (so `&#10;` stays a line
/// feed).
fn push_attributes(e: &quick_xml::events::BytesStart<'_>, out: &mut XmlValues) {
    for attribute in e.attributes().with_checks(false).flatten() {
        let spaced: Vec<u8> = normalize_line_ends(&attribute.value)
            .iter()
            .map(|&b| if matches!(b, b'\t' | b'\n') { b' ' } else { b })
            .collect();
        out.attributes.push(unescape_bytes(&spaced));
    }
}

fn unescape(t: &quick_xml::events::BytesText<'_>) -> Vec<u8> {
    unescape_bytes(&normalize_line_ends(t))
}

/// XML's end-of-line handling (2.11), which comes before parsing: CR LF and a lone CR are read
/// as LF. libxml2 does it, so ModSecurity's `XML:/*` never holds a CR (but from `&#13;`), and
/// a value ending in CR LF ends in a line feed, where a `$` pattern holds.
fn normalize_line_ends(raw: &[u8]) -> Cow<'_, [u8]> {
    if !raw.contains(&b'\r') {
        return Cow::Borrowed(raw);
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut bytes = raw.iter().peekable();
    while let Some(&b) = bytes.next() {
        if b == b'\r' {
            out.push(b'\n');
            bytes.next_if_eq(&&b'\n');
        } else {
            out.push(b);
        }
    }
    Cow::Owned(out)
}

/// Replaces the five predefined entities and numeric references; anything else is kept.
fn unescape_bytes(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut rest = raw;
    while let Some((&b, tail)) = rest.split_first() {
        if b == b'&' {
            let end = tail.iter().take(12).position(|&c| c == b';');
            if let Some((name, after)) =
                end.and_then(|e| Some((tail.get(..e)?, tail.get(e + 1..)?)))
            {
                let replaced = resolve(name);
                if !replaced.is_empty() {
                    out.extend_from_slice(&replaced);
                    rest = after;
                    continue;
                }
            }
        }
        out.push(b);
        rest = tail;
    }
    out
}

fn reference(r: &quick_xml::events::BytesRef<'_>) -> Vec<u8> {
    let name: &[u8] = r;
    let resolved = resolve(name);
    if resolved.is_empty() {
        let mut kept = Vec::with_capacity(name.len() + 2);
        kept.push(b'&');
        kept.extend_from_slice(name);
        kept.push(b';');
        kept
    } else {
        resolved
    }
}

/// The text of a predefined or numeric reference; empty when it is neither.
fn resolve(name: &[u8]) -> Vec<u8> {
    match name {
        b"lt" => b"<".to_vec(),
        b"gt" => b">".to_vec(),
        b"amp" => b"&".to_vec(),
        b"apos" => b"'".to_vec(),
        b"quot" => b"\"".to_vec(),
        [b'#', b'x' | b'X', hex @ ..] => number(hex, 16),
        [b'#', dec @ ..] => number(dec, 10),
        _ => Vec::new(),
    }
}

fn number(digits: &[u8], radix: u32) -> Vec<u8> {
    std::str::from_utf8(digits)
        .ok()
        .and_then(|d| u32::from_str_radix(d, radix).ok())
        .and_then(char::from_u32)
        // `&#0;` and the other control characters XML forbids stay as written.
        .filter(|&c| u32::from(c) >= 0x20 || matches!(c, '\t' | '\n' | '\r'))
        .map(|c| c.to_string().into_bytes())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::xml_values;

    #[test]
    fn text_and_attributes_of_a_soap_call() {
        let v = xml_values(
            br#"<?xml version="1.0"?><s:Envelope xmlns:s="urn:x"><s:Body><q id="a&amp;b">1 &lt; 2 &#x41; &xxe;</q></s:Body></s:Envelope>"#,
        );
        assert_eq!(v.text, b"1 < 2 A &xxe;");
        assert_eq!(v.attributes, [b"urn:x".to_vec(), b"a&b".to_vec()]);
        assert_eq!(v.error, None);
    }

    #[test]
    fn a_doctype_is_not_expanded_and_names_are_not_text() {
        let v = xml_values(
            b"<!DOCTYPE a [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]><ProcessBuilder k='v'>x</ProcessBuilder>",
        );
        assert_eq!(v.text, b"x");
        assert_eq!(v.attributes, [b"v".to_vec()]);
    }

    #[test]
    fn line_ends_are_read_as_line_feeds_and_attribute_whitespace_as_spaces() {
        let v = xml_values(b"<a b='1\r\n2\t3\r4&#10;5'>x\r\ny\rz&#13;<![CDATA[c\r\n]]></a>");
        assert_eq!(v.text, b"x\ny\nz\rc\n");
        assert_eq!(v.attributes, [b"1 2 3 4\n5".to_vec()]);
    }

    #[test]
    fn a_control_character_is_an_error_and_the_text_around_it_is_kept() {
        let v = xml_values(b"<a>x\0' or 1=1--</a>");
        assert!(v.error.is_some_and(|e| e.contains("0x00")));
        assert_eq!(v.text, b"x\0' or 1=1--");
    }

    #[test]
    fn a_reference_to_a_forbidden_character_stays_as_written() {
        let v = xml_values(b"<a>x&#0;y&#x1;z&#9;</a>");
        assert_eq!(v.text, b"x&#0;y&#x1;z\t");
    }

    #[test]
    fn comments_instructions_and_whitespace_may_surround_the_root() {
        let v = xml_values(
            b"<?xml version=\"1.0\"?>\r\n<!-- before -->\n<a>x</a>\r\n<!-- after --><?pi x?>\n",
        );
        assert_eq!(v.error, None);
        assert_eq!(v.text, b"x");
    }

    #[test]
    fn malformed_documents_are_reported_without_panicking() {
        for body in [
            &b""[..],
            b"<a>",
            b"<a></b>",
            b"not xml",
            b"<a x='1></a>",
            b"\xff\xfe<",
            b"<a>x</a><script>alert(1)</script>",
            b"<a/><b/>",
            b"<a>x</a>' or 1=1--",
            b"' or 1=1--<a>x</a>",
            b"<a>x</a>&amp;",
            b"<a>x</a><![CDATA[y]]>",
            b"<a>x\0</a>",
            b"<a b='\x01'/>",
        ] {
            let v = xml_values(body);
            assert!(v.error.is_some(), "{:?}", String::from_utf8_lossy(body));
        }
    }
}
