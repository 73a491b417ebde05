//! A set of IPv4 addresses, CIDR blocks and ranges with fast membership tests.
//!
//! Single addresses go into a flat hash table; blocks and ranges become `[start, end]` intervals
//! that are sorted and merged once at build time, so a lookup is one table probe plus one binary
//! search, whatever the mix. 250k entries (GuardDuty's threat-list cap) cost a few MB.
//!
//! The table ([`U32Set`]) is open-addressed: a lookup reads one cache line, where a general hash
//! set reads a control group and then the bucket it points to, and where it starts is known
//! before it reads anything, so a caller that knows an address early can [`IpSet::prefetch`] it
//! and overlap the cache miss with other work (the CloudTrail caller check does, once per record).

use std::net::Ipv4Addr;

use foldhash::HashSet;
use foldhash::fast::RandomState;

use super::indicator::Indicator;
use crate::flat_set::U32Set;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IpSet {
    addresses: AddressTable,
    /// Sorted, non-overlapping, non-adjacent inclusive intervals.
    intervals: Vec<(u32, u32)>,
}

/// Single addresses in a flat table ([`U32Set`]) with the seed that places them, drawn per table,
/// so list entries cannot be chosen to pile up on one slot.
#[derive(Debug, Clone, Default)]
struct AddressTable {
    set: U32Set,
    hasher: RandomState,
}

impl AddressTable {
    fn with(addresses: &HashSet<u32>) -> Self {
        let mut table = Self {
            set: U32Set::with_capacity(addresses.len()),
            hasher: RandomState::default(),
        };
        for &a in addresses {
            table.set.insert(a, &table.hasher);
        }
        table
    }

    fn contains(&self, a: u32) -> bool {
        self.set.contains(a, &self.hasher)
    }

    fn prefetch(&self, a: u32) {
        self.set.prefetch(a, &self.hasher);
    }

    fn count(&self) -> usize {
        self.set.len()
    }
}

/// Same members (the layout depends on each table's seed).
impl PartialEq for AddressTable {
    fn eq(&self, other: &Self) -> bool {
        self.count() == other.count() && self.set.iter().all(|a| other.contains(a))
    }
}

impl Eq for AddressTable {}

/// Collects entries; [`IpSetBuilder::build`] sorts and merges them.
#[derive(Debug, Default)]
pub struct IpSetBuilder {
    addresses: HashSet<u32>,
    intervals: Vec<(u32, u32)>,
}

impl IpSetBuilder {
    /// Adds an IP-kind indicator; returns false (and ignores it) for a domain.
    pub fn add(&mut self, indicator: &Indicator) -> bool {
        match *indicator {
            Indicator::Ip(ip) => {
                self.addresses.insert(u32::from(ip));
            }
            Indicator::Cidr(network, prefix) => {
                let start = u32::from(network);
                let size_minus_one = if prefix == 0 {
                    u32::MAX
                } else {
                    (1u32 << (32 - prefix)) - 1
                };
                self.intervals.push((start, start | size_minus_one));
            }
            Indicator::Range(start, end) => self.intervals.push((u32::from(start), u32::from(end))),
            Indicator::Domain(_) | Indicator::WildcardDomain(_) | Indicator::Sha256(_) => {
                return false;
            }
        }
        true
    }

    pub fn build(mut self) -> IpSet {
        self.intervals.sort_unstable();
        let mut merged: Vec<(u32, u32)> = Vec::with_capacity(self.intervals.len());
        for (start, end) in self.intervals {
            match merged.last_mut() {
                Some(last) if start <= last.1.saturating_add(1) => last.1 = last.1.max(end),
                _ => merged.push((start, end)),
            }
        }
        merged.shrink_to_fit();
        // Addresses already covered by an interval need no separate entry.
        let covered = |ip: &u32| interval_contains(&merged, *ip);
        self.addresses.retain(|ip| !covered(ip));
        IpSet {
            addresses: AddressTable::with(&self.addresses),
            intervals: merged,
        }
    }
}

fn interval_contains(intervals: &[(u32, u32)], ip: u32) -> bool {
    // Index of the first interval starting after `ip`; the one before it is the only candidate.
    let after = intervals.partition_point(|&(start, _)| start <= ip);
    after > 0 && intervals[after - 1].1 >= ip
}

