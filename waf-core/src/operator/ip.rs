//! `@ipMatch`: is an address inside a list of networks?
//!
//! The argument of `@ipMatch` is a list of IPv4 and IPv6 addresses and CIDR blocks, separated
//! by commas or spaces: `"10.0.0.0/8, 192.168.1.7 2001:db8::/32"`. A bare address is a network
//! of one (`/32` or `/128`). [`IpSet`] parses the list once, when the rule is loaded, into
//! sorted, merged intervals, so a lookup is a binary search however long the list is.
//!
//! IPv4 addresses and their IPv4-mapped IPv6 form (`::ffff:10.0.0.1`, which is how a dual-stack
//! socket reports an IPv4 client) are the same address here: each matches entries written in
//! either form.
//!
//! ```
//! use std::net::IpAddr;
//! use waf_core::operator::ip::IpSet;
//!
//! let internal = IpSet::parse("10.0.0.0/8, 192.168.0.0/16 fd00::/8").unwrap();
//! assert!(internal.contains("10.1.2.3".parse::<IpAddr>().unwrap()));
//! assert!(internal.contains_text(b"::ffff:192.168.4.4"));
//! assert!(!internal.contains_text(b"8.8.8.8"));
//! assert!(!internal.contains_text(b"not an address"));
//! ```

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// A set of IP networks, built from an `@ipMatch` argument.
///
/// ```
/// use waf_core::operator::ip::IpSet;
///
/// let set = IpSet::parse("127.0.0.1 ::1").unwrap();
/// assert!(set.contains_text(b"127.0.0.1"));
/// assert!(set.contains_text(b"::1"));
/// assert!(!set.contains_text(b"127.0.0.2"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IpSet {
    /// Inclusive, sorted, non-overlapping, non-adjacent intervals.
    v4: Vec<(u32, u32)>,
    v6: Vec<(u128, u128)>,
}

impl IpSet {
    /// Parses a comma- and/or space-separated list of addresses and CIDR blocks.
    ///
    /// Host bits in a block are ignored (`10.1.2.3/8` is `10.0.0.0/8`), as ModSecurity does.
    /// An empty list, or any entry that is not an address or a block with a valid prefix
    /// length, is an error naming that entry.
    ///
    /// ```
    /// use waf_core::operator::ip::IpSet;
    ///
    /// assert!(IpSet::parse("192.168.0.0/24,10.0.0.1").is_ok());
    /// let err = IpSet::parse("10.0.0.0/33").unwrap_err();
    /// assert_eq!(err.to_string(), "invalid @ipMatch entry `10.0.0.0/33`: not a CIDR block");
    /// assert!(IpSet::parse("").is_err());
    /// ```
    pub fn parse(list: &str) -> Result<IpSet, IpSetError> {
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for entry in list
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|entry| !entry.is_empty())
        {
            let net = if entry.contains('/') {
                entry
                    .parse::<IpNet>()
                    .map_err(|_| IpSetError::new(entry, Problem::Block))?
            } else {
                entry
                    .parse::<IpAddr>()
                    .map(IpNet::from)
                    .map_err(|_| IpSetError::new(entry, Problem::Address))?
            };
            match net {
                IpNet::V4(net) => v4.push(interval_v4(net)),
                IpNet::V6(net) => v6.push(interval_v6(net)),
            }
        }
        if v4.is_empty() && v6.is_empty() {
            return Err(IpSetError::new(list, Problem::Empty));
        }
        Ok(IpSet {
            v4: merge(v4),
            v6: merge(v6),
        })
    }

    /// Whether `addr` is inside one of the networks.
    ///
    /// An IPv4 address also matches IPv6 entries that cover its mapped form, and an
    /// IPv4-mapped IPv6 address also matches IPv4 entries.
    ///
    /// ```
    /// use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    /// use waf_core::operator::ip::IpSet;
    ///
    /// let set = IpSet::parse("10.0.0.0/8").unwrap();
    /// assert!(set.contains(IpAddr::V4(Ipv4Addr::new(10, 9, 8, 7))));
    /// let mapped = Ipv4Addr::new(10, 0, 0, 1).to_ipv6_mapped();
    /// assert!(set.contains(IpAddr::V6(mapped)));
    /// assert!(!set.contains(IpAddr::V6(Ipv6Addr::LOCALHOST)));
    /// ```
    pub fn contains(&self, addr: IpAddr) -> bool {
        match addr {
            IpAddr::V4(v4) => self.contains_v4(v4) || self.contains_v6(v4.to_ipv6_mapped()),
            IpAddr::V6(v6) => {
                self.contains_v6(v6) || v6.to_ipv4_mapped().is_some_and(|v4| self.contains_v4(v4))
            }
        }
    }

    /// Parses `text` as an IPv4 or IPv6 address and checks it; anything that is not exactly
    /// an address (surrounding spaces, a port, brackets, a zone, a list) does not match.
    ///
    /// ```
    /// use waf_core::operator::ip::IpSet;
    ///
    /// let set = IpSet::parse("2001:db8::/32").unwrap();
    /// assert!(set.contains_text(b"2001:db8::42"));
    /// assert!(!set.contains_text(b"[2001:db8::42]:443"));
    /// assert!(!set.contains_text(b"\xff"));
    /// ```
    pub fn contains_text(&self, text: &[u8]) -> bool {
        // The longest address text is an IPv6 address with an embedded IPv4 one,
        // `ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255`: do not scan a long body as one.
        const LONGEST: usize = 45;
        if text.len() > LONGEST {
            return false;
        }
        std::str::from_utf8(text)
            .ok()
            .and_then(|text| text.parse::<IpAddr>().ok())
            .is_some_and(|addr| self.contains(addr))
    }

    fn contains_v4(&self, addr: Ipv4Addr) -> bool {
        lookup(&self.v4, u32::from(addr))
    }

    fn contains_v6(&self, addr: Ipv6Addr) -> bool {
        lookup(&self.v6, u128::from(addr))
    }
}

