//! Benign sign-in traffic for Microsoft Entra External ID and Azure AD B2C domains.
//!
//! A WAF in front of a sign-in domain is judged twice: by the attacks it stops and by the
//! users it does not stop. This crate answers the second question. [`SignInTraffic`] turns a
//! seed into an endless, reproducible stream of requests as browsers, MSAL and identity
//! providers send them to a custom sign-in domain (`login.contoso.com`):
//!
//! - authorize and logout redirects with every common OAuth/OIDC parameter;
//! - token requests (authorization code with PKCE, refresh token);
//! - the federated `authresp` form post (Google's; Apple's, with the `user` JSON of a first
//!   sign-in; an identity provider's error sent back) and SAML assertion-consumer posts;
//! - SAML requests in the redirect binding, signed (`SigAlg`, `Signature`) or not;
//! - WS-Federation sign-in requests (`wtrealm`, `wreply`, `whr`, `wauth`) and token responses
//!   (`wresult`: a signed SAML 1.1 assertion, as XML text);
//! - B2C `SelfAsserted` sign-in, sign-up and password reset, with real-world names (O'Brien,
//!   Ó Súilleabháin, Zoë, "Johnson & Sons"), international addresses, and passwords as
//!   password managers make them (every printable character);
//! - the `CombinedSigninAndSignup/confirmed` redirect with its `diags` JSON;
//! - native-authentication calls (`initiate`, `challenge`, `token`, sign-up with `attributes`
//!   JSON in a form field, password reset);
//! - discovery documents and keys;
//!
//! with browser or MSAL headers and B2C cookies. Nothing in it is an attack, however much a
//! password may look like one.
//!
//! ```
//! use waf_traffic::SignInTraffic;
//!
//! let requests: Vec<_> = SignInTraffic::new(7).take(100).collect();
//! assert_eq!(requests.len(), 100);
//! // The same seed gives the same requests.
//! let again: Vec<_> = SignInTraffic::new(7).take(100).collect();
//! assert_eq!(requests[42].request.uri(), again[42].request.uri());
//! ```
//!
//! [`noise::TokenNoise`] asks the question from the other side: not whole sign-ins, but the
//! random tokens they are full of, in places no exclusion knows, counted per rule.

#![forbid(unsafe_code)]

pub mod noise;
pub mod people;
pub mod tokens;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use waf_core::Request;

use people::Person;

/// Which sign-in flow a request belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Flow {
    Authorize,
    Logout,
    TokenCode,
    TokenRefresh,
    FederatedAuthResp,
    SamlAcs,
    SamlRedirect,
    WsFedSignIn,
    WsFedResponse,
    SelfAssertedSignIn,
    SelfAssertedSignUp,
    SelfAssertedPasswordReset,
    Confirmed,
    NativeInitiate,
    NativeChallenge,
    NativeToken,
    NativeSignUp,
    NativeResetPassword,
    Discovery,
}

impl Flow {
    /// Every flow, in the order the generator cycles through them.
    pub const ALL: [Flow; 19] = [
        Flow::Authorize,
        Flow::Logout,
        Flow::TokenCode,
        Flow::TokenRefresh,
        Flow::FederatedAuthResp,
        Flow::SamlAcs,
        Flow::SamlRedirect,
        Flow::WsFedSignIn,
        Flow::WsFedResponse,
        Flow::SelfAssertedSignIn,
        Flow::SelfAssertedSignUp,
        Flow::SelfAssertedPasswordReset,
        Flow::Confirmed,
        Flow::NativeInitiate,
        Flow::NativeChallenge,
        Flow::NativeToken,
        Flow::NativeSignUp,
        Flow::NativeResetPassword,
        Flow::Discovery,
    ];
}

/// One generated request and the flow it belongs to.
#[derive(Clone, Debug)]
pub struct Sample {
    pub flow: Flow,
    pub request: Request,
}

/// The stream of benign requests for one seed. Flows come round-robin, so any 19 consecutive
/// requests cover every flow.
pub struct SignInTraffic {
    rng: ChaCha8Rng,
    n: usize,
}