impl IpSet {
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        let ip = u32::from(ip);
        self.addresses.contains(ip) || interval_contains(&self.intervals, ip)
    }

    /// Starts loading the table slot a lookup of `ip` reads first into the cache (a hint: it
    /// changes nothing).
    pub fn prefetch(&self, ip: Ipv4Addr) {
        self.addresses.prefetch(u32::from(ip));
    }

    /// Number of stored single addresses plus merged intervals.
    pub fn len(&self) -> usize {
        self.addresses.count() + self.intervals.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<'a> FromIterator<&'a Indicator> for IpSet {
    fn from_iter<I: IntoIterator<Item = &'a Indicator>>(iter: I) -> Self {
        let mut builder = IpSetBuilder::default();
        for indicator in iter {
            builder.add(indicator);
        }
        builder.build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(entries: &[&str]) -> IpSet {
        let parsed: Vec<Indicator> = entries
            .iter()
            .map(|e| Indicator::parse(e).unwrap())
            .collect();
        parsed.iter().collect()
    }

    fn ip(text: &str) -> Ipv4Addr {
        text.parse().unwrap()
    }

    #[test]
    fn exact_addresses_and_blocks() {
        let s = set(&["198.51.100.1", "192.0.2.0/24", "205.0.0.0/8"]);
        assert!(s.contains(ip("198.51.100.1")));
        assert!(!s.contains(ip("198.51.100.2")));
        assert!(s.contains(ip("192.0.2.0")));
        assert!(s.contains(ip("192.0.2.255")));
        assert!(!s.contains(ip("192.0.3.0")));
        assert!(!s.contains(ip("192.0.1.255")));
        assert!(s.contains(ip("205.255.255.255")));
        assert!(!s.contains(ip("206.0.0.0")));
    }

    #[test]
    fn overlapping_and_adjacent_intervals_merge() {
        let s = set(&["10.0.0.0/25", "10.0.0.128/25", "10.0.0.64/26", "10.0.1.5"]);
        assert_eq!(
            s.intervals,
            vec![(u32::from(ip("10.0.0.0")), u32::from(ip("10.0.0.255")))]
        );
        let mut b = IpSetBuilder::default();
        b.add(&Indicator::Range(ip("10.0.0.10"), ip("10.0.0.20")));
        b.add(&Indicator::Ip(ip("10.0.0.15")));
        let s2 = b.build();
        assert_eq!(s2.addresses.count(), 0, "covered address dropped");
        assert!(
            s2.contains(ip("10.0.0.15"))
                && s2.contains(ip("10.0.0.20"))
                && !s2.contains(ip("10.0.0.21"))
        );
        assert!(s.contains(ip("10.0.1.5")));
    }

    #[test]
    fn extremes_of_the_address_space() {
        let all = set(&["0.0.0.0/0"]);
        assert!(all.contains(ip("0.0.0.0")) && all.contains(ip("255.255.255.255")));
        let top = set(&["255.255.255.0/24"]);
        assert!(top.contains(ip("255.255.255.255")) && !top.contains(ip("255.255.254.255")));
        assert!(IpSet::default().is_empty());
        assert!(!IpSet::default().contains(ip("1.1.1.1")));
    }

    #[test]
    fn hundred_thousand_entries_build_and_answer() {
        let mut b = IpSetBuilder::default();
        for i in 0..100_000u32 {
            // Alternate single addresses and /28 blocks spread over the space.
            let base = i.wrapping_mul(40_503) << 4;
            if i % 2 == 0 {
                b.add(&Indicator::Ip(Ipv4Addr::from(base)));
            } else {
                b.add(&Indicator::Cidr(Ipv4Addr::from(base), 28));
            }
        }
        let s = b.build();
        for i in (0..100_000u32).step_by(997) {
            let base = i.wrapping_mul(40_503) << 4;
            assert!(s.contains(Ipv4Addr::from(base)));
            if i % 2 == 1 {
                assert!(s.contains(Ipv4Addr::from(base + 15)));
            }
        }
    }

    /// The flat table against a general hash set: the same answers for members, neighbours of
    /// members and random addresses, at sizes from empty to well past a resize boundary, with
    /// 0.0.0.0 (the empty-slot marker) and 255.255.255.255 among them or not.
    #[test]
    fn address_table_answers_as_a_hash_set_does() {
        let mut rng = crate::test_rng::XorShift(0x2545_f491_4f6c_dd1d);
        let mut next = || rng.next() as u32;
        for (size, edges) in [
            (0, false),
            (0, true),
            (1, false),
            (7, true),
            (8, false),
            (9, true),
            (5_000, true),
            (70_000, false),
        ] {
            let mut members: HashSet<u32> = HashSet::default();
            // Half random, half one dense block: consecutive addresses make long probe runs.
            while members.len() < size / 2 {
                members.insert(next());
            }
            let base = next() & 0xfff0_0000;
            for k in 0..(size - size / 2) as u32 {
                members.insert(base + k);
            }
            if edges {
                members.insert(0);
                members.insert(u32::MAX);
            }
            let mut b = IpSetBuilder::default();
            for m in &members {
                b.add(&Indicator::Ip(Ipv4Addr::from(*m)));
            }
            let s = b.build();
            assert_eq!(s.len(), members.len(), "size {size}");
            let mut probes: Vec<u32> = members.iter().copied().collect();
            probes.extend(members.iter().map(|m| m.wrapping_add(1)));
            probes.extend(members.iter().map(|m| m.wrapping_sub(1)));
            probes.extend((0..2_000).map(|_| next()));
            probes.extend([0, 1, u32::MAX, u32::MAX - 1]);
            for p in probes {
                s.prefetch(Ipv4Addr::from(p));
                assert_eq!(
                    s.contains(Ipv4Addr::from(p)),
                    members.contains(&p),
                    "size {size}, address {}",
                    Ipv4Addr::from(p)
                );
            }
            // Equality is by members, whatever each table's seed put where.
            let mut again = IpSetBuilder::default();
            for m in &members {
                again.add(&Indicator::Ip(Ipv4Addr::from(*m)));
            }
            assert_eq!(again.build(), s);
            if !members.is_empty() {
                let mut fewer = IpSetBuilder::default();
                for m in members.iter().skip(1) {
                    fewer.add(&Indicator::Ip(Ipv4Addr::from(*m)));
                }
                assert_ne!(fewer.build(), s);
            }
        }
    }
}
