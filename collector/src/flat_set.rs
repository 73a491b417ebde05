//! A set of integer keys in one flat table, for sets probed once per record while log text streams
//! through the caches: a flow instance's learned ports, a threat list's single addresses, the
//! CloudTrail detectors' "seen before" hashes. Open addressing over the keys themselves, at most
//! half full: a lookup usually touches one cache line (a general-purpose set touches its control
//! bytes and then its slot), and where it starts is known before anything is read, so a caller
//! that knows the key early can [`FlatSet::prefetch`] it.
//!
//! The hasher is the caller's, passed to each call (one seed serves many small sets, as a flow
//! detector's instances have), and seeded, so keys an attacker picks cannot be made to collide.

use std::hash::{BuildHasher, Hash};

use foldhash::fast::RandomState;

use crate::foundational::prefetch;

/// A key type: its default (0) marks an empty slot.
pub trait Key: Copy + Eq + Hash + Default {}

impl Key for u32 {}
impl Key for u64 {}

/// A set of keys. The empty slot is 0; a key of 0 is kept aside.
#[derive(Debug, Clone, Default)]
pub struct FlatSet<K> {
    slots: Box<[K]>,
    len: usize,
    zero: bool,
}

pub type U32Set = FlatSet<u32>;

/// Smallest table allocated (slots).
pub(crate) const MIN_SLOTS: usize = 16;

impl<K: Key> FlatSet<K> {
    /// An empty set with room for `keys` keys before it grows. A set built once from a known
    /// collection is sized here rather than through every doubling: besides the copying, each
    /// freed table of a few hundred KB moves glibc's mmap threshold, and so where later
    /// allocations land.
    pub fn with_capacity(keys: usize) -> Self {
        let slots = if keys == 0 {
            0
        } else {
            (2 * keys).next_power_of_two().max(MIN_SLOTS)
        };
        Self {
            slots: vec![K::default(); slots].into_boxed_slice(),
            len: 0,
            zero: false,
        }
    }

    pub fn len(&self) -> usize {
        self.len + usize::from(self.zero)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn contains(&self, key: K, hasher: &RandomState) -> bool {
        if key == K::default() {
            return self.zero;
        }
        self.len > 0 && self.find(key, hasher.hash_one(key)).is_ok()
    }

    /// Starts loading the slot where `key`'s lookup begins into the cache.
    pub fn prefetch(&self, key: K, hasher: &RandomState) {
        if !self.slots.is_empty() {
            let at = hasher.hash_one(key) as usize & (self.slots.len() - 1);
            prefetch(&self.slots[at]);
        }
    }

    /// Adds `key`; false if it was there.
    pub fn insert(&mut self, key: K, hasher: &RandomState) -> bool {
        if key == K::default() {
            return !std::mem::replace(&mut self.zero, true);
        }
        let hash = hasher.hash_one(key);
        let Err(mut free) = self.find(key, hash) else {
            return false;
        };
        if (self.len + 1) * 2 > self.slots.len() {
            self.grow(hasher);
            free = self.find(key, hash).unwrap_err();
        }
        self.slots[free] = key;
        self.len += 1;
        true
    }

    /// Empties the set, keeping its table.
    pub fn clear(&mut self) {
        self.slots.fill(K::default());
        self.len = 0;
        self.zero = false;
    }

    /// The keys, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = K> + '_ {
        self.zero
            .then_some(K::default())
            .into_iter()
            .chain(self.slots.iter().copied().filter(|k| *k != K::default()))
    }

    /// Slots in the table (at least twice the keys in it).
    #[cfg(test)]
    pub(crate) fn slot_count(&self) -> usize {
        self.slots.len()
    }

    /// `Ok(slot)` of `key` (not 0), or `Err(free slot)` where it would go (`Err(0)` when the set
    /// has no slots yet).
    fn find(&self, key: K, hash: u64) -> Result<usize, usize> {
        if self.slots.is_empty() {
            return Err(0);
        }
        let mask = self.slots.len() - 1;
        let mut at = hash as usize & mask;
        loop {
            match self.slots[at] {
                k if k == key => return Ok(at),
                k if k == K::default() => return Err(at),
                _ => at = (at + 1) & mask,
            }
        }
    }

    fn grow(&mut self, hasher: &RandomState) {
        let size = (self.slots.len() * 2).max(MIN_SLOTS);
        let old = std::mem::replace(&mut self.slots, vec![K::default(); size].into_boxed_slice());
        for key in old.iter().copied().filter(|k| *k != K::default()) {
            let free = self
                .find(key, hasher.hash_one(key))
                .expect_err("keys are unique");
            self.slots[free] = key;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inserted_keys_and_only_those_are_contained_across_growth() {
        let h = RandomState::default();
        let mut s = U32Set::default();
        assert!(!s.contains(5, &h));
        let keys: Vec<u32> = (0..4096u32)
            .map(|i| (1 + i % 2) << 24 | 6 << 16 | (i * 7))
            .collect();
        for k in &keys {
            assert!(s.insert(*k, &h));
            assert!(!s.insert(*k, &h), "{k} twice");
        }
        assert_eq!(s.len(), 4096);
        assert!(s.slots.len() >= 8192);
        for k in &keys {
            assert!(s.contains(*k, &h));
        }
        assert!(!s.contains(1 << 24 | 6 << 16 | 1, &h));
        let mut all: Vec<u32> = s.iter().collect();
        all.sort_unstable();
        let mut expected = keys.clone();
        expected.sort_unstable();
        assert_eq!(all, expected);
    }

    #[test]
    fn a_set_sized_for_its_keys_holds_them_without_growing() {
        let h = RandomState::default();
        assert_eq!(U32Set::with_capacity(0).slot_count(), 0);
        let mut s = U32Set::with_capacity(5000);
        let slots = s.slot_count();
        assert!(slots >= 10_000, "at most half full: {slots}");
        for k in 1..=5000u32 {
            assert!(s.insert(k * 13, &h));
        }
        assert_eq!(s.slot_count(), slots, "no growth");
        assert_eq!(s.len(), 5000);
        assert!((1..=5000u32).all(|k| s.contains(k * 13, &h)));
        assert!(!s.contains(14, &h));
    }

    #[test]
    fn zero_is_a_key_like_any_other() {
        let h = RandomState::default();
        let mut s = U32Set::default();
        assert!(!s.contains(0, &h));
        assert!(s.insert(0, &h));
        assert!(!s.insert(0, &h));
        assert!(s.contains(0, &h));
        assert_eq!(s.len(), 1);
        assert!(s.insert(3, &h));
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![0, 3]);
    }
}
