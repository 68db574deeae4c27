//! The scan memo: what a value opened at each chain node, remembered from request to request.
//!
//! Sign-in traffic repeats most of its values. Every request from one browser carries the same
//! `User-Agent`, `Accept` and `sec-ch-ua` headers; `client_id`, `scope`, `redirect_uri` and
//! `response_type` are constant per application; only a few values (`state`, `nonce`, tokens)
//! are new. What a value opens at a chain node (its Aho-Corasick scan, its byte gates, its
//! residual sets) depends on nothing but its bytes and the program, so each thread remembers
//! it for recent values, and a later request scans such a value nowhere, and transforms it
//! only where a test needs its bytes. It also remembers which operators did not match the
//! value (and which negated conditions' operators did): the regexes a recurring header opens
//! (a `;` in every `User-Agent`) then run once, not on every request. And it keeps every gate
//! the value opened at any node, with the nodes that list covers: a known value is put on the
//! gate lists once per request, and each later scan of it is a bit test.
//!
//! The memo is bounded: values up to [`MAX_VALUE`] bytes, [`ENTRIES`] of them; when it is full
//! it starts over, between requests. A value is remembered the second time it is seen, so
//! that the tokens every request brings do not fill it (see [`ScanMemo::seen_once`]). Keys are whole values compared byte for byte (a hash
//! alone could be made to collide), hashed with a per-process random seed (`foldhash`): the
//! values are the client's, and a client that made them collide anyway would only slow its own
//! lookups in a table of at most [`ENTRIES`] values. A client sending only fresh values gains
//! nothing from it and costs one lookup per value, much less than a scan.
//!
//! A memo belongs to one program (gate ids and chain nodes mean nothing to another): the
//! cache that holds it is handed from program to program on a thread, and forgets it when the
//! program changes.

use std::collections::HashMap;

use std::hash::BuildHasher;

use foldhash::fast::RandomState;

use super::literals::ByteSet;
use super::ChainId;

/// In a key of [`Remembered::missed`]: the operator matched.
const MATCHED: u32 = 1 << 31;

/// Longest value remembered: longer ones rarely recur (bodies, query strings with tokens).
pub(super) const MAX_VALUE: usize = 512;

/// Most values remembered per thread.
pub(super) const ENTRIES: usize = 2048;

/// Values seen once whose hashes [`ScanMemo::seen_once`] keeps (a power of two).
const SEEN_ONCE: usize = 4096;

/// Where [`ScanMemo::seen_once`] keeps a value's hash: a direct-mapped table, so a token
/// with the same low bits makes a recurring value wait one more sighting, which costs a
/// scan, never a wrong verdict.
fn seen_once_slot(hash: u64) -> usize {
    hash as usize & (SEEN_ONCE - 1)
}

/// The per-thread memo of one program.
#[derive(Debug, Default)]
pub(super) struct ScanMemo {
    /// The program whose results these are.
    program: u64,
    /// Value → index into `entries`.
    index: HashMap<Box<[u8]>, u32, RandomState>,
    /// The same for values scanned apart (a fixed scalar scanned for its own conditions'
    /// literals opens other gates than the same bytes elsewhere), by kind.
    apart: Vec<HashMap<Box<[u8]>, u32, RandomState>>,
    /// By entry: what is known of its value.
    entries: Vec<Remembered>,
    /// Hashes of values seen once and not remembered, by their low bits: a value is
    /// remembered the second time it is seen.
    ///
    /// A sign-in request carries a handful of values that no other request will (a `state`,
    /// a `nonce`, a PKCE challenge, a form's device fingerprint) among dozens that every
    /// request does. Remembering every one filled the memo with those tokens within a few
    /// hundred requests; it was then emptied, and the recurring values were scanned and
    /// tested afresh, as if the thread had just started. A token costs a hash and a store
    /// here instead of an entry, and the entries are the values that recur.
    seen_once: Vec<u64>,
}

/// What one value opened at one chain node.
#[derive(Debug)]
struct Record {
    node: ChainId,
    /// The gates (`None`: the same as at the parent node).
    open: Option<Box<[u32]>>,
    /// The value's bytes there but for letters (`None`: the same as at the parent node).
    present: Option<ByteSet>,
}

/// What [`ScanMemo::get`] knows of a value at a chain node.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Known<'a> {
    /// The record's index, for [`ScanMemo::opened_at`].
    pub(super) index: u32,
    /// The gates the value opened (`None`: the same as at the parent node).
    pub(super) open: Option<&'a [u32]>,
    /// The value's bytes there but for letters (`None`: the same as at the parent node).
    pub(super) present: Option<ByteSet>,
}

