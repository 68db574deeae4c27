//! Random tokens through a ruleset: which rules match noise, and how often.
//!
//! A sign-in carries a dozen values drawn afresh for every user: `state`, `nonce`, PKCE
//! challenges, CSRF tokens, session cookies, device fingerprints, and whatever ids the
//! application behind the domain sets. A rule that matches one random token in 100,000 blocks
//! about one sign-in in 10,000, and no test of fixed requests will show it: the example that
//! matches is a different token for every user. The rules that do this are word lists and
//! short regexes made of letters and digits (`id_rsa`, `putenv`, four characters of base64),
//! and the only measure of them is to count, over many random tokens.
//!
//! [`TokenNoise`] builds requests that carry [`TOKENS_PER_REQUEST`] random tokens each, in the
//! places an application puts its own: query parameters, cookies, form fields and headers,
//! under names no exclusion knows, so every rule reads them. The tokens are base64url,
//! standard base64 and hex of 16 to 96 characters, UUIDs, and JWTs. It inspects the
//! requests with every rule evaluated (detection only) and reports, per rule, how many tokens
//! it matched, with examples. `waf rules tokens` prints this report; the ruleset's CI test
//! requires it to be empty.
//!
//! ```
//! use waf_core::RuleSet;
//! use waf_traffic::noise::TokenNoise;
//!
//! // `z` followed by a digit: about one random base64url character pair in 400.
//! let set = RuleSet::from_yaml_str(
//!     r#"
//! rules:
//!   - id: 1001
//!     message: z and a digit
//!     targets: [args, request_cookies, request_headers]
//!     match: {rx: 'z[0-9]'}
//!     severity: critical
//!   - id: 1002
//!     message: a word no token spells
//!     targets: [args]
//!     match: {contains: "<script"}
//!     severity: critical
//! "#,
//!     "noisy.yaml",
//! )
//! .unwrap();
//! let report = TokenNoise::new(7).requests(100).run(&set).unwrap();
//! assert_eq!(report.tokens, 3_200);
//! assert_eq!(report.rules.len(), 1);
//! assert_eq!(report.rules[0].rule_id, 1001);
//! assert!(report.rules[0].matches > 100);
//! ```

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use waf_core::rules::Mode;
use waf_core::{Request, RuleSet};

use crate::tokens;

/// How many random tokens each request carries: eight query parameters, eight cookies, eight
/// form fields and eight headers.
pub const TOKENS_PER_REQUEST: usize = 32;

/// The requests of [`TokenNoise::new`] when [`TokenNoise::requests`] is not called: 640,000
/// tokens, ten to twenty seconds with our ruleset or the CRS in a release build.
pub const DEFAULT_REQUESTS: usize = 20_000;

/// The seed of `waf rules tokens` and of the ruleset's CI test when none is given.
pub const DEFAULT_SEED: u64 = 0x7043_454e;

/// How many matches of a rule a report keeps as examples.
const EXAMPLES: usize = 3;

/// A measurement of which rules match random tokens; a builder.
///
/// The same seed gives the same tokens on every platform and release (ChaCha8).
///
/// ```
/// use waf_traffic::noise::TokenNoise;
///
/// let set = waf_core::RuleSet::from_yaml_str("rules: []", "empty.yaml").unwrap();
/// let report = TokenNoise::new(1).requests(10).run(&set).unwrap();
/// assert!(report.rules.is_empty());
/// assert_eq!(report.requests, 10);
/// ```
#[derive(Clone, Debug)]
pub struct TokenNoise {
    seed: u64,
    requests: usize,
}

impl TokenNoise {
    /// A measurement of [`DEFAULT_REQUESTS`] requests drawn from `seed`.
    pub fn new(seed: u64) -> TokenNoise {
        TokenNoise {
            seed,
            requests: DEFAULT_REQUESTS,
        }
    }

