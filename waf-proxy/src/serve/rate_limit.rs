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
//! A reload keeps a limit's counts when its site keeps one of its host names and its `requests`
//! and `per_seconds` did not change.
//!
//! # A bound on memory
//!
//! The clients a limit remembers are the ones it saw within about `per_seconds`, and a client
//! can be anyone: an attacker holding an IPv6 /48 has 65,536 /64 networks to send from, and one
//! with a /32 four billion. With `requests: 1, per_seconds: 86400` every one of them would be
//! remembered for a day, about 70 bytes each. So a limit counts at most `max_clients` clients.
//! When it counts that many, a client it does not know is let through uncounted (and the
//! request goes on to the rules) until the sweep has forgotten enough clients. That keeps
//! memory bounded and fails open: the alternative, refusing every new client, would lock the
//! real users out of the sign-in page for as long as the attack lasts, which is what the
//! attacker wants. A flood from that many addresses was not going to be stopped by counting
//! per address anyway; the rules still inspect it. `waf_rate_limit_uncounted_total` counts
//! those requests, and the sweep logs a warning for each full limit.

use std::borrow::Cow;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use governor::clock::{Clock, DefaultClock};
use governor::nanos::Nanos;
use governor::state::keyed::{DashMapStateStore, ShrinkableKeyedStateStore};
use governor::state::StateStore;
use governor::{Quota, RateLimiter};
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
    limiter: Arc<RateLimiter<IpAddr, Clients, DefaultClock>>,
    /// The limiter's clients, shared with it.
    clients: Clients,
}

/// The clients a limiter counts: `governor`'s own concurrent map, shared between the limiter
/// (which owns its state store) and the [`RateLimit`] that bounds how many it holds.
///
/// `governor` has no bound of its own on a keyed limiter's size, and its map is behind the
/// limiter; this handle is the store the limiter is given, so both see the same map.
#[derive(Clone, Default)]
struct Clients(Arc<ClientsInner>);

#[derive(Default)]
struct ClientsInner {
    map: DashMapStateStore<IpAddr>,
    /// At most this many clients are counted.
    max: AtomicUsize,
    /// How many the map holds: its size at the last sweep, plus the clients added since.
    /// Counting here costs an atomic add per new client, where asking the map its size would
    /// lock each of its shards on every request.
    held: AtomicUsize,
}

impl Clients {
    fn new(max: usize) -> Clients {
        let clients = Clients::default();
        clients.0.max.store(max, Ordering::Relaxed);
        clients
    }

    /// Whether `key` may be counted: it is counted already, or there is room for it (which it
    /// then takes). Two threads may both take the last place: a limit can hold a client or
    /// two over its maximum, never more than the proxy's threads.
    fn admit(&self, key: &IpAddr) -> bool {
        let inner = &self.0;
        if inner.map.contains_key(key) {
            return true;
        }
        if inner.held.load(Ordering::Relaxed) >= inner.max.load(Ordering::Relaxed) {
            return false;
        }
        inner.held.fetch_add(1, Ordering::Relaxed);
        true
    }

    fn is_full(&self) -> bool {
        self.0.held.load(Ordering::Relaxed) >= self.0.max.load(Ordering::Relaxed)
    }
}

impl StateStore for Clients {
    type Key = IpAddr;

    fn measure_and_replace<T, F, E>(&self, key: &IpAddr, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        self.0.map.measure_and_replace(key, f)
    }
}

impl ShrinkableKeyedStateStore<IpAddr> for Clients {
    fn retain_recent(&self, drop_below: Nanos) {
        self.0.map.retain_recent(drop_below);
        self.0.held.store(self.0.map.len(), Ordering::Relaxed);
    }

    fn shrink_to_fit(&self) {
        self.0.map.shrink_to_fit();
    }

    fn len(&self) -> usize {
        self.0.map.len()
    }

    fn is_empty(&self) -> bool {
        self.0.map.is_empty()
    }
}