impl FromStr for IpSet {
    type Err = IpSetError;

    fn from_str(list: &str) -> Result<Self, Self::Err> {
        IpSet::parse(list)
    }
}

fn interval_v4(net: Ipv4Net) -> (u32, u32) {
    (u32::from(net.network()), u32::from(net.broadcast()))
}

fn interval_v6(net: Ipv6Net) -> (u128, u128) {
    (u128::from(net.network()), u128::from(net.broadcast()))
}

/// Sorts intervals and merges the ones that overlap or touch.
fn merge<T: Ord + Copy + Successor>(mut intervals: Vec<(T, T)>) -> Vec<(T, T)> {
    intervals.sort_unstable();
    let mut merged: Vec<(T, T)> = Vec::with_capacity(intervals.len());
    for (start, end) in intervals {
        match merged.last_mut() {
            Some(last) if last.1.successor().is_none_or(|next| start <= next) => {
                last.1 = last.1.max(end);
            }
            _ => merged.push((start, end)),
        }
    }
    merged
}

/// Whether `value` falls in one of the sorted, disjoint intervals.
fn lookup<T: Ord + Copy>(intervals: &[(T, T)], value: T) -> bool {
    // The candidate is the last interval starting at or before `value`.
    let after = intervals.partition_point(|&(start, _)| start <= value);
    after
        .checked_sub(1)
        .and_then(|i| intervals.get(i))
        .is_some_and(|&(_, end)| value <= end)
}

/// `x + 1` without overflow, for merging adjacent intervals.
trait Successor: Sized {
    fn successor(self) -> Option<Self>;
}

impl Successor for u32 {
    fn successor(self) -> Option<Self> {
        self.checked_add(1)
    }
}

impl Successor for u128 {
    fn successor(self) -> Option<Self> {
        self.checked_add(1)
    }
}

/// Why an `@ipMatch` argument was rejected.
///
/// ```
/// use waf_core::operator::ip::IpSet;
///
/// let err = IpSet::parse("10.0.0.1, 10.0.0.256").unwrap_err();
/// assert_eq!(err.to_string(), "invalid @ipMatch entry `10.0.0.256`: not an IP address");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IpSetError {
    entry: String,
    problem: Problem,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Problem {
    Empty,
    Address,
    Block,
}

impl IpSetError {
    fn new(entry: &str, problem: Problem) -> IpSetError {
        IpSetError {
            entry: entry.to_owned(),
            problem,
        }
    }
}

impl fmt::Display for IpSetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.problem {
            Problem::Empty => write!(f, "empty @ipMatch list `{}`", self.entry),
            Problem::Address => {
                write!(
                    f,
                    "invalid @ipMatch entry `{}`: not an IP address",
                    self.entry
                )
            }
            Problem::Block => write!(
                f,
                "invalid @ipMatch entry `{}`: not a CIDR block",
                self.entry
            ),
        }
    }
}

impl std::error::Error for IpSetError {}

#[cfg(test)]
mod tests {
    use super::IpSet;
    use crate::test_data::unescape;
    use proptest::prelude::*;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    const CASES: &str = include_str!("../../tests/data/ip_match.tsv");