/// What is known of one value.
#[derive(Debug, Default)]
struct Remembered {
    /// For each chain node the value was filled at, what it opened there.
    opened: Vec<Record>,
    /// The conditions (by [key](super::CondPlan::key)) whose operator did not match the value
    /// at a chain node, sorted; with [`MATCHED`] set in the key, the negated conditions whose
    /// operator matched it. Only operators without macros: their verdict depends on the bytes
    /// alone.
    missed: Vec<(ChainId, u32)>,
    /// Every gate the value opened at the nodes of `covered` (sorted).
    gates: Vec<u32>,
    /// How many times `gates` grew: a slot listed under an older `gates` is listed again.
    version: u32,
    /// By chain node, a bit: the node is recorded in `opened`, or was untouched by the value
    /// (its gates are the root's): `gates` holds what the value opens there.
    covered: Vec<u64>,
}

impl Remembered {
    fn cover(&mut self, node: ChainId) {
        let word = node as usize / 64;
        if self.covered.len() <= word {
            self.covered.resize(word + 1, 0);
        }
        if let Some(w) = self.covered.get_mut(word) {
            *w |= 1 << (node % 64);
        }
    }
}

impl ScanMemo {
    /// Makes the memo `program`'s, and empties it when it is full. Only between requests:
    /// a request holds entry indices.
    pub(super) fn prepare(&mut self, program: u64) {
        if self.program != program || self.entries.len() >= ENTRIES {
            self.forget();
            self.program = program;
        }
    }

    /// Forgets every value, keeping the allocations.
    pub(super) fn forget(&mut self) {
        self.index.clear();
        for index in &mut self.apart {
            index.clear();
        }
        self.entries.clear();
        self.seen_once.clear();
    }

    /// The entry of `value`, made if it has none; `None` when the value is not remembered
    /// (too long, or the memo is full). `apart`: the kind of a value scanned apart, whose
    /// entries are not those of the same bytes elsewhere.
    pub(super) fn entry(&mut self, apart: Option<usize>, value: &[u8]) -> Option<u32> {
        if value.len() > MAX_VALUE {
            return None;
        }
        let index = match apart {
            None => &mut self.index,
            Some(kind) => {
                if self.apart.len() <= kind {
                    self.apart.resize_with(kind + 1, HashMap::default);
                }
                self.apart.get_mut(kind)?
            }
        };
        if let Some(&e) = index.get(value) {
            return Some(e);
        }
        if self.entries.len() >= ENTRIES {
            return None;
        }
        // A value of another kind is another value: its hash is made to differ.
        let hash = index.hasher().hash_one(value) ^ apart.map_or(0, |k| (k as u64 + 1) << 56);
        if self.seen_once.len() < SEEN_ONCE {
            self.seen_once.resize(SEEN_ONCE, 0);
        }
        let seen = self.seen_once.get_mut(seen_once_slot(hash))?;
        if *seen != hash {
            *seen = hash;
            return None;
        }
        let e = u32::try_from(self.entries.len()).ok()?;
        index.insert(value.into(), e);
        self.entries.push(Remembered::default());
        Some(e)
    }