    /// How many requests to inspect, each with [`TOKENS_PER_REQUEST`] tokens.
    pub fn requests(mut self, requests: usize) -> TokenNoise {
        self.requests = requests;
        self
    }

    /// The requests this measurement inspects, in order.
    ///
    /// ```
    /// use waf_traffic::noise::TokenNoise;
    ///
    /// let first = TokenNoise::new(3).requests(2).probes().next().unwrap();
    /// assert_eq!(first.method(), b"POST");
    /// assert!(first.headers().get("x-noise-7").is_some());
    /// ```
    pub fn probes(&self) -> impl Iterator<Item = Request> {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        (0..self.requests).map(move |_| probe(&mut rng))
    }

    /// Inspects the requests with `set` at its own paranoia level, every rule evaluated
    /// whatever the set's mode, and reports the rules that matched a token. Values of
    /// transaction variables (`TX`, `MATCHED_VAR`...) are left out: a rule that matched only
    /// those, like the CRS's anomaly-score check, follows from the rules that matched tokens.
    ///
    /// The error is the ruleset's, when it does not compile.
    pub fn run(&self, set: &RuleSet) -> Result<NoiseReport, waf_core::Error> {
        let mut set = set.clone();
        // Every rule, however early another one would block; the tokens in the examples
        // unmasked, and cut at 200 bytes rather than 120 (a JWT is still cut).
        set.settings.mode = Mode::DetectOnly;
        set.settings.sensitive_names.clear();
        set.settings.max_logged_value = 200;
        let program = waf_core::compile(&set)?;
        let mut by_rule: BTreeMap<u32, NoisyRule> = BTreeMap::new();
        for request in self.probes() {
            for m in program.inspect(&request).matches {
                // Not the transaction's variables: see above.
                let values: Vec<_> = m
                    .values
                    .into_iter()
                    .filter(|v| !is_derived(&v.target))
                    .collect();
                if values.is_empty() {
                    continue;
                }
                let rule = by_rule.entry(m.rule_id).or_insert_with(|| NoisyRule {
                    rule_id: m.rule_id,
                    message: m.message.clone(),
                    matches: 0,
                    examples: Vec::new(),
                });
                for v in values {
                    rule.matches += 1;
                    if rule.examples.len() < EXAMPLES {
                        rule.examples.push(NoiseMatch {
                            target: v.target,
                            value: v.value,
                            evidence: v.evidence,
                        });
                    }
                }
            }
        }
        let mut rules: Vec<NoisyRule> = by_rule.into_values().collect();
        rules.sort_by(|a, b| b.matches.cmp(&a.matches).then(a.rule_id.cmp(&b.rule_id)));
        Ok(NoiseReport {
            seed: self.seed,
            requests: self.requests,
            tokens: (self.requests * TOKENS_PER_REQUEST) as u64,
            rules,
        })
    }
}

/// What [`TokenNoise::run`] found.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct NoiseReport {
    /// The seed the tokens were drawn from.
    pub seed: u64,
    /// The requests inspected.
    pub requests: usize,
    /// The tokens they carried.
    pub tokens: u64,
    /// The rules that matched a token, the noisiest first.
    pub rules: Vec<NoisyRule>,
}

/// A rule that matched random tokens.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct NoisyRule {
    /// The rule's id.
    pub rule_id: u32,
    /// The rule's message.
    pub message: String,
    /// How many values it matched: each a token, or a value holding tokens (a rule on
    /// `REQUEST_URI` reads all the query's at once). A verdict records at most eight values
    /// of a rule per request, so for a rule that matches most tokens this is a floor; the
    /// rules worth finding match one token in thousands, and there it is exact.
    pub matches: u64,
    /// The first few of them.
    pub examples: Vec<NoiseMatch>,
}

