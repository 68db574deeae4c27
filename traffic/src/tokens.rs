//! The opaque values sign-in traffic carries: ids, PKCE values, MSAL `state`, JWTs, B2C's
//! `StateProperties`, CSRF tokens, cookies, SAML messages and WS-Federation token responses.
//! Shapes and lengths follow what External ID, B2C and MSAL send; the contents are random.

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

/// A confidential client's signed assertion, as MSAL makes it from a certificate: RS256 with
/// the certificate's SHA-1 thumbprint (`x5t`), or PS256 with its SHA-256 one (`x5t#S256`), and
/// the certificate chain (`x5c`) when the client sends it (subject name and issuer
/// authentication).
pub fn client_assertion<R: Rng>(rng: &mut R, client_id: &str, audience: &str) -> String {
    let mut header = if rng.gen_bool(0.5) {
        format!(
            r#"{{"alg":"RS256","typ":"JWT","x5t":"{}""#,
            base64url(rng, 27)
        )
    } else {
        format!(
            r#"{{"alg":"PS256","typ":"JWT","x5t#S256":"{}""#,
            base64url(rng, 43)
        )
    };
    if rng.gen_bool(0.3) {
        let chain = STANDARD.encode(base64url(rng, 900));
        header.push_str(&format!(r#","x5c":["{chain}"]"#));
    }
    header.push('}');
    let payload = format!(
        r#"{{"aud":"{audience}","iss":"{client_id}","sub":"{client_id}","jti":"{}","nbf":{t},"exp":{e}}}"#,
        uuid(rng),
        t = 1_716_000_000 + rng.gen_range(0..1_000_000),
        e = 1_716_000_600 + rng.gen_range(0..1_000_000),
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

/// A SAML `AuthnRequest` in the HTTP-Redirect binding, as an application sends its users to
/// the identity provider: the XML, raw DEFLATE, then base64 (the query encoding is the
/// caller's).
pub fn saml_redirect_request<R: Rng>(rng: &mut R, acs: &str, issuer: &str) -> String {
    let xml = format!(
        r#"<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_{id}" Version="2.0" IssueInstant="2024-05-20T09:{m}:07Z" Destination="https://login.contoso.com/contoso.onmicrosoft.com/B2C_1A_SAML/samlp/sso/login" AssertionConsumerServiceURL="{acs}" ProtocolBinding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"><saml:Issuer>{issuer}</saml:Issuer><samlp:NameIDPolicy Format="urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified" AllowCreate="true"/></samlp:AuthnRequest>"#,
        id = uuid(rng).replace('-', ""),
        m = rng.gen_range(10..60),
    );
    STANDARD.encode(miniz_oxide::deflate::compress_to_vec(xml.as_bytes(), 6))
}

/// The `Signature` of a signed redirect: base64 of an RSA-2048 signature (256 random bytes).
pub fn redirect_signature<R: Rng>(rng: &mut R) -> String {
    let mut signature = [0u8; 256];
    rng.fill(&mut signature[..]);
    STANDARD.encode(signature)
}

/// A WS-Federation token response (`wresult`), as an identity provider federated over WS-Fed
/// (AD FS) posts it: a WS-Trust envelope around one signed SAML 1.1 assertion, as XML text.
/// `display` is a person's name, escaped here as XML text.
pub fn ws_fed_response<R: Rng>(rng: &mut R, email: &str, display: &str) -> String {
    let escaped = display
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    let id = format!("_{}", uuid(rng).replace('-', ""));
    let minute = rng.gen_range(10..50);
    format!(
        r##"<t:RequestSecurityTokenResponse xmlns:t="http://schemas.xmlsoap.org/ws/2005/02/trust"><t:Lifetime><wsu:Created xmlns:wsu="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd">2024-05-20T09:{minute}:07.118Z</wsu:Created><wsu:Expires xmlns:wsu="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd">2024-05-20T10:{minute}:07.118Z</wsu:Expires></t:Lifetime><wsp:AppliesTo xmlns:wsp="http://schemas.xmlsoap.org/ws/2004/09/policy"><wsa:EndpointReference xmlns:wsa="http://www.w3.org/2005/08/addressing"><wsa:Address>urn:federation:MicrosoftOnline</wsa:Address></wsa:EndpointReference></wsp:AppliesTo><t:RequestedSecurityToken><saml:Assertion MajorVersion="1" MinorVersion="1" AssertionID="{id}" Issuer="http://sts.fabrikam.com/adfs/services/trust" IssueInstant="2024-05-20T09:{minute}:07.118Z" xmlns:saml="urn:oasis:names:tc:SAML:1.0:assertion"><saml:Conditions NotBefore="2024-05-20T09:{minute}:07.118Z" NotOnOrAfter="2024-05-20T10:{minute}:07.118Z"><saml:AudienceRestrictionCondition><saml:Audience>urn:federation:MicrosoftOnline</saml:Audience></saml:AudienceRestrictionCondition></saml:Conditions><saml:AttributeStatement><saml:Subject><saml:NameIdentifier Format="urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified">{email}</saml:NameIdentifier><saml:SubjectConfirmation><saml:ConfirmationMethod>urn:oasis:names:tc:SAML:1.0:cm:bearer</saml:ConfirmationMethod></saml:SubjectConfirmation></saml:Subject><saml:Attribute AttributeName="UPN" AttributeNamespace="http://schemas.xmlsoap.org/claims"><saml:AttributeValue>{email}</saml:AttributeValue></saml:Attribute><saml:Attribute AttributeName="displayname" AttributeNamespace="http://schemas.xmlsoap.org/claims"><saml:AttributeValue>{escaped}</saml:AttributeValue></saml:Attribute><saml:Attribute AttributeName="ImmutableID" AttributeNamespace="http://schemas.microsoft.com/LiveID/Federation/2008/05"><saml:AttributeValue>{immutable}</saml:AttributeValue></saml:Attribute></saml:AttributeStatement><saml:AuthenticationStatement AuthenticationMethod="urn:oasis:names:tc:SAML:1.0:am:password" AuthenticationInstant="2024-05-20T09:{minute}:05.000Z"><saml:Subject><saml:NameIdentifier Format="urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified">{email}</saml:NameIdentifier><saml:SubjectConfirmation><saml:ConfirmationMethod>urn:oasis:names:tc:SAML:1.0:cm:bearer</saml:ConfirmationMethod></saml:SubjectConfirmation></saml:Subject></saml:AuthenticationStatement><ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo><ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/><ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/><ds:Reference URI="#{id}"><ds:Transforms><ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/><ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></ds:Transforms><ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><ds:DigestValue>{digest}</ds:DigestValue></ds:Reference></ds:SignedInfo><ds:SignatureValue>{sig}</ds:SignatureValue><KeyInfo xmlns="http://www.w3.org/2000/09/xmldsig#"><X509Data><X509Certificate>{cert}</X509Certificate></X509Data></KeyInfo></ds:Signature></saml:Assertion></t:RequestedSecurityToken><t:TokenType>urn:oasis:names:tc:SAML:1.0:assertion</t:TokenType><t:RequestType>http://schemas.xmlsoap.org/ws/2005/02/trust/Issue</t:RequestType><t:KeyType>http://schemas.xmlsoap.org/ws/2005/05/identity/NoProofKey</t:KeyType></t:RequestSecurityTokenResponse>"##,
        immutable = STANDARD.encode(rng.gen::<[u8; 16]>()),
        digest = STANDARD.encode(rng.gen::<[u8; 32]>()),
        sig = STANDARD.encode(base64url(rng, 256)),
        cert = STANDARD.encode(base64url(rng, 540)),
    )
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
        let r = saml_redirect_request(
            &mut rng,
            "https://app.contoso.com/saml/acs",
            "https://app.contoso.com",
        );
        let deflated = STANDARD.decode(r).unwrap();
        let xml = miniz_oxide::inflate::decompress_to_vec(&deflated).unwrap();
        assert!(String::from_utf8(xml)
            .unwrap()
            .contains("AssertionConsumerServiceURL=\"https://app.contoso.com/saml/acs\""));
        assert_eq!(
            STANDARD.decode(redirect_signature(&mut rng)).unwrap().len(),
            256
        );
        let w = ws_fed_response(&mut rng, "zoe@contoso.com", "Zoë O'Brien & Sons <Sales>");
        assert!(w.contains("Zoë O'Brien &amp; Sons &lt;Sales&gt;"));
        assert_eq!(w.matches("<saml:Assertion ").count(), 1);
    }
}