/// What one limit made of one request it applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    /// Counted, and within the limit.
    Within,
    /// Not counted: the limit counts `max_clients` clients already, and not this one.
    Full,
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
        let max_clients = usize::try_from(limit.max_clients).unwrap_or(usize::MAX);
        let (limiter, clients) = match previous {
            Some(p) if p.quota == quota => {
                // The counts are kept; the bound is the new config's.
                p.clients.0.max.store(max_clients, Ordering::Relaxed);
                (p.limiter.clone(), p.clients.clone())
            }
            _ => {
                let burst = NonZeroU32::new(limit.requests).context("requests: at least 1")?;
                let period = Duration::from_secs(limit.per_seconds) / limit.requests;
                let quota = Quota::with_period(period)
                    .context("per_seconds / requests: too short a period")?
                    .allow_burst(burst);
                let clients = Clients::new(max_clients);
                let limiter = RateLimiter::new(quota, clients.clone(), DefaultClock::default());
                (Arc::new(limiter), clients)
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
            clients,
        })
    }

    /// Whether the limit counts this request. `target` is the request-target as received; its
    /// path is matched as [`limited_path`] spells it, so `/SelfAssert%65d`, `/SelfAsserted/`
    /// and `/x/../SelfAsserted` count as `/SelfAsserted`.
    pub fn applies(&self, method: &http::Method, target: &[u8]) -> bool {
        if !self.methods.is_empty() && !self.methods.contains(method) {
            return false;
        }
        let Some(path_re) = &self.path else {
            return true;
        };
        path_re.is_match(&limited_path(target))
    }

    /// Counts one request of `client`; `Err` with the wait when it is over the limit (the
    /// request is then not counted).
    pub fn check(&self, client: IpAddr) -> Result<Counted, Duration> {
        let key = client_key(client);
        if !self.clients.admit(&key) {
            return Ok(Counted::Full);
        }
        self.limiter
            .check_key(&key)
            .map(|()| Counted::Within)
            .map_err(|not_until| not_until.wait_time_from(self.limiter.clock().now()))
    }

    /// Forgets the clients whose budget is full again; returns how many are still counted,
    /// and whether that is the limit's `max_clients`.
    pub fn sweep(&self) -> (usize, bool) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
        (self.limiter.len(), self.clients.is_full())
    }
}

/// The path of `target` a limit's `path` regex is matched against: up to `?`, percent-decoded
/// once, with `\` read as `/`, runs of `/` and `.` segments collapsed, `..` resolved, and a
/// trailing `/` dropped.
///
/// A limit exists to count every sign-in attempt of a client, and a client that wants more
/// attempts than that spells the path another way. The identity provider's server resolves
/// `/SelfAsserted/`, `/SelfAsserted/.` or `/b2c//x/../SelfAsserted` to the endpoint of
/// `/SelfAsserted` (ASP.NET routing, for one, ignores a trailing slash; servers resolve dot
/// segments before routing, and IIS reads `\` as `/`), while a regex anchored as the
/// documentation shows (`/selfasserted$`) missed every one of them: the attempts went
/// uncounted. Counting a path the server would not route there costs nothing.
fn limited_path(target: &[u8]) -> Vec<u8> {
    let end = path_end(target);
    let decoded: Cow<[u8]> = percent_encoding::percent_decode(&target[..end]).into();
    let mut path = waf_core::transform::Transform::NormalizePathWin
        .apply(&decoded)
        .into_owned();
    if path.len() > 1 && path.last() == Some(&b'/') {
        path.pop();
    }
    path
}

