//! The opaque values sign-in traffic carries: ids, PKCE values, MSAL `state`, JWTs, B2C's
//! `StateProperties`, CSRF tokens, cookies and SAML responses. Shapes and lengths follow what
//! External ID, B2C and MSAL send; the contents are random.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use rand::Rng;

const B64URL: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// `n` random base64url characters.
pub fn base64url<R: Rng>(rng: &mut R, n: usize) -> String {
    (0..n)
        .map(|_| char::from(B64URL[rng.gen_range(0..B64URL.len())]))
        .collect()
}

/// Between `lo` and `hi` (inclusive) random base64url characters.
pub fn base64url_between<R: Rng>(rng: &mut R, lo: usize, hi: usize) -> String {
    let n = rng.gen_range(lo..=hi);
    base64url(rng, n)
}

/// A version-4 UUID, lower case.
pub fn uuid<R: Rng>(rng: &mut R) -> String {
    let b: u128 = rng.gen();
    let b = (b & !(0xf << 76) | (0x4 << 76)) & !(0x3 << 62) | (0x2 << 62);
    let h = format!("{b:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// A PKCE verifier (43 to 128 characters) and its challenge-shaped counterpart (43).
pub fn pkce<R: Rng>(rng: &mut R) -> (String, String) {
    let n = rng.gen_range(43..=128);
    (base64url(rng, n), base64url(rng, 43))
}

/// An unsigned-looking JWT: a real base64url JSON header and payload, a random signature.
pub fn jwt<R: Rng>(rng: &mut R, issuer: &str, audience: &str) -> String {
    let header = format!(
        r#"{{"alg":"RS256","kid":"{}","typ":"JWT"}}"#,
        base64url(rng, 43)
    );
    let payload = format!(
        r#"{{"aud":"{audience}","iss":"{issuer}","iat":{t},"nbf":{t},"exp":{e},"nonce":"{n}","sub":"{s}","tid":"{tid}","ver":"2.0"}}"#,
        t = 1_716_000_000 + rng.gen_range(0..1_000_000),
        e = 1_716_003_600 + rng.gen_range(0..1_000_000),
        n = uuid(rng),
        s = base64url(rng, 43),
        tid = uuid(rng),
    );
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload),
        base64url(rng, 342)
    )
}

/// MSAL.js's `state`: base64url JSON, `|`, then the application's own state.
pub fn msal_state<R: Rng>(rng: &mut R, app_state: &str) -> String {
    let meta = format!(
        r#"{{"id":"{}","meta":{{"interactionType":"redirect"}}}}"#,
        uuid(rng)
    );
    format!("{}|{app_state}", URL_SAFE_NO_PAD.encode(meta))
}

/// B2C's `StateProperties=...` transaction id.
pub fn state_properties<R: Rng>(rng: &mut R) -> String {
    let json = format!(r#"{{"TID":"{}"}}"#, uuid(rng));
    format!(
        "StateProperties={}{}",
        URL_SAFE_NO_PAD.encode(json),
        base64url_between(rng, 40, 89)
    )
}

/// A CSRF token as B2C puts it in `X-CSRF-TOKEN` and the `x-ms-cpim-csrf` cookie.
pub fn csrf<R: Rng>(rng: &mut R) -> String {
    let n = rng.gen_range(60..90);
    format!("{}==", base64url(rng, n))
}

/// An OAuth authorization code (opaque, long, dotted like External ID's).
pub fn auth_code<R: Rng>(rng: &mut R) -> String {
    format!(
        "1.{}.{}",
        base64url_between(rng, 60, 119),
        base64url_between(rng, 200, 499)
    )
}

/// A base64 SAML response, as an IdP posts it to the assertion consumer service.
pub fn saml_response<R: Rng>(rng: &mut R, email: &str, acs: &str) -> String {
    let id = format!("_{}", uuid(rng));
    let xml = format!(
        r#"<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="{id}" Version="2.0" IssueInstant="2024-05-20T09:41:07.118Z" Destination="{acs}"><saml:Issuer xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion">https://sts.fabrikam.com/adfs/services/trust</saml:Issuer><samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status><saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_{a}" Version="2.0"><saml:Subject><saml:NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress">{email}</saml:NameID></saml:Subject><ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignatureValue>{sig}</ds:SignatureValue></ds:Signature></saml:Assertion></samlp:Response>"#,
        a = uuid(rng),
        sig = STANDARD.encode(base64url(rng, 256)),
    );
    STANDARD.encode(xml)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn shapes() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let u = uuid(&mut rng);
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        let t = jwt(&mut rng, "https://login.contoso.com/tid/v2.0", "app");
        assert_eq!(t.split('.').count(), 3);
        assert!(t.starts_with("eyJ"));
        let s = saml_response(&mut rng, "zoe@contoso.com", "https://x/acs");
        let xml = String::from_utf8(STANDARD.decode(s).unwrap()).unwrap();
        assert!(xml.contains("zoe@contoso.com"));
    }
}
