//! What the DNS analyses worked out about recently queried names.
//!
//! Most queries repeat a name (package mirrors, telemetry, service endpoints): remembering, per
//! name, whether any list or built-in set can match it, where its registrable domain starts and
//! whether its subdomain looks encoded turns the three set lookups, the label split and the
//! entropy count into one hash and one compare. Names that never repeat (a DGA, a tunnel) only
//! pay for the compare and a copy of the name.

use std::hash::BuildHasher;

use foldhash::fast::FixedState;

/// Facts about one name. Whether it can match a list holds for one generation of the intel index
/// ([`crate::intel::IntelIndex::generation`]); the rest depends on the name alone (and the
/// detector's fixed thresholds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NameFacts {
    /// On no threat list, GuardDuty test domain or mining pool, or on a trusted list: threat
    /// classification finds nothing, whatever the lists' categories.
    pub unlisted: bool,
    /// Byte offset of the registrable domain ([`super::name::registrable`]).
    pub registrable: usize,
    /// The subdomain part looks like encoded data ([`super::name::looks_encoded`]).
    pub encoded: bool,
}

/// One remembered name, in one cache line: the name is kept inline, so a lookup touches the slot
/// and nothing else (a `String` would add a second miss, on its heap buffer).
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Slot {
    /// 0: empty (intel index generations start at 1).
    generation: u64,
    registrable: u8,
    unlisted: bool,
    encoded: bool,
    len: u8,
    name: [u8; MAX_NAME],
}

const _: () = assert!(std::mem::size_of::<Slot>() == 64);

/// Longest name remembered. Ordinary names are shorter; the long ones are mostly encoded data
/// (tunnels, exfiltration), which never repeats.
pub const MAX_NAME: usize = 52;

const EMPTY: Slot = Slot {
    generation: 0,
    registrable: 0,
    unlisted: false,
    encoded: false,
    len: 0,
    name: [0; MAX_NAME],
};

/// A direct-mapped table of the last name seen per slot.
pub struct RecentNames {
    slots: Box<[Slot]>,
    hasher: FixedState,
}

/// 4,096 slots of 64 bytes: 256 KiB, which stays in a core's L2 next to the log text.
const SLOT_BITS: u32 = 12;

impl Default for RecentNames {
    fn default() -> Self {
        Self {
            slots: vec![EMPTY; 1 << SLOT_BITS].into_boxed_slice(),
            hasher: FixedState::with_seed(0x444e_535f_6e61_6d65),
        }
    }
}

/// The slot a name is remembered in ([`RecentNames::slot`]): found once, for a lookup and the
/// store that follows a miss (the name is hashed once).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotOf(usize);

impl RecentNames {
    pub fn slot(&self, name: &str) -> SlotOf {
        SlotOf((self.hasher.hash_one(name) >> (64 - SLOT_BITS)) as usize)
    }

    /// The facts remembered for `name` (whose slot is `at`) under this intel generation.
    pub fn get(&self, at: SlotOf, name: &str, generation: u64) -> Option<NameFacts> {
        debug_assert_eq!(at, self.slot(name));
        let s = &self.slots[at.0];
        let hit =
            s.generation == generation && s.name.get(..usize::from(s.len)) == Some(name.as_bytes());
        hit.then_some(NameFacts {
            unlisted: s.unlisted,
            registrable: usize::from(s.registrable),
            encoded: s.encoded,
        })
    }

    /// Remembers `facts` for `name` (whose slot is `at`) if it is short enough to keep, in place
    /// of whatever shared its slot.
    pub fn put(&mut self, at: SlotOf, name: &str, generation: u64, facts: NameFacts) {
        debug_assert_eq!(at, self.slot(name));
        if name.len() > MAX_NAME {
            return;
        }
        let s = &mut self.slots[at.0];
        s.generation = generation;
        // The registrable domain starts inside the name, so it and the length fit a byte.
        s.registrable = facts.registrable as u8;
        s.unlisted = facts.unlisted;
        s.encoded = facts.encoded;
        s.len = name.len() as u8;
        s.name[..name.len()].copy_from_slice(name.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(n: u32) -> NameFacts {
        NameFacts {
            unlisted: n.is_multiple_of(2),
            registrable: (n % 200) as usize,
            encoded: n.is_multiple_of(3),
        }
    }

    fn get(recent: &RecentNames, name: &str, generation: u64) -> Option<NameFacts> {
        recent.get(recent.slot(name), name, generation)
    }

    fn put(recent: &mut RecentNames, name: &str, generation: u64, facts: NameFacts) {
        recent.put(recent.slot(name), name, generation, facts);
    }

    #[test]
    fn remembers_names_per_generation_and_forgets_what_a_slot_lost() {
        let mut recent = RecentNames::default();
        assert_eq!(get(&recent, "example.com", 1), None);
        put(&mut recent, "example.com", 1, facts(4));
        assert_eq!(get(&recent, "example.com", 1), Some(facts(4)));
        // Another intel generation, another name, a prefix of the name: not the same facts.
        assert_eq!(get(&recent, "example.com", 2), None);
        assert_eq!(get(&recent, "example.co", 1), None);
        assert_eq!(get(&recent, "www.example.com", 1), None);
        put(&mut recent, "example.com", 2, facts(7));
        assert_eq!(get(&recent, "example.com", 2), Some(facts(7)));
        assert_eq!(get(&recent, "example.com", 1), None);

        // Too long to keep inline: analysed every time, never remembered.
        let long = format!("{}.example.com", "a".repeat(MAX_NAME));
        put(&mut recent, &long, 1, facts(4));
        assert_eq!(get(&recent, &long, 1), None);
        let longest = "b".repeat(MAX_NAME);
        put(&mut recent, &longest, 1, facts(6));
        assert_eq!(get(&recent, &longest, 1), Some(facts(6)));

        // Many names: each answer is either the name's own latest facts or nothing.
        let names: Vec<String> = (0..20_000).map(|i| format!("h{i}.example.org")).collect();
        for (i, name) in names.iter().enumerate() {
            put(&mut recent, name, 3, facts(i as u32));
        }
        let mut remembered = 0;
        for (i, name) in names.iter().enumerate() {
            if let Some(f) = get(&recent, name, 3) {
                assert_eq!(f, facts(i as u32), "{name}");
                remembered += 1;
            }
        }
        // Direct mapping keeps at most one name per slot, and most slots got one.
        assert!(remembered <= 1 << SLOT_BITS, "{remembered}");
        assert!(remembered > (1 << SLOT_BITS) / 2, "{remembered}");
    }
}