/// Checks the limits that apply to a request, in order; the first one exceeded is returned.
/// A request counts against every limit it applies to up to that one. `uncounted` hears of
/// each limit that was [full](Counted::Full) for this client.
pub fn check(
    limits: &[RateLimit],
    client: IpAddr,
    method: &http::Method,
    target: &[u8],
    mut uncounted: impl FnMut(&RateLimit),
) -> Option<Exceeded> {
    limits
        .iter()
        .filter(|l| l.applies(method, target))
        .find_map(|l| match l.check(client) {
            Ok(Counted::Within) => None,
            Ok(Counted::Full) => {
                uncounted(l);
                None
            }
            Err(wait) => Some(Exceeded {
                limit: l.name.clone(),
                retry_after: (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1),
            }),
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

    fn config(name: &str, requests: u32, per_seconds: u64) -> config::RateLimit {
        config::RateLimit {
            name: name.into(),
            methods: Vec::new(),
            path: None,
            requests,
            per_seconds,
            max_clients: config::RateLimit::DEFAULT_MAX_CLIENTS,
        }
    }

    fn limit(methods: &[&str], path: Option<&str>, requests: u32, per_seconds: u64) -> RateLimit {
        let config = config::RateLimit {
            methods: methods.iter().map(|m| m.to_string()).collect(),
            path: path.map(str::to_string),
            ..config("sign-in", requests, per_seconds)
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
        // Other spellings of the path the server resolves to the same endpoint.
        for other in [
            &b"/contoso/B2C_1_signin/SelfAsserted/"[..],
            b"/contoso/B2C_1_signin/SelfAsserted/.",
            b"/contoso/B2C_1_signin/SelfAsserted%2F?x=1",
            b"/contoso/B2C_1_signin/x/../SelfAsserted",
            b"/contoso/B2C_1_signin\\SelfAsserted",
            b"/contoso//B2C_1_signin/SelfAsserted//",
        ] {
            assert!(
                l.applies(&post, other),
                "{}",
                String::from_utf8_lossy(other)
            );
        }
        assert!(!l.applies(&post, b"/contoso/B2C_1_signin/SelfAsserted/x"));
        assert_eq!(limited_path(b"/"), b"/");
        assert_eq!(limited_path(b"/a/"), b"/a");
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
        let check = |method: &http::Method| check(&limits, client, method, b"/login", |_| ());
        assert_eq!(check(&post), None);
        let over = check(&post).unwrap();
        assert_eq!(over.limit, "sign-in");
        assert!((29..=30).contains(&over.retry_after), "{over:?}");
        assert_eq!(check(&http::Method::GET), None);
    }

    #[test]
    fn a_reload_keeps_the_counts_of_an_unchanged_limit() {
        let old = limit(&[], None, 1, 60);
        let client: IpAddr = "192.0.2.9".parse().unwrap();
        assert!(old.check(client).is_ok());
        let same = config("sign-in", 1, 60);
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
        assert_eq!(l.sweep(), (50, false));
        // 1000 a second: one request is earned back in a millisecond.
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(l.sweep(), (0, false));
    }

    #[test]
    fn a_full_limit_lets_new_clients_through_uncounted_until_the_sweep() {
        let config = config::RateLimit {
            max_clients: 2,
            ..config("sign-in", 1, 1)
        };
        let l = RateLimit::new(&config, None).unwrap();
        let (a, b, c) = (
            IpAddr::from([192, 0, 2, 1]),
            IpAddr::from([192, 0, 2, 2]),
            IpAddr::from([192, 0, 2, 3]),
        );
        assert_eq!(l.check(a), Ok(Counted::Within));
        assert_eq!(l.check(b), Ok(Counted::Within));
        // A third client finds the limit full: it is not counted, however often it comes.
        for _ in 0..5 {
            assert_eq!(l.check(c), Ok(Counted::Full));
        }
        // The clients it counts stay limited.
        assert!(l.check(a).is_err());
        let post = http::Method::POST;
        let mut full = Vec::new();
        let limits = [l];
        assert_eq!(
            check(&limits, c, &post, b"/", |l| full.push(l.name.clone())),
            None
        );
        assert_eq!(full, ["sign-in"]);
        assert_eq!(limits[0].sweep(), (2, true));
        // One a second: a and b have their budget back within a second; the sweep forgets a
        // client a period after that (governor's margin).
        std::thread::sleep(Duration::from_millis(2100));
        assert_eq!(limits[0].sweep(), (0, false));
        assert_eq!(limits[0].check(c), Ok(Counted::Within));
        assert!(limits[0].check(c).is_err(), "c is counted now");
    }

    #[test]
    fn a_reload_applies_a_new_max_clients_to_the_kept_counts() {
        let old = RateLimit::new(&config("sign-in", 1, 60), None).unwrap();
        assert!(old.check(IpAddr::from([192, 0, 2, 1])).is_ok());
        let smaller = config::RateLimit {
            max_clients: 1,
            ..config("sign-in", 1, 60)
        };
        let kept = RateLimit::new(&smaller, Some(&old)).unwrap();
        assert_eq!(kept.check(IpAddr::from([192, 0, 2, 2])), Ok(Counted::Full));
        assert!(kept.check(IpAddr::from([192, 0, 2, 1])).is_err());
    }
}