impl NoisyRule {
    /// One match in how many tokens.
    ///
    /// ```
    /// # use waf_traffic::noise::TokenNoise;
    /// # let set = waf_core::RuleSet::from_yaml_str(r#"
    /// # rules:
    /// #   - {id: 1, message: m, targets: [args], match: {contains: "a"}, severity: critical}
    /// # "#, "a.yaml").unwrap();
    /// let report = TokenNoise::new(1).requests(50).run(&set).unwrap();
    /// let rule = &report.rules[0];
    /// assert!(rule.one_in(report.tokens) < 10.0);
    /// ```
    pub fn one_in(&self, tokens: u64) -> f64 {
        if self.matches == 0 {
            f64::INFINITY
        } else {
            tokens as f64 / self.matches as f64
        }
    }
}

/// One value a rule matched.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct NoiseMatch {
    /// Where: `ARGS:q3`, `REQUEST_COOKIES:c5`, `REQUEST_HEADERS:X-Noise-2`...
    pub target: String,
    /// The value, as the verdict logs it.
    pub value: String,
    /// What the operator found in it.
    pub evidence: String,
}

/// Whether a matched value's target is the transaction's own state rather than the request's:
/// `TX:anomaly_score`, `MATCHED_VAR`, `MATCHED_VARS:...`.
fn is_derived(target: &str) -> bool {
    let collection = target.split(':').next().unwrap_or(target);
    [
        "TX",
        "MATCHED_VAR",
        "MATCHED_VARS",
        "MATCHED_VAR_NAME",
        "MATCHED_VARS_NAMES",
    ]
    .iter()
    .any(|c| collection.eq_ignore_ascii_case(c))
}

/// One random token of a common shape.
fn token(rng: &mut ChaCha8Rng) -> String {
    match rng.gen_range(0..6) {
        0 | 1 => tokens::base64url_between(rng, 16, 96),
        2 => {
            let mut bytes = vec![0u8; rng.gen_range(12..=72)];
            rng.fill(&mut bytes[..]);
            STANDARD.encode(bytes)
        }
        3 => {
            let mut bytes = vec![0u8; rng.gen_range(8..=48)];
            rng.fill(&mut bytes[..]);
            bytes.iter().map(|b| format!("{b:02x}")).collect()
        }
        4 => tokens::uuid(rng),
        _ => tokens::jwt(
            rng,
            "https://contoso.ciamlogin.com/contoso.onmicrosoft.com/v2.0",
            "6731de76-14a6-49ae-97bc-6eba6914391e",
        ),
    }
}

/// A token as a browser puts it in a query string or a form body: standard base64's `+`, `/`
/// and `=` percent-encoded (the rules' `url_decode_uni` would read a bare `+` as a space).
fn form_encoded(token: &str) -> String {
    token
        .replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D")
}