const HOST: &str = "login.contoso.com";
const CLIENT_IDS: &[&str] = &[
    "8f3c2a61-4d7e-4b5a-9c1e-2f6d8b7a0e93",
    "0b5e9d47-21c3-4f6a-8e0d-7a1c3b5f9e22",
];
const REDIRECTS: &[&str] = &[
    "https://app.contoso.com/auth/callback",
    "https://app.contoso.com/signin-oidc",
    "msauth.com.contoso.app://auth",
    "http://localhost:3000/",
    "https://contoso.github.io/spa/#/redirect",
];
const SCOPES: &[&str] = &[
    "openid profile offline_access",
    "openid offline_access https://contoso.onmicrosoft.com/api/orders.read",
    "openid email profile User.Read",
    "https://graph.microsoft.com/.default openid profile offline_access",
];
const WEBSITES: &[&str] = &[
    "https://zoe-obrien.example.ie/",
    "http://www.johnson-and-sons.example.com/about?lang=en",
    "https://github.com/seanosullivan",
    "www.example.org/~dagny",
];
const BIOS: &[&str] = &[
    "Hi! I'm Zoë.\nRole: product owner (EMEA)",
    "Loves SQL, C# & F#; chess club & union organiser -- ask me anything :)",
    "Prices in $USD (approx.) / 100% remote; see my site",
    "\"Coffee first\" -- then code. 5' 11\", O+ blood donor",
    "Bonjour ! J'habite à Saint-Étienne (42) & j'adore l'escalade.",
    "東京在住のエンジニアです。よろしくお願いします！",
];
/// What identity providers say when they send an error back to the federated callback.
const IDP_ERRORS: &[&str] = &[
    "AADSTS90072: User account 'zoe@contoso.com' from identity provider 'https://sts.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47/' does not exist in tenant 'Fabrikam' and cannot access the application '7c1c34b5-2a8e-4e0a-8f7f-3f7d2b1c9e10'(Contoso Portal) in that tenant. The account needs to be added as an external user in the tenant first. Sign out and sign in again with a different Azure Active Directory user account.",
    "AADSTS65001: The user or administrator has not consented to use the application with ID '7c1c34b5-2a8e-4e0a-8f7f-3f7d2b1c9e10' named 'Contoso Portal'. Send an interactive authorization request for this user and resource.",
    "AADSTS50105: Your administrator has configured the application Contoso Portal ('7c1c34b5-2a8e-4e0a-8f7f-3f7d2b1c9e10') to block users unless they are specifically granted ('assigned') access to the application. Trace ID: 0d9a6f3e-1b2c-4d5e-8f90-a1b2c3d4e5f6 Correlation ID: 9e8d7c6b-5a4f-4e3d-9c2b-1a0f9e8d7c6b Timestamp: 2024-05-20 09:41:07Z",
    "The user has denied access to the scope requested by the client application.",
    "Permissions error.",
    "User cancelled the login or did not fully authorize.",
];

const LOCALES: &[&str] = &[
    "en-US", "fr-FR", "ga-IE", "pt-BR", "ja-JP", "de-CH", "es-419",
];
const USER_AGENTS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.80",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.82 Mobile Safari/537.36",
];

impl SignInTraffic {
    /// The stream for `seed`.
    pub fn new(seed: u64) -> SignInTraffic {
        SignInTraffic {
            rng: ChaCha8Rng::seed_from_u64(seed),
            n: 0,
        }
    }
}

impl Iterator for SignInTraffic {
    type Item = Sample;

    fn next(&mut self) -> Option<Sample> {
        let flow = Flow::ALL[self.n % Flow::ALL.len()];
        self.n += 1;
        let request = build(flow, &mut self.rng);
        Some(Sample { flow, request })
    }
}

fn pick<'a, R: Rng>(rng: &mut R, list: &[&'a str]) -> &'a str {
    list.choose(rng).copied().unwrap_or_default()
}

