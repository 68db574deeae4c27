//! Per-client rate limits: a site's `rate_limits`, checked before its rules.
//!
//! Credential stuffing and password spraying send well-formed sign-in POSTs that no rule can
//! tell from a user's; their mark is the rate. Each limit counts the requests it applies to
//! (by method and path) per client address with the generic cell rate algorithm of the
//! `governor` crate: a client may send `requests` at once, then one more every
//! `per_seconds / requests` seconds. A request over the limit is answered 429 with
//! `Retry-After`, before its body is read or inspected, so a flood costs little.
//!
//! The client is the address the rules see (after `trusted_proxies`). IPv6 clients are counted
//! by their /64 network: one host commonly holds a whole /64, and counting single addresses
//! would give it 2^64 budgets.
//!
//! A limiter remembers every client it saw until that client's budget is full again; the
//! [`RateLimitSweeper`](super::background::RateLimitSweeper) forgets those every few seconds,
//! so memory follows the clients active over the last `per_seconds`, not all clients ever seen.
//! A reload keeps a limit's counts when its `requests` and `per_seconds` did not change.

use std::borrow::Cow;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use regex_automata::meta::Regex;

use crate::config;

/// One compiled `rate_limits` entry of a site.
pub struct RateLimit {
    /// The limit's name (metrics, audit log).
    pub name: String,
    methods: Vec<http::Method>,
    path: Option<Regex>,
    /// `(requests, per_seconds)`: a reload keeps the counts when these are unchanged.
    quota: (u32, u64),
    limiter: Arc<DefaultKeyedRateLimiter<IpAddr>>,
}

/// A request over a limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exceeded {
    /// The limit's name.
    pub limit: String,
    /// Whole seconds until the client may send again (at least 1), for `Retry-After`.
    pub retry_after: u64,
}

impl RateLimit {
    /// Compiles a validated limit, taking over the counts of `previous` (the same limit of the
    /// snapshot being replaced) when its quota is the same.
    pub fn new(limit: &config::RateLimit, previous: Option<&RateLimit>) -> anyhow::Result<Self> {
        let quota = (limit.requests, limit.per_seconds);
        let limiter = match previous {
            Some(p) if p.quota == quota => p.limiter.clone(),
            _ => {
                let burst = NonZeroU32::new(limit.requests).context("requests: at least 1")?;
                let period = Duration::from_secs(limit.per_seconds) / limit.requests;
                let quota = Quota::with_period(period)
                    .context("per_seconds / requests: too short a period")?
                    .allow_burst(burst);
                Arc::new(RateLimiter::keyed(quota))
            }
        };
        let methods = limit
            .methods
            .iter()
            .map(|m| http::Method::from_bytes(m.as_bytes()))
            .collect::<Result<_, _>>()
            .with_context(|| format!("rate limit `{}`: methods", limit.name))?;
        let path = match &limit.path {
            Some(p) => {
                Some(Regex::new(p).with_context(|| format!("rate limit `{}`: path", limit.name))?)
            }
            None => None,
        };
        Ok(RateLimit {
            name: limit.name.clone(),
            methods,
            path,
            quota,
            limiter,
        })
    }

    /// Whether the limit counts this request. `target` is the request-target as received; its
    /// path is matched percent-decoded, so `/SelfAssert%65d` counts as `/SelfAsserted`.
    pub fn applies(&self, method: &http::Method, target: &[u8]) -> bool {
        if !self.methods.is_empty() && !self.methods.contains(method) {
            return false;
        }
        let Some(path_re) = &self.path else {
            return true;
        };
        let end = path_end(target);
        let path: Cow<[u8]> = percent_encoding::percent_decode(&target[..end]).into();
        path_re.is_match(path.as_ref())
    }

    /// Counts one request of `client`; `Err` with the wait when it is over the limit (the
    /// request is then not counted).
    pub fn check(&self, client: IpAddr) -> Result<(), Duration> {
        self.limiter
            .check_key(&client_key(client))
            .map_err(|not_until| not_until.wait_time_from(self.limiter.clock().now()))
    }

    /// Forgets the clients whose budget is full again; returns how many are still counted.
    pub fn sweep(&self) -> usize {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
        self.limiter.len()
    }
}