    /// What entry `e`'s value opened at `node` and its bytes there, as recorded; `None` when
    /// not recorded.
    pub(super) fn get(&self, e: u32, node: ChainId) -> Option<Known<'_>> {
        let opened = &self.entries.get(e as usize)?.opened;
        let index = opened.iter().position(|r| r.node == node)?;
        let record = opened.get(index)?;
        Some(Known {
            index: u32::try_from(index).ok()?,
            open: record.open.as_deref(),
            present: record.present,
        })
    }

    /// The gates of record `index` of entry `e` (empty when it has none of its own).
    pub(super) fn opened_at(&self, e: u32, index: u32) -> &[u32] {
        self.entries
            .get(e as usize)
            .and_then(|r| r.opened.get(index as usize))
            .and_then(|r| r.open.as_deref())
            .unwrap_or(&[])
    }

    /// Records what entry `e`'s value opened at `node`, and its bytes but for letters there.
    /// `open` is `None` when the node opened what its parent did, which is recorded already.
    pub(super) fn record(
        &mut self,
        e: u32,
        node: ChainId,
        open: Option<&[u32]>,
        present: Option<ByteSet>,
    ) {
        if let Some(r) = self.entries.get_mut(e as usize) {
            if r.opened.iter().all(|r| r.node != node) {
                r.opened.push(Record {
                    node,
                    open: open.map(Into::into),
                    present,
                });
                if let Some(open) = open {
                    let before = r.gates.len();
                    r.gates.extend_from_slice(open);
                    r.gates.sort_unstable();
                    r.gates.dedup();
                    if r.gates.len() != before {
                        r.version = r.version.wrapping_add(1);
                    }
                }
                r.cover(node);
            }
        }
    }

    /// Records that `node` was untouched by entry `e`'s value: it opens there what it opens at
    /// the root, which must be recorded.
    pub(super) fn record_untouched(&mut self, e: u32, node: ChainId) {
        if let Some(r) = self.entries.get_mut(e as usize) {
            r.cover(node);
        }
    }

    /// Whether [`gates`](ScanMemo::gates) holds what entry `e`'s value opens at `node`.
    pub(super) fn covers(&self, e: u32, node: ChainId) -> bool {
        self.entries.get(e as usize).is_some_and(|r| {
            r.covered
                .get(node as usize / 64)
                .is_some_and(|word| word & (1 << (node % 64)) != 0)
        })
    }

    /// Every gate entry `e`'s value opened at the nodes it [covers](ScanMemo::covers), sorted,
    /// and a version of that list: it changes whenever the list grows.
    pub(super) fn gates(&self, e: u32) -> (&[u32], u32) {
        self.entries
            .get(e as usize)
            .map_or((&[], 0), |r| (&r.gates, r.version))
    }

    /// Whether condition `key` is known not to match entry `e`'s value at `node`.
    pub(super) fn missed(&self, e: u32, node: ChainId, key: u32) -> bool {
        self.entries
            .get(e as usize)
            .is_some_and(|r| r.missed.binary_search(&(node, key)).is_ok())
    }

    /// Records that condition `key` did not match entry `e`'s value at `node`.
    pub(super) fn record_miss(&mut self, e: u32, node: ChainId, key: u32) {
        if let Some(r) = self.entries.get_mut(e as usize) {
            if let Err(at) = r.missed.binary_search(&(node, key)) {
                r.missed.insert(at, (node, key));
            }
        }
    }

    /// Whether negated condition `key`'s operator is known to match entry `e`'s value at
    /// `node` (the condition fails there).
    pub(super) fn matched(&self, e: u32, node: ChainId, key: u32) -> bool {
        key & MATCHED == 0 && self.missed(e, node, key | MATCHED)
    }

    /// Records that negated condition `key`'s operator matched entry `e`'s value at `node`.
    pub(super) fn record_match(&mut self, e: u32, node: ChainId, key: u32) {
        if key & MATCHED == 0 {
            self.record_miss(e, node, key | MATCHED);
        }
    }

    /// How many values are remembered.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The entry of a value seen twice: the first sighting only notes it.
    fn seen_twice(memo: &mut ScanMemo, apart: Option<usize>, value: &[u8]) -> Option<u32> {
        memo.entry(apart, value);
        memo.entry(apart, value)
    }

    #[test]
    fn remembers_by_value_and_node() {
        let mut memo = ScanMemo::default();
        memo.prepare(1);
        assert_eq!(memo.entry(None, b"Mozilla/5.0"), None, "seen once");
        let e = memo.entry(None, b"Mozilla/5.0").unwrap();
        assert_eq!(memo.get(e, 3), None);
        let slash = ByteSet::of(b"/");
        memo.record(e, 3, Some(&[7, 9]), Some(slash));
        memo.record(e, 4, None, None);
        assert_eq!(memo.entry(None, b"Mozilla/5.0"), Some(e));
        let known = |index, open, present| {
            Some(Known {
                index,
                open,
                present,
            })
        };
        assert_eq!(memo.get(e, 3), known(0, Some(&[7, 9][..]), Some(slash)));
        assert_eq!(memo.opened_at(e, 0), &[7, 9]);
        assert_eq!(memo.get(e, 4), known(1, None, None));
        assert_eq!(memo.opened_at(e, 1), &[] as &[u32]);
        assert_ne!(memo.entry(None, b"mozilla/5.0"), Some(e));
        // The same bytes scanned apart (a fixed scalar) are another entry, per kind.
        let apart = seen_twice(&mut memo, Some(3), b"Mozilla/5.0");
        assert!(apart.is_some() && apart != Some(e));
        assert_eq!(memo.entry(Some(3), b"Mozilla/5.0"), apart);
        assert!(
            !matches!(seen_twice(&mut memo, Some(0), b"Mozilla/5.0"), Some(x) if Some(x) == apart || x == e)
        );
        // Nodes 3 and 4 are covered, by what node 3 opened; node 5 once recorded untouched.
        assert!(memo.covers(e, 3) && memo.covers(e, 4) && !memo.covers(e, 5));
        let (gates, version) = memo.gates(e);
        assert_eq!(gates, &[7, 9]);
        memo.record_untouched(e, 5);
        assert!(memo.covers(e, 5));
        memo.record(e, 70, Some(&[8, 9]), None);
        assert!(memo.covers(e, 70) && !memo.covers(e, 71));
        let (gates, grown) = memo.gates(e);
        assert_eq!(gates, &[7, 8, 9]);
        assert_ne!(grown, version);
        memo.record(e, 71, Some(&[7]), None);
        assert_eq!(memo.gates(e).1, grown, "no new gate, same version");
        assert!(!memo.missed(e, 3, 12));
        memo.record_miss(e, 3, 12);
        assert!(memo.missed(e, 3, 12));
        assert!(!memo.missed(e, 4, 12));
        assert!(!memo.matched(e, 3, 12));
        memo.record_match(e, 3, 13);
        assert!(memo.matched(e, 3, 13));
        assert!(!memo.missed(e, 3, 13));
    }

    #[test]
    fn forgets_on_another_program_and_when_full() {
        let mut memo = ScanMemo::default();
        memo.prepare(1);
        seen_twice(&mut memo, None, b"a").unwrap();
        memo.prepare(1);
        assert_eq!(memo.len(), 1);
        memo.prepare(2);
        assert_eq!(memo.len(), 0);
        for i in 0..ENTRIES {
            assert!(seen_twice(&mut memo, None, i.to_string().as_bytes()).is_some());
        }
        assert_eq!(seen_twice(&mut memo, None, b"one too many"), None);
        memo.prepare(2);
        assert_eq!(memo.len(), 0);
    }

    #[test]
    fn long_values_are_not_remembered() {
        let mut memo = ScanMemo::default();
        memo.prepare(1);
        assert_eq!(seen_twice(&mut memo, None, &[b'a'; MAX_VALUE + 1]), None);
        assert!(seen_twice(&mut memo, None, &[b'a'; MAX_VALUE]).is_some());
    }

    /// Tokens that every request brings once do not fill the memo: a value takes an entry
    /// the second time it is seen, and values seen once, however many, take none.
    #[test]
    fn a_value_is_remembered_the_second_time_it_is_seen() {
        let mut memo = ScanMemo::default();
        memo.prepare(1);
        for i in 0..10 * ENTRIES {
            let token = format!("state-{i}");
            assert_eq!(memo.entry(None, token.as_bytes()), None, "{token}");
        }
        assert_eq!(memo.len(), 0);
        // A value that recurs among a few requests' worth of tokens. The tokens that share
        // its slot are left out: the hash seed is random, and which ones do is the next
        // test's matter.
        let recurring: &[u8] = b"x-client-SKU=msal.js.browser";
        let slot_of =
            |memo: &ScanMemo, value: &[u8]| seen_once_slot(memo.index.hasher().hash_one(value));
        for round in 0..3 {
            for i in 0..100 {
                let token = format!("nonce-{round}-{i}");
                if slot_of(&memo, token.as_bytes()) != slot_of(&memo, recurring) {
                    memo.entry(None, token.as_bytes());
                }
            }
            assert_eq!(
                memo.entry(None, recurring).is_some(),
                round > 0,
                "round {round}"
            );
        }
        assert_eq!(memo.len(), 1);
    }

    /// Regression: the test above failed CI on stop 26, and 7 runs in 300 here. It sent 100
    /// tokens between sightings, and one of them could take the recurring value's slot (the
    /// table is direct-mapped, the seed random). Such a value is remembered one sighting
    /// later, not lost.
    #[test]
    fn a_token_in_the_same_slot_delays_a_recurring_value_by_one_sighting() {
        let mut memo = ScanMemo::default();
        memo.prepare(1);
        let recurring: &[u8] = b"x-client-SKU=msal.js.browser";
        let slot = seen_once_slot(memo.index.hasher().hash_one(recurring));
        let rival = (0..)
            .map(|i| format!("state-{i}"))
            .find(|t| seen_once_slot(memo.index.hasher().hash_one(t.as_bytes())) == slot)
            .unwrap_or_default();
        assert_eq!(memo.entry(None, recurring), None);
        assert_eq!(memo.entry(None, rival.as_bytes()), None);
        assert_eq!(memo.entry(None, recurring), None, "the rival took its slot");
        assert!(memo.entry(None, recurring).is_some(), "seen twice in a row");
        assert_eq!(memo.len(), 1);
    }
}