/// A form POST to a path of the application behind the sign-in domain, with 32 tokens.
fn probe(rng: &mut ChaCha8Rng) -> Request {
    let query: Vec<String> = (0..8)
        .map(|i| format!("q{i}={}", form_encoded(&token(rng))))
        .collect();
    let cookies: Vec<String> = (0..8).map(|i| format!("c{i}={}", token(rng))).collect();
    let body: Vec<String> = (0..8)
        .map(|i| format!("f{i}={}", form_encoded(&token(rng))))
        .collect();
    let body = body.join("&");
    let mut request = Request::builder()
        .method("POST")
        .uri(format!("/app/session?{}", query.join("&")))
        .header("Host", "login.contoso.com")
        .header(
            "User-Agent",
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) \
             Chrome/124.0.0.0 Safari/537.36",
        )
        .header("Accept", "text/html,application/xhtml+xml")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("Content-Length", body.len().to_string())
        .header("Cookie", cookies.join("; "));
    for i in 0..8 {
        request = request.header(format!("X-Noise-{i}"), token(rng));
    }
    request.body(body).build()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(yaml_match: &str) -> RuleSet {
        RuleSet::from_yaml_str(
            &format!(
                "rules:\n  - {{id: 7, message: m, targets: [args, request_cookies, request_headers], match: {yaml_match}, severity: critical}}\n"
            ),
            "t.yaml",
        )
        .expect("the test rule loads")
    }

    #[test]
    fn every_place_carries_eight_tokens_and_the_rules_read_them() {
        // One rule per place, matching anything: eight values each, in every request.
        let set = RuleSet::from_yaml_str(
            r#"
rules:
  - {id: 1, message: query, targets: [args_get], match: {rx: '.'}, severity: critical}
  - {id: 2, message: form, targets: [args_post], match: {rx: '.'}, severity: critical}
  - {id: 3, message: cookies, targets: [request_cookies], match: {rx: '.'}, severity: critical}
  - {id: 4, message: headers, targets: ['request_headers:/^x-noise-/'], match: {rx: '.'}, severity: critical}
"#,
            "t.yaml",
        )
        .expect("loads");
        let report = TokenNoise::new(11).requests(20).run(&set).expect("runs");
        assert_eq!(report.tokens, 20 * 32);
        let mut seen: Vec<(u32, u64)> = report
            .rules
            .iter()
            .map(|r| (r.rule_id, r.matches))
            .collect();
        seen.sort();
        assert_eq!(seen, [(1, 160), (2, 160), (3, 160), (4, 160)]);
    }

    #[test]
    fn a_quiet_rule_is_not_reported() {
        let report = TokenNoise::new(11)
            .requests(200)
            .run(&rule("{contains: '<script'}"))
            .expect("runs");
        assert!(report.rules.is_empty(), "{:?}", report.rules);
    }

    #[test]
    fn a_rule_that_blocks_does_not_hide_the_rules_after_it() {
        let set = RuleSet::from_yaml_str(
            r#"
rules:
  - {id: 1, message: first, targets: [args], match: {rx: '[0-9]'}, severity: critical, action: deny}
  - {id: 2, message: second, targets: [args], match: {rx: '[0-9]'}, severity: critical}
"#,
            "t.yaml",
        )
        .expect("loads");
        let report = TokenNoise::new(5).requests(10).run(&set).expect("runs");
        let ids: Vec<u32> = report.rules.iter().map(|r| r.rule_id).collect();
        assert!(ids.contains(&1) && ids.contains(&2), "{ids:?}");
    }

    #[test]
    fn a_rule_on_the_score_alone_is_not_a_token_match() {
        let set = RuleSet::from_yaml_str(
            r#"
rules:
  - {id: 1, message: digits, targets: [args], match: {rx: '[0-9]'}, action: pass, setvar: ['tx.hits=+1']}
  - {id: 2, message: score, targets: ['tx:hits'], match: {rx: '[1-9]'}, severity: critical}
"#,
            "t.yaml",
        )
        .expect("loads");
        let report = TokenNoise::new(5).requests(10).run(&set).expect("runs");
        let ids: Vec<u32> = report.rules.iter().map(|r| r.rule_id).collect();
        assert_eq!(ids, [1]);
        assert!(is_derived("TX:anomaly_score") && is_derived("MATCHED_VARS:ARGS:x"));
        assert!(!is_derived("ARGS:tx") && !is_derived("REQUEST_HEADERS:TX"));
    }

    #[test]
    fn the_same_seed_draws_the_same_requests() {
        let a: Vec<Request> = TokenNoise::new(9).requests(3).probes().collect();
        let b: Vec<Request> = TokenNoise::new(9).requests(3).probes().collect();
        let c: Vec<Request> = TokenNoise::new(10).requests(3).probes().collect();
        assert_eq!(a[2].uri(), b[2].uri());
        assert_eq!(a[2].body(), b[2].body());
        assert_ne!(a[2].uri(), c[2].uri());
    }

    #[test]
    fn rates_are_tokens_per_match() {
        let noisy = NoisyRule {
            rule_id: 1,
            message: String::new(),
            matches: 4,
            examples: Vec::new(),
        };
        assert_eq!(noisy.one_in(1_000), 250.0);
    }
}
