//! A set of 64-bit hashes in one flat table (open addressing, linear probing, at most half
//! full): the "seen before" caches the CloudTrail detectors probe once per record
//! ([`super::pair_hash`] of an instance and an address, of a principal and an API).
//!
//! Why not a general hash set: a lookup there reads a control group, then the bucket it points
//! to, two dependent reads in two cache lines; while a reader streams log data through the
//! caches, both are usually misses. Here the hash is its own key and a lookup reads one slot
//! (and, at half load, rarely the next one or two): one cache line.
//!
//! Slot value 0 marks an empty slot, so the hash 0 is stored as 1: the two are one member (one
//! chance in 2^63 per lookup of taking one for the other, far below the collision odds the
//! callers already accept for 64-bit hashes).
//!
//! The callers' hashes use a fixed seed (so they are the same in every run) and hash text an
//! attacker partly chooses (role-session names): where a member's probe starts is therefore
//! mixed again with a seed drawn per set, so nobody can line members up on one slot.

use std::hash::BuildHasher;

use foldhash::fast::RandomState;

use crate::foundational::prefetch;

/// Smallest table allocated (slots).
const MIN_SLOTS: usize = 16;

#[derive(Debug, Default, Clone)]
pub struct PairSet {
    /// Power-of-two length (or empty before the first insert).
    slots: Vec<u64>,
    len: usize,
    /// Mixes a member into its first slot (seeded per set).
    hasher: RandomState,
}

fn stored(hash: u64) -> u64 {
    hash.max(1)
}

impl PairSet {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The slot a lookup of `key` starts at (the table is not empty).
    fn home(&self, key: u64) -> usize {
        self.hasher.hash_one(key) as usize & (self.slots.len() - 1)
    }

    /// Starts loading the slot where the lookup of `hash` begins into the cache (a hint: for a
    /// caller that knows the record's hash before it can use the answer).
    pub fn prefetch(&self, hash: u64) {
        if self.len > 0 {
            prefetch(&self.slots[self.home(stored(hash))]);
        }
    }

    pub fn contains(&self, hash: u64) -> bool {
        if self.len == 0 {
            return false;
        }
        let key = stored(hash);
        let mask = self.slots.len() - 1;
        let mut i = self.home(key);
        loop {
            match self.slots[i] {
                0 => return false,
                s if s == key => return true,
                _ => i = (i + 1) & mask,
            }
        }
    }

    /// Adds `hash`; true if it was not there.
    pub fn insert(&mut self, hash: u64) -> bool {
        if (self.len + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let key = stored(hash);
        let mask = self.slots.len() - 1;
        let mut i = self.home(key);
        loop {
            match self.slots[i] {
                0 => {
                    self.slots[i] = key;
                    self.len += 1;
                    return true;
                }
                s if s == key => return false,
                _ => i = (i + 1) & mask,
            }
        }
    }

    /// Empties the set, keeping its table.
    pub fn clear(&mut self) {
        self.slots.fill(0);
        self.len = 0;
    }

    fn grow(&mut self) {
        let slots = (self.slots.len() * 2).max(MIN_SLOTS);
        let old = std::mem::replace(&mut self.slots, vec![0; slots]);
        self.len = 0;
        for key in old.into_iter().filter(|&k| k != 0) {
            self.insert(key);
        }
    }
}

impl FromIterator<u64> for PairSet {
    fn from_iter<I: IntoIterator<Item = u64>>(iter: I) -> Self {
        let mut set = PairSet::new();
        for h in iter {
            set.insert(h);
        }
        set
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// Deterministic, well-spread test hashes (splitmix64).
    fn hashes(n: usize, seed: u64) -> Vec<u64> {
        let mut x = seed;
        (0..n)
            .map(|_| {
                x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
                let mut z = x;
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                z ^ (z >> 31)
            })
            .collect()
    }

    #[test]
    fn agrees_with_a_hash_set_through_growth_and_clear() {
        let mut set = PairSet::new();
        let mut reference = HashSet::new();
        assert!(!set.contains(7), "an empty set holds nothing");
        let members = hashes(5_000, 1);
        for (i, &h) in members.iter().enumerate() {
            assert_eq!(set.insert(h), reference.insert(h));
            if i % 3 == 0 {
                assert!(!set.insert(h), "a second insert adds nothing");
            }
            assert_eq!(set.len(), reference.len());
        }
        for &h in &members {
            assert!(set.contains(h));
        }
        for h in hashes(5_000, 2) {
            assert_eq!(set.contains(h), reference.contains(&h), "{h:#x}");
        }
        assert!(set.slots.len() >= 2 * set.len(), "at most half full");
        set.clear();
        assert!(set.is_empty());
        assert!(members.iter().all(|&h| !set.contains(h)));
        assert!(set.insert(members[0]));
        assert!(set.contains(members[0]));
    }

    #[test]
    fn crowded_tables_and_zero_hold_members_like_any_other() {
        // Tables at their limit (half full), then grown from there.
        let crowd = hashes(512, 3);
        let mut set: PairSet = crowd[..8].iter().copied().collect();
        assert_eq!(set.slots.len(), MIN_SLOTS);
        assert!(crowd[..8].iter().all(|&h| set.contains(h)));
        assert!(crowd[8..].iter().all(|&h| !set.contains(h)));
        set.prefetch(crowd[0]);
        set.prefetch(crowd[9]);
        for &h in &crowd[8..] {
            set.insert(h);
        }
        assert!(crowd.iter().all(|&h| set.contains(h)));
        assert_eq!(set.slots.len(), 1024);
        assert!(!set.contains(0));
        assert!(set.insert(0));
        assert!(set.contains(0));
        assert!(set.contains(1), "0 is stored as 1");
        assert!(!set.insert(1));
        PairSet::new().prefetch(5);
    }
}