/// Checks the limits that apply to a request, in order; the first one exceeded is returned.
/// A request counts against every limit it applies to up to that one.
pub fn check(
    limits: &[RateLimit],
    client: IpAddr,
    method: &http::Method,
    target: &[u8],
) -> Option<Exceeded> {
    limits
        .iter()
        .filter(|l| l.applies(method, target))
        .find_map(|l| {
            l.check(client).err().map(|wait| Exceeded {
                limit: l.name.clone(),
                retry_after: (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1),
            })
        })
}

/// The end of the path in a request-target: the first `?`, or the end.
fn path_end(target: &[u8]) -> usize {
    target
        .iter()
        .position(|&b| b == b'?')
        .unwrap_or(target.len())
}

/// The key a client is counted under: an IPv4 address as it is (also when mapped into IPv6),
/// an IPv6 address by its /64 network.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let network = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(network.into())
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(methods: &[&str], path: Option<&str>, requests: u32, per_seconds: u64) -> RateLimit {
        let config = config::RateLimit {
            name: "sign-in".into(),
            methods: methods.iter().map(|m| m.to_string()).collect(),
            path: path.map(str::to_string),
            requests,
            per_seconds,
        };
        RateLimit::new(&config, None).unwrap()
    }

    #[test]
    fn a_limit_applies_by_method_and_decoded_path() {
        let l = limit(&["POST"], Some("(?i)/selfasserted$"), 1, 60);
        let post = http::Method::POST;
        assert!(l.applies(
            &post,
            b"/contoso/B2C_1_signin/SelfAsserted?tx=1&p=B2C_1_signin"
        ));
        assert!(l.applies(&post, b"/contoso/B2C_1_signin/SelfAssert%65d"));
        assert!(!l.applies(&http::Method::GET, b"/contoso/B2C_1_signin/SelfAsserted"));
        assert!(!l.applies(&post, b"/contoso/oauth2/v2.0/token"));
        let any = limit(&[], None, 1, 60);
        assert!(any.applies(&http::Method::GET, b"/"));
    }

    #[test]
    fn a_client_gets_its_burst_then_waits() {
        let l = limit(&[], None, 3, 60);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        for _ in 0..3 {
            assert!(l.check(a).is_ok());
        }
        let wait = l.check(a).unwrap_err();
        // One request comes back every 60 / 3 = 20 s.
        assert!(
            wait > Duration::from_secs(19) && wait <= Duration::from_secs(20),
            "{wait:?}"
        );
        assert!(l.check(b).is_ok(), "another client has its own budget");
    }

    #[test]
    fn ipv6_clients_count_by_their_64() {
        let l = limit(&[], None, 1, 60);
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let same_64: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let other_64: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert!(l.check(a).is_ok());
        assert!(l.check(same_64).is_err());
        assert!(l.check(other_64).is_ok());
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(client_key(mapped), "192.0.2.7".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn the_first_limit_exceeded_is_reported_with_whole_seconds() {
        let limits = [limit(&["POST"], None, 1, 30), limit(&[], None, 100, 1)];
        let client: IpAddr = "198.51.100.4".parse().unwrap();
        let post = http::Method::POST;
        assert_eq!(check(&limits, client, &post, b"/login"), None);
        let over = check(&limits, client, &post, b"/login").unwrap();
        assert_eq!(over.limit, "sign-in");
        assert!((29..=30).contains(&over.retry_after), "{over:?}");
        assert_eq!(check(&limits, client, &http::Method::GET, b"/"), None);
    }

    #[test]
    fn a_reload_keeps_the_counts_of_an_unchanged_limit() {
        let old = limit(&[], None, 1, 60);
        let client: IpAddr = "192.0.2.9".parse().unwrap();
        assert!(old.check(client).is_ok());
        let same = config::RateLimit {
            name: "sign-in".into(),
            methods: Vec::new(),
            path: None,
            requests: 1,
            per_seconds: 60,
        };
        let kept = RateLimit::new(&same, Some(&old)).unwrap();
        assert!(kept.check(client).is_err());
        let changed = config::RateLimit {
            requests: 2,
            ..same
        };
        let fresh = RateLimit::new(&changed, Some(&old)).unwrap();
        assert!(fresh.check(client).is_ok());
    }

    #[test]
    fn a_sweep_forgets_clients_whose_budget_is_full_again() {
        let l = limit(&[], None, 1000, 1);
        for i in 0..50u8 {
            assert!(l.check(IpAddr::from([10, 0, 0, i])).is_ok());
        }
        assert_eq!(l.sweep(), 50);
        // 1000 a second: one request is earned back in a millisecond.
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(l.sweep(), 0);
    }
}