    #[test]
    fn ip_match_table() {
        let mut failures = Vec::new();
        for (index, line) in CASES.lines().enumerate() {
            let at = format!("tests/data/ip_match.tsv:{}", index + 1);
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            match line.split('\t').collect::<Vec<_>>().as_slice() {
                ["match", list, address, want] => {
                    let (set, address) = match (IpSet::parse(list), unescape(address)) {
                        (Ok(set), Ok(address)) => (set, address),
                        (Err(e), _) => {
                            failures.push(format!("{at}: {e}"));
                            continue;
                        }
                        (_, Err(e)) => {
                            failures.push(format!("{at}: {e}"));
                            continue;
                        }
                    };
                    let got = if set.contains_text(&address) {
                        "1"
                    } else {
                        "0"
                    };
                    if got != *want {
                        let shown = String::from_utf8_lossy(&address);
                        failures.push(format!(
                            "{at}: {shown:?} in {list:?}: expected {want}, got {got}"
                        ));
                    }
                }
                ["error", list, message] => match IpSet::parse(list) {
                    Ok(set) => failures.push(format!(
                        "{at}: {list:?} parsed as {set:?}, expected an error"
                    )),
                    Err(e) if !e.to_string().contains(message) => {
                        failures.push(format!(
                            "{at}: {list:?}: expected an error with {message:?}, got {e}"
                        ));
                    }
                    Err(_) => {}
                },
                _ => failures.push(format!(
                    "{at}: expected `match LIST ADDRESS 0|1` or `error LIST MESSAGE`"
                )),
            }
        }
        assert!(
            failures.is_empty(),
            "{} failing rows:\n{}",
            failures.len(),
            failures.join("\n")
        );
    }

    #[test]
    fn overlapping_and_adjacent_blocks_merge() {
        let set = IpSet::parse("10.0.0.0/25 10.0.0.128/25 10.0.0.7 10.0.1.0/24").unwrap();
        assert_eq!(set.v4, [(0x0a00_0000, 0x0a00_01ff)]);
        let set = IpSet::parse("::/1 8000::/1").unwrap();
        assert_eq!(set.v6, [(0, u128::MAX)]);
    }

    proptest! {
        #[test]
        fn text_lookup_does_not_panic(text in proptest::collection::vec(any::<u8>(), 0..64)) {
            let set = IpSet::parse("0.0.0.0/0 ::/0").unwrap();
            let is_address = std::str::from_utf8(&text).ok().and_then(|t| t.parse::<IpAddr>().ok()).is_some();
            prop_assert_eq!(set.contains_text(&text), is_address);
        }

        #[test]
        fn lookup_agrees_with_a_linear_scan(
            nets in proptest::collection::vec((any::<u32>(), 0u8..=32), 1..12),
            probes in proptest::collection::vec(any::<u32>(), 0..32),
        ) {
            let list: Vec<String> = nets.iter().map(|(a, p)| format!("{}/{p}", Ipv4Addr::from(*a))).collect();
            let set = IpSet::parse(&list.join(",")).unwrap();
            let mut probes = probes;
            // Probe the edges of every block too, where an off-by-one would hide.
            for (a, p) in &nets {
                let mask = u32::MAX.checked_shl(32 - u32::from(*p)).unwrap_or(0);
                let (lo, hi) = (a & mask, a | !mask);
                probes.extend([lo, hi, lo.wrapping_sub(1), hi.wrapping_add(1)]);
            }
            for probe in probes {
                let linear = nets.iter().any(|(a, p)| {
                    let mask = u32::MAX.checked_shl(32 - u32::from(*p)).unwrap_or(0);
                    probe & mask == a & mask
                });
                let addr = Ipv4Addr::from(probe);
                prop_assert_eq!(set.contains(IpAddr::V4(addr)), linear, "{} in {:?}", addr, list);
                prop_assert_eq!(set.contains(IpAddr::V6(addr.to_ipv6_mapped())), linear);
            }
        }

        #[test]
        fn parse_does_not_panic(list in "[0-9a-fA-F.:/, ]{0,40}|.{0,40}") {
            let _ = IpSet::parse(&list);
        }
    }

    #[test]
    fn mapped_entries_match_plain_ipv4() {
        let set = IpSet::parse("::ffff:10.0.0.0/104").unwrap();
        assert!(set.contains(IpAddr::V4(Ipv4Addr::new(10, 200, 0, 1))));
        assert!(!set.contains(IpAddr::V4(Ipv4Addr::new(11, 0, 0, 1))));
        assert!(!set.contains(IpAddr::V6(Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0x0a00, 1))));
    }
}
