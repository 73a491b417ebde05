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

struct Slot {
    name: String,
    generation: u64,
    facts: NameFacts,
}

/// A direct-mapped table of the last name seen per slot.
pub struct RecentNames {
    slots: Box<[Option<Slot>]>,
    hasher: FixedState,
}

/// 4,096 slots: about 200 KB, which stays in a core's L2 next to the log text.
const SLOT_BITS: u32 = 12;

impl Default for RecentNames {
    fn default() -> Self {
        Self {
            slots: (0..1 << SLOT_BITS).map(|_| None).collect(),
            hasher: FixedState::with_seed(0x444e_535f_6e61_6d65),
        }
    }
}

impl RecentNames {
    fn index(&self, name: &str) -> usize {
        (self.hasher.hash_one(name) >> (64 - SLOT_BITS)) as usize
    }

    /// The facts remembered for `name` under this intel generation.
    pub fn get(&self, name: &str, generation: u64) -> Option<NameFacts> {
        match &self.slots[self.index(name)] {
            Some(s) if s.generation == generation && s.name == name => Some(s.facts),
            _ => None,
        }
    }

    /// Remembers `facts` for `name`, in place of whatever shared its slot.
    pub fn put(&mut self, name: &str, generation: u64, facts: NameFacts) {
        let i = self.index(name);
        match &mut self.slots[i] {
            Some(s) => {
                // The slot's string keeps its capacity: a new name is a copy, not an allocation.
                s.name.replace_range(.., name);
                s.generation = generation;
                s.facts = facts;
            }
            empty => {
                *empty = Some(Slot {
                    name: name.to_owned(),
                    generation,
                    facts,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(n: u32) -> NameFacts {
        NameFacts {
            unlisted: n.is_multiple_of(2),
            registrable: n as usize,
            encoded: n.is_multiple_of(3),
        }
    }

    #[test]
    fn remembers_names_per_generation_and_forgets_what_a_slot_lost() {
        let mut recent = RecentNames::default();
        assert_eq!(recent.get("example.com", 1), None);
        recent.put("example.com", 1, facts(4));
        assert_eq!(recent.get("example.com", 1), Some(facts(4)));
        // Another intel generation, another name, a prefix of the name: not the same facts.
        assert_eq!(recent.get("example.com", 2), None);
        assert_eq!(recent.get("example.co", 1), None);
        assert_eq!(recent.get("www.example.com", 1), None);
        recent.put("example.com", 2, facts(7));
        assert_eq!(recent.get("example.com", 2), Some(facts(7)));
        assert_eq!(recent.get("example.com", 1), None);

        // Many names: each answer is either the name's own latest facts or nothing.
        let names: Vec<String> = (0..20_000).map(|i| format!("h{i}.example.org")).collect();
        for (i, name) in names.iter().enumerate() {
            recent.put(name, 3, facts(i as u32));
        }
        let mut remembered = 0;
        for (i, name) in names.iter().enumerate() {
            if let Some(f) = recent.get(name, 3) {
                assert_eq!(f, facts(i as u32), "{name}");
                remembered += 1;
            }
        }
        // Direct mapping keeps at most one name per slot, and most slots got one.
        assert!(remembered <= 1 << SLOT_BITS, "{remembered}");
        assert!(remembered > (1 << SLOT_BITS) / 2, "{remembered}");
    }
}