/// `application/x-www-form-urlencoded` pairs.
fn form(pairs: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

/// A tenant path prefix: a name or a GUID, with or without a B2C policy.
fn tenant<R: Rng>(rng: &mut R, with_policy: bool) -> String {
    let tenant = match rng.gen_range(0..3) {
        0 => "contoso.onmicrosoft.com".to_string(),
        1 => tokens::uuid(rng),
        _ => "contoso".to_string(),
    };
    if with_policy {
        let policy = pick(
            rng,
            &[
                "B2C_1_signupsignin",
                "B2C_1A_signup_signin",
                "B2C_1A_PasswordReset",
            ],
        );
        format!("/{tenant}/{policy}")
    } else {
        format!("/{tenant}")
    }
}

/// A tenant path prefix, with a B2C policy half of the time.
fn tenant_maybe_policy<R: Rng>(rng: &mut R) -> String {
    let with_policy = rng.gen_bool(0.5);
    tenant(rng, with_policy)
}

/// The B2C cookies a browser carries on its second visit.
fn b2c_cookies<R: Rng>(rng: &mut R) -> String {
    let mut cookies = vec![
        format!(
            "x-ms-cpim-sso:contoso.onmicrosoft.com_0=m1.{}",
            tokens::base64url(rng, 48)
        ),
        format!("x-ms-cpim-csrf={}", tokens::csrf(rng)),
        format!("x-ms-cpim-trans={}", tokens::base64url(rng, 120)),
        "x-ms-cpim-dc=cpim-weu".to_string(),
        format!(
            "x-ms-cpim-rc.login.contoso.com={}",
            tokens::base64url(rng, 40)
        ),
    ];
    if rng.gen_bool(0.5) {
        cookies.push(format!(
            "ai_user={}|2024-05-20T09:41:07.118Z",
            tokens::base64url(rng, 5)
        ));
        cookies.push(format!(
            "ai_session={}|1716198067118|1716198067118",
            tokens::base64url(rng, 5)
        ));
    }
    cookies.shuffle(rng);
    cookies.truncate(rng.gen_range(1..=cookies.len()));
    cookies.join("; ")
}

/// A browser navigation or XHR: the headers Chromium, Firefox or Safari send.
fn browser<R: Rng>(
    rng: &mut R,
    b: waf_core::request::RequestBuilder,
    xhr: bool,
) -> waf_core::request::RequestBuilder {
    let ua = pick(rng, USER_AGENTS);
    let mut b = b
        .header("Host", HOST)
        .header("User-Agent", ua)
        .header(
            "Accept",
            if xhr {
                "application/json, text/javascript, */*; q=0.01"
            } else {
                "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"
            },
        )
        .header(
            "Accept-Language",
            pick(rng, &["en-US,en;q=0.9", "fr-FR,fr;q=0.9,en-US;q=0.8,en;q=0.7", "ga-IE,ga;q=0.9,en-IE;q=0.8", "ja,en-US;q=0.9,en;q=0.8"]),
        )
        .header("Accept-Encoding", "gzip, deflate, br, zstd");
    if ua.contains("Chrome") {
        b = b
            .header(
                "sec-ch-ua",
                r#""Chromium";v="124", "Google Chrome";v="124", "Not-A.Brand";v="99""#,
            )
            .header(
                "sec-ch-ua-mobile",
                if ua.contains("Mobile") { "?1" } else { "?0" },
            )
            .header("sec-ch-ua-platform", r#""Windows""#);
    }
    b = b
        .header(
            "Sec-Fetch-Site",
            if xhr { "same-origin" } else { "cross-site" },
        )
        .header("Sec-Fetch-Mode", if xhr { "cors" } else { "navigate" })
        .header("Sec-Fetch-Dest", if xhr { "empty" } else { "document" });
    if xhr {
        b = b
            .header("X-Requested-With", "XMLHttpRequest")
            .header("Origin", "https://login.contoso.com");
    }
    if rng.gen_bool(0.7) {
        b = b.header("Cookie", b2c_cookies(rng));
    }
    b
}

/// The headers MSAL libraries add to token and native-authentication calls.
fn msal<R: Rng>(
    rng: &mut R,
    b: waf_core::request::RequestBuilder,
) -> waf_core::request::RequestBuilder {
    let (sku, ver) = *[
        ("msal.js.browser", "3.13.0"),
        ("MSAL.Android", "5.2.0"),
        ("MSAL.iOS", "1.3.2"),
        ("MSAL.NetCore", "4.60.3.0"),
        ("MSAL.Python", "1.28.0"),
    ]
    .choose(rng)
    .unwrap_or(&("msal.js.browser", "3.13.0"));
    b.header("Host", HOST)
        .header("x-client-SKU", sku)
        .header("x-client-VER", ver)
        .header(
            "x-client-OS",
            pick(rng, &["Windows 10", "14", "17.4.1", "Linux"]),
        )
        .header("x-client-CPU", pick(rng, &["x64", "arm64"]))
        .header("x-client-current-telemetry", "5|863,0,,,|,")
        .header(
            "x-client-last-telemetry",
            pick(
                rng,
                &[
                    "5|0|||0,0",
                    "5|1|861,3c9b1e2f-8a27-4c5d-b6e1-7d92a4f05c38|invalid_grant|1,0",
                ],
            ),
        )
        .header("x-ms-lib-capability", "retry-after, h429")
        .header("client-request-id", tokens::uuid(rng))
        .header("return-client-request-id", "true")
        .header("Accept", "application/json")
}

/// A form POST as a browser sends it.
fn post_form(b: waf_core::request::RequestBuilder, body: String) -> Request {
    post(b, "application/x-www-form-urlencoded", body)
}

/// A form POST as MSAL sends it (with [`msal`]'s headers): one `Content-Type`, with a charset.
fn post_msal_form(b: waf_core::request::RequestBuilder, body: String) -> Request {
    post(b, "application/x-www-form-urlencoded;charset=utf-8", body)
}

fn post(b: waf_core::request::RequestBuilder, content_type: &str, body: String) -> Request {
    b.method("POST")
        .header("Content-Type", content_type)
        .header("Content-Length", body.len().to_string())
        .body(body)
        .build()
}

fn build<R: Rng>(flow: Flow, rng: &mut R) -> Request {
    let person = Person::random(rng);
    let client_id = pick(rng, CLIENT_IDS);
    let redirect = pick(rng, REDIRECTS);
    match flow {
        Flow::Authorize => {
            let (_, challenge) = tokens::pkce(rng);
            let page = rng.gen_range(1..9);
            // The application's own state follows MSAL's after `|`: a return path (with a
            // query, parentheses, an apostrophe, a fragment) or a small JSON object.
            let app_state = match rng.gen_range(0..4) {
                0 => format!("/orders?page={page}&tab=open"),
                1 => format!("/search?q=O'Brien&sort=date(desc)&page={page}#results"),
                2 => r#"{"returnTo":"/account/profile","theme":"dark"}"#.to_string(),
                _ => "/".to_string(),
            };
            let state = tokens::msal_state(rng, &app_state);
            let mut q = vec![
                ("client_id", client_id.to_string()),
                ("scope", pick(rng, SCOPES).to_string()),
                ("redirect_uri", redirect.to_string()),
                ("client-request-id", tokens::uuid(rng)),
                (
                    "response_mode",
                    pick(rng, &["fragment", "query", "form_post"]).to_string(),
                ),
                (
                    "response_type",
                    pick(rng, &["code", "id_token", "code id_token"]).to_string(),
                ),
                ("x-client-SKU", "msal.js.browser".into()),
                ("x-client-VER", "3.13.0".into()),
                ("client_info", "1".into()),
                ("code_challenge", challenge),
                ("code_challenge_method", "S256".into()),
                ("nonce", tokens::uuid(rng)),
                ("state", state),
            ];
            let optional = [
                ("prompt", pick(rng, &["login", "select_account", "consent", "none", "create"]).to_string()),
                ("login_hint", person.email.clone()),
                ("domain_hint", pick(rng, &["contoso.com", "facebook.com", "google.com"]).to_string()),
                ("ui_locales", pick(rng, LOCALES).to_string()),
                ("max_age", rng.gen_range(0..86_400).to_string()),
                ("claims", r#"{"id_token":{"acrs":{"essential":true,"value":"c1"}},"access_token":{"xms_cc":{"values":["cp1"]}}}"#.to_string()),
                ("sid", tokens::uuid(rng)),
                ("id_token_hint", tokens::jwt(rng, "https://login.contoso.com/tid/v2.0", client_id)),
            ];
            for (k, v) in optional {
                if rng.gen_bool(0.4) {
                    q.push((k, v));
                }
            }
            q.shuffle(rng);
            let pairs: Vec<(&str, &str)> = q.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let uri = format!(
                "{}/oauth2/v2.0/authorize?{}",
                tenant_maybe_policy(rng),
                form(&pairs)
            );
            browser(rng, Request::builder().uri(uri), false)
                .header("Referer", "https://app.contoso.com/")
                .build()
        }
        Flow::Logout => {
            let hint = tokens::jwt(rng, "https://login.contoso.com/tid/v2.0", client_id);
            let uri = format!(
                "{}/oauth2/v2.0/logout?{}",
                tenant_maybe_policy(rng),
                form(&[
                    (
                        "post_logout_redirect_uri",
                        pick(
                            rng,
                            &[
                                "https://app.contoso.com/signed-out?reason=user&next=%2F",
                                "https://app.contoso.com/",
                                "https://contoso.github.io/spa/#/signed-out",
                                "https://app.contoso.com/help/Sign-out_(FAQ)#after",
                            ]
                        )
                    ),
                    ("id_token_hint", &hint),
                    ("state", &tokens::base64url(rng, 32)),
                    ("client-request-id", &tokens::uuid(rng)),
                ])
            );
            browser(rng, Request::builder().uri(uri), false).build()
        }
        Flow::TokenCode => {
            let (verifier, _) = tokens::pkce(rng);
            // A confidential client authenticates with a signed assertion now and then.
            let assertion = rng.gen_bool(0.3).then(|| {
                tokens::client_assertion(rng, client_id, "https://login.contoso.com/contoso/v2.0")
            });
            let code = tokens::auth_code(rng);
            let request_id = tokens::uuid(rng);
            let anchor = format!("Oid:{}@{}", tokens::uuid(rng), tokens::uuid(rng));
            let mut pairs = vec![
                ("client_id", client_id),
                ("redirect_uri", redirect),
                ("scope", pick(rng, SCOPES)),
                ("code", &code),
                ("x-client-SKU", "msal.js.browser"),
                ("x-client-VER", "3.13.0"),
                ("x-ms-lib-capability", "retry-after, h429"),
                ("x-client-current-telemetry", "5|863,0,,,|,"),
                ("x-client-last-telemetry", "5|0|||0,0"),
                ("code_verifier", &verifier),
                ("grant_type", "authorization_code"),
                ("client_info", "1"),
                ("client-request-id", &request_id),
                ("X-AnchorMailbox", &anchor),
            ];
            if let Some(a) = assertion.as_deref() {
                pairs.push((
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ));
                pairs.push(("client_assertion", a));
            }
            let body = form(&pairs);
            let prefix = tenant_maybe_policy(rng);
            let b = msal(
                rng,
                Request::builder().uri(format!("{}/oauth2/v2.0/token", prefix)),
            );
            post_msal_form(b, body)
        }
        Flow::TokenRefresh => {
            let refresh = format!("0.{}", tokens::base64url_between(rng, 600, 1199));
            let mut pairs = vec![
                ("client_id", client_id.to_string()),
                ("scope", pick(rng, SCOPES).to_string()),
                ("grant_type", "refresh_token".into()),
                ("client_info", "1".into()),
                ("refresh_token", refresh),
            ];
            if rng.gen_bool(0.3) {
                pairs.push(("client_secret", people::secret(rng)));
            }
            let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let prefix = tenant_maybe_policy(rng);
            let b = msal(
                rng,
                Request::builder().uri(format!("{}/oauth2/v2.0/token", prefix)),
            );
            post_msal_form(b, form(&pairs))
        }
        Flow::FederatedAuthResp => {
            if rng.gen_bool(0.1) {
                // The identity provider sends an error back instead: the user cancelled, or
                // the provider refused them, with its own message.
                let pairs = [
                    (
                        "error",
                        pick(
                            rng,
                            &["access_denied", "invalid_request", "consent_required"],
                        ),
                    ),
                    ("error_description", pick(rng, IDP_ERRORS)),
                    (
                        "error_uri",
                        "https://login.microsoftonline.com/error?code=90072",
                    ),
                    ("state", &tokens::state_properties(rng)),
                ];
                let prefix = tenant(rng, false);
                let uri = format!("{prefix}/oauth2/authresp?{}", form(&pairs));
                return browser(rng, Request::builder().uri(uri), false).build();
            }
            // Apple posts, on a user's first sign-in, the name they gave as a `user` JSON
            // object beside the code and the id_token.
            let apple = rng.gen_bool(0.3);
            let (issuer, origin) = if apple {
                ("https://appleid.apple.com", "https://appleid.apple.com")
            } else {
                ("https://accounts.google.com", "https://accounts.google.com")
            };
            let mut pairs = vec![
                ("code", tokens::auth_code(rng)),
                ("id_token", tokens::jwt(rng, issuer, client_id)),
                ("state", tokens::state_properties(rng)),
            ];
            if apple {
                pairs.push((
                    "user",
                    format!(
                        r#"{{"name":{{"firstName":"{}","lastName":"{}"}},"email":"{}"}}"#,
                        json_escape(&person.given),
                        json_escape(&person.family),
                        json_escape(&person.email)
                    ),
                ));
            } else {
                pairs.push((
                    "session_state",
                    format!("{}.{}", tokens::uuid(rng), tokens::base64url(rng, 22)),
                ));
            }
            let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let prefix = tenant(rng, false);
            let b = browser(
                rng,
                Request::builder().uri(format!("{}/oauth2/authresp", prefix)),
                false,
            )
            .header("Origin", origin);
            post_form(b, form(&pairs))
        }
        Flow::SamlAcs => {
            let acs = format!(
                "https://{HOST}/contoso.onmicrosoft.com/B2C_1A_SAML/samlp/sso/assertionconsumer"
            );
            let body = form(&[
                (
                    "SAMLResponse",
                    &tokens::saml_response(rng, &person.email, &acs),
                ),
                (
                    "RelayState",
                    &format!(
                        "https://app.contoso.com/sso?returnUrl=%2Forders%2F{}",
                        rng.gen_range(1..9999)
                    ),
                ),
            ]);
            let b = browser(
                rng,
                Request::builder()
                    .uri("/contoso.onmicrosoft.com/B2C_1A_SAML/samlp/sso/assertionconsumer"),
                false,
            )
            .header("Origin", "https://sts.fabrikam.com");
            post_form(b, body)
        }
        Flow::SamlRedirect => {
            // An application that signs its requests (the redirect binding signs the query:
            // `SigAlg` and `Signature` beside the DEFLATEd request).
            let app = pick(
                rng,
                &[
                    "https://app.contoso.com",
                    "https://crm.contoso.com/saml2",
                    "urn:contoso:hr",
                ],
            );
            let acs = pick(
                rng,
                &[
                    "https://app.contoso.com/saml/acs",
                    "https://crm.contoso.com/saml2/sp/acs.php?sp=default",
                    "https://hr.contoso.com/Saml2/Acs",
                ],
            );
            let mut pairs = vec![
                ("SAMLRequest", tokens::saml_redirect_request(rng, acs, app)),
                (
                    "RelayState",
                    pick(
                        rng,
                        &[
                            "https://app.contoso.com/orders?tab=open",
                            "ss:mem:4b6e1f0c8f1a3f0e7b2d5c9a1e6f3d2b",
                            "/dashboard#team",
                        ],
                    )
                    .to_string(),
                ),
            ];
            if rng.gen_bool(0.8) {
                pairs.push((
                    "SigAlg",
                    pick(
                        rng,
                        &[
                            "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
                            "http://www.w3.org/2000/09/xmldsig#rsa-sha1",
                        ],
                    )
                    .to_string(),
                ));
                pairs.push(("Signature", tokens::redirect_signature(rng)));
            }
            let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let uri = format!(
                "/contoso.onmicrosoft.com/B2C_1A_SAML/samlp/sso/login?{}",
                form(&pairs)
            );
            browser(rng, Request::builder().uri(uri), false).build()
        }
        Flow::WsFedSignIn => {
            // An application that signs its users in over WS-Federation: the realm, the reply
            // address, its own context, and sometimes the home realm and the method wanted.
            let mut pairs = vec![
                ("wa", "wsignin1.0".to_string()),
                (
                    "wtrealm",
                    pick(rng, &["https://app.contoso.com/", "urn:contoso:intranet"]).to_string(),
                ),
                ("wreply", redirect.to_string()),
                (
                    "wctx",
                    format!(
                        "rm=0&id=passive&ru=%2forders%2f{}%3ftab%3dopen",
                        rng.gen_range(1..9999)
                    ),
                ),
                (
                    "wct",
                    format!("2024-05-20T09:{:02}:07Z", rng.gen_range(0..60)),
                ),
            ];
            if rng.gen_bool(0.5) {
                pairs.push((
                    "whr",
                    "https://sts.fabrikam.com/adfs/services/trust".to_string(),
                ));
            }
            if rng.gen_bool(0.3) {
                pairs.push((
                    "wauth",
                    pick(
                        rng,
                        &[
                            "http://schemas.microsoft.com/ws/2008/06/identity/authenticationmethod/password",
                            "urn:oasis:names:tc:SAML:1.0:am:password",
                        ],
                    )
                    .to_string(),
                ));
            }
            let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let uri = format!("{}/wsfed?{}", tenant(rng, false), form(&pairs));
            browser(rng, Request::builder().uri(uri), false).build()
        }
        Flow::WsFedResponse => {
            // An identity provider federated over WS-Federation posts its token response to the
            // tenant; the rules read the arguments, whatever the path.
            let prefix = tenant(rng, false);
            let body = form(&[
                ("wa", "wsignin1.0"),
                (
                    "wresult",
                    &tokens::ws_fed_response(rng, &person.email, &person.display),
                ),
                (
                    "wctx",
                    &format!(
                        "LoginOptions=3&estsredirect=2&estsrequest={}",
                        tokens::base64url_between(rng, 300, 900)
                    ),
                ),
            ]);
            let b = browser(
                rng,
                Request::builder().uri(format!("{prefix}/login.srf")),
                false,
            )
            .header("Origin", "https://sts.fabrikam.com");
            post_form(b, body)
        }
        Flow::SelfAssertedSignIn | Flow::SelfAssertedSignUp | Flow::SelfAssertedPasswordReset => {
            let prefix = tenant(rng, true);
            let policy = prefix
                .rsplit('/')
                .next()
                .unwrap_or("B2C_1A_signup_signin")
                .to_string();
            let uri = format!(
                "{prefix}/SelfAsserted?tx={}&p={policy}",
                tokens::state_properties(rng)
            );
            let mut pairs: Vec<(&str, String)> = vec![("request_type", "RESPONSE".into())];
            match flow {
                Flow::SelfAssertedSignIn => {
                    let name_field = pick(rng, &["signInName", "email", "logonIdentifier"]);
                    pairs.push((name_field, person.email.clone()));
                    pairs.push(("password", person.password.clone()));
                    if rng.gen_bool(0.3) {
                        pairs.push(("rememberMe", "true".into()));
                    }
                }
                Flow::SelfAssertedSignUp => {
                    pairs.extend([
                        ("email", person.email.clone()),
                        ("newPassword", person.password.clone()),
                        ("reenterPassword", person.password.clone()),
                        ("displayName", person.display.clone()),
                        ("givenName", person.given.clone()),
                        ("surname", person.family.clone()),
                        ("extension_CompanyName", person.company.clone()),
                        ("streetAddress", person.street.clone()),
                        ("city", person.city.clone()),
                        ("postalCode", person.postal.clone()),
                        ("country", person.country.clone()),
                        ("extension_PhoneNumber", person.phone.clone()),
                        ("extension_agreedToTerms", "true".into()),
                    ]);
                    // Custom attributes a tenant adds to its sign-up page: a website and a
                    // free-text bio, typed by people.
                    if rng.gen_bool(0.3) {
                        pairs.push(("extension_Website", pick(rng, WEBSITES).to_string()));
                    }
                    if rng.gen_bool(0.3) {
                        pairs.push(("extension_Bio", pick(rng, BIOS).to_string()));
                    }
                }
                _ => {
                    pairs.extend([
                        ("email", person.email.clone()),
                        ("newPassword", person.password.clone()),
                        ("reenterPassword", person.password.clone()),
                    ]);
                }
            }
            let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let b = browser(rng, Request::builder().uri(uri), true)
                .header("X-CSRF-TOKEN", tokens::csrf(rng))
                .header(
                    "Referer",
                    format!("https://{HOST}{prefix}/oauth2/v2.0/authorize?client_id={client_id}"),
                );
            post_form(b, form(&pairs))
        }
        Flow::Confirmed => {
            let prefix = tenant(rng, true);
            let diags = format!(
                r#"{{"pageViewId":"{}","pageId":"CombinedSigninAndSignup","trace":[{{"ac":"T005","acST":{t},"acD":7}},{{"ac":"T021 - URL:https://contoso.b2clogin.com/static/unified.html","acST":{t},"acD":112}},{{"ac":"T019","acST":{t},"acD":9}},{{"ac":"T004","acST":{t},"acD":2}},{{"ac":"T003","acST":{t},"acD":1}},{{"ac":"T035","acST":{t},"acD":0}},{{"ac":"T030Online","acST":{t},"acD":0}},{{"ac":"T002","acST":{t},"acD":0}}]}}"#,
                tokens::uuid(rng),
                t = 1_716_198_067 + rng.gen_range(0..100_000),
            );
            let uri = format!(
                "{prefix}/api/CombinedSigninAndSignup/confirmed?{}",
                form(&[
                    ("rememberMe", "false"),
                    ("csrf_token", &tokens::csrf(rng)),
                    ("tx", &tokens::state_properties(rng)),
                    (
                        "p",
                        prefix.rsplit('/').next().unwrap_or("B2C_1A_signup_signin")
                    ),
                    ("diags", &diags),
                ])
            );
            browser(rng, Request::builder().uri(uri), false).build()
        }
        Flow::NativeInitiate | Flow::NativeChallenge | Flow::NativeToken => {
            let continuation = format!("uY29{}", tokens::base64url_between(rng, 200, 599));
            let (path, pairs): (&str, Vec<(&str, String)>) = match flow {
                Flow::NativeInitiate => (
                    "oauth2/v2.0/initiate",
                    vec![
                        ("client_id", client_id.into()),
                        ("challenge_type", "password oob redirect".into()),
                        ("username", person.email.clone()),
                    ],
                ),
                Flow::NativeChallenge => (
                    "oauth2/v2.0/challenge",
                    vec![
                        ("client_id", client_id.into()),
                        ("challenge_type", "password oob redirect".into()),
                        ("continuation_token", continuation),
                    ],
                ),
                _ => {
                    let mut p = vec![
                        ("client_id", client_id.to_string()),
                        ("continuation_token", continuation),
                        ("scope", pick(rng, SCOPES).to_string()),
                    ];
                    if rng.gen_bool(0.5) {
                        p.push(("grant_type", "password".into()));
                        p.push(("password", person.password.clone()));
                    } else {
                        p.push(("grant_type", "oob".into()));
                        p.push(("oob", format!("{:08}", rng.gen_range(0..100_000_000))));
                    }
                    ("oauth2/v2.0/token", p)
                }
            };
            let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let prefix = tenant(rng, false);
            let b = msal(rng, Request::builder().uri(format!("{}/{path}", prefix)));
            post_msal_form(b, form(&pairs))
        }
        Flow::NativeSignUp => {
            // `attributes` is a JSON object inside a form field.
            let attributes = format!(
                r#"{{"displayName":"{}","givenName":"{}","surname":"{}","city":"{}","streetAddress":"{}","extension_Company":"{}"}}"#,
                json_escape(&person.display),
                json_escape(&person.given),
                json_escape(&person.family),
                json_escape(&person.city),
                json_escape(&person.street),
                json_escape(&person.company),
            );
            let body = form(&[
                ("client_id", client_id),
                ("challenge_type", "password oob redirect"),
                ("username", &person.email),
                ("password", &person.password),
                ("attributes", &attributes),
            ]);
            let prefix = tenant(rng, false);
            let b = msal(
                rng,
                Request::builder().uri(format!("{}/signup/v1.0/start", prefix)),
            );
            post_msal_form(b, body)
        }
        Flow::NativeResetPassword => {
            let step = pick(
                rng,
                &[
                    "start",
                    "challenge",
                    "continue",
                    "submit",
                    "poll_completion",
                ],
            );
            let mut pairs = vec![("client_id", client_id.to_string())];
            match step {
                "start" => pairs.push(("username", person.email.clone())),
                "submit" => {
                    pairs.push(("continuation_token", tokens::base64url(rng, 300)));
                    pairs.push(("new_password", person.password.clone()));
                }
                _ => {
                    pairs.push(("continuation_token", tokens::base64url(rng, 300)));
                    pairs.push(("challenge_type", "oob redirect".into()));
                }
            }
            let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let prefix = tenant(rng, false);
            let b = msal(
                rng,
                Request::builder().uri(format!("{}/resetpassword/v1.0/{step}", prefix)),
            );
            post_msal_form(b, form(&pairs))
        }
        Flow::Discovery => {
            let prefix = tenant_maybe_policy(rng);
            let path = pick(
                rng,
                &[
                    "v2.0/.well-known/openid-configuration",
                    "discovery/v2.0/keys",
                    "samlp/metadata?idptype=SP",
                ],
            );
            let b = Request::builder()
                .uri(format!("{prefix}/{path}"))
                .header("Host", HOST)
                .header("Accept", "application/json");
            // Libraries and monitoring fetch these: automated by design.
            let ua = pick(
                rng,
                &[
                    "MSAL.NetCore/4.60.3.0",
                    "python-requests/2.31.0",
                    "curl/8.5.0",
                    "Go-http-client/2.0",
                    "okhttp/4.12.0",
                ],
            );
            b.header("User-Agent", ua).build()
        }
    }
}

fn json_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// MSAL's headers carried a `Content-Type` of their own, and every MSAL form POST got a
    /// second one (the CRS's 920620 blocked them all; ours has no such rule).
    #[test]
    fn msal_posts_carry_one_content_type() {
        for sample in SignInTraffic::new(1).take(2_000) {
            let types = sample.request.headers().get_all("content-type").count();
            let is_post = sample.request.method() == b"POST";
            assert_eq!(
                types,
                usize::from(is_post),
                "{:?}: {} Content-Type headers",
                sample.flow,
                types
            );
        }
    }
}
