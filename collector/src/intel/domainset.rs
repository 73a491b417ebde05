//! Domain names and `*.` wildcard suffixes with a value per entry, matched on label boundaries.
//!
//! Lookup normalises the query (case, one trailing dot), probes the exact table, then probes the
//! wildcard table with each parent suffix from the longest down, so the most specific entry wins
//! and a query costs one hash probe per label. `*.example.org` matches `a.example.org` and
//! `a.b.example.org` but not `example.org` itself (list the apex separately) nor `badexample.org`.

use std::borrow::Cow;

use foldhash::{HashMap, HashMapExt};

use super::indicator::{Indicator, normalise_domain};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainSet<V> {
    exact: HashMap<String, V>,
    wildcard_suffixes: HashMap<String, V>,
}

/// How a query matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DomainMatch<'a, V> {
    Exact(&'a V),
    /// Matched the wildcard entry `*.{suffix}`.
    Wildcard {
        suffix: &'a str,
        value: &'a V,
    },
}

impl<'a, V> DomainMatch<'a, V> {
    pub fn value(&self) -> &'a V {
        match *self {
            Self::Exact(value) | Self::Wildcard { value, .. } => value,
        }
    }
}

impl<V> Default for DomainSet<V> {
    fn default() -> Self {
        Self {
            exact: HashMap::new(),
            wildcard_suffixes: HashMap::new(),
        }
    }
}

impl<V> DomainSet<V> {
    /// Adds a domain-kind indicator; returns false (and ignores it) for an IP kind. A repeated
    /// entry keeps its first value.
    pub fn insert(&mut self, indicator: &Indicator, value: V) -> bool {
        let (table, key) = match indicator {
            Indicator::Domain(name) => (&mut self.exact, name),
            Indicator::WildcardDomain(suffix) => (&mut self.wildcard_suffixes, suffix),
            _ => return false,
        };
        table.entry(key.clone()).or_insert(value);
        true
    }

    pub fn lookup(&self, query: &str) -> Option<DomainMatch<'_, V>> {
        if self.is_empty() {
            return None;
        }
        let name = normalise_query(query)?;
        if let Some((_, value)) = self.exact.get_key_value(&*name) {
            return Some(DomainMatch::Exact(value));
        }
        if self.wildcard_suffixes.is_empty() {
            return None;
        }
        let mut rest = &*name;
        while let Some((_, parent)) = rest.split_once('.') {
            if let Some((suffix, value)) = self.wildcard_suffixes.get_key_value(parent) {
                return Some(DomainMatch::Wildcard { suffix, value });
            }
            rest = parent;
        }
        None
    }

    pub fn contains(&self, query: &str) -> bool {
        self.lookup(query).is_some()
    }

    pub fn len(&self) -> usize {
        self.exact.len() + self.wildcard_suffixes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.wildcard_suffixes.is_empty()
    }
}

/// Queries come from DNS traffic and logs, so they are not validated as strictly as list entries:
/// only case and the trailing dot are normalised.
fn normalise_query(query: &str) -> Option<Cow<'_, str>> {
    let trimmed = query.trim_ascii();
    let name = trimmed.strip_suffix('.').unwrap_or(trimmed);
    if name.is_empty() {
        return None;
    }
    // Already lower case (the usual query): both normalisers below would return it unchanged,
    // so it is used as it is, without an allocation per lookup.
    if !name.bytes().any(|b| b.is_ascii_uppercase()) {
        return Some(Cow::Borrowed(name));
    }
    // Reuse the strict normaliser when it accepts the name; fall back to plain lower-casing for
    // odd-but-real queries (single labels, unusual characters) that simply will not match.
    Some(Cow::Owned(
        normalise_domain(name).unwrap_or_else(|_| name.to_ascii_lowercase()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(entries: &[(&str, u32)]) -> DomainSet<u32> {
        let mut s = DomainSet::default();
        for (entry, value) in entries {
            assert!(s.insert(&Indicator::parse(entry).unwrap(), *value));
        }
        s
    }

    #[test]
    fn exact_and_wildcard_on_label_boundaries() {
        let s = set(&[("example.com", 1), ("*.example.org", 2)]);
        assert_eq!(s.lookup("example.com").map(|m| *m.value()), Some(1));
        assert_eq!(s.lookup("EXAMPLE.com.").map(|m| *m.value()), Some(1));
        assert_eq!(
            s.lookup("www.example.com"),
            None,
            "exact entries do not cover subdomains"
        );
        assert_eq!(
            s.lookup("a.example.org"),
            Some(DomainMatch::Wildcard {
                suffix: "example.org",
                value: &2
            })
        );
        assert_eq!(s.lookup("x.y.Example.ORG.").map(|m| *m.value()), Some(2));
        assert_eq!(
            s.lookup("example.org"),
            None,
            "wildcard does not cover the apex"
        );
        assert_eq!(s.lookup("badexample.org"), None);
        assert_eq!(s.lookup("example.org.evil.net"), None);
        assert_eq!(s.lookup(""), None);
        assert_eq!(s.lookup("."), None);
    }

    #[test]
    fn most_specific_entry_wins() {
        let s = set(&[
            ("*.pool.example", 1),
            ("*.eu.pool.example", 2),
            ("exact.eu.pool.example", 3),
        ]);
        assert_eq!(s.lookup("a.eu.pool.example").map(|m| *m.value()), Some(2));
        assert_eq!(s.lookup("a.us.pool.example").map(|m| *m.value()), Some(1));
        assert_eq!(
            s.lookup("exact.eu.pool.example").map(|m| *m.value()),
            Some(3)
        );
    }

    #[test]
    fn ip_indicators_are_refused_and_duplicates_keep_the_first_value() {
        let mut s = DomainSet::default();
        assert!(!s.insert(&Indicator::parse("192.0.2.1").unwrap(), 0));
        assert!(s.insert(&Indicator::parse("dup.example").unwrap(), 1));
        assert!(s.insert(&Indicator::parse("DUP.example.").unwrap(), 2));
        assert_eq!(s.len(), 1);
        assert_eq!(s.lookup("dup.example").map(|m| *m.value()), Some(1));
    }

    #[test]
    fn hundred_thousand_entries() {
        let mut s = DomainSet::default();
        for i in 0..100_000u32 {
            let entry = if i % 10 == 0 {
                format!("*.zone{i}.example")
            } else {
                format!("host{i}.example")
            };
            s.insert(&Indicator::parse(&entry).unwrap(), i);
        }
        assert_eq!(s.len(), 100_000);
        assert_eq!(
            s.lookup("host99999.example").map(|m| *m.value()),
            Some(99_999)
        );
        assert_eq!(
            s.lookup("deep.sub.zone500.example").map(|m| *m.value()),
            Some(500)
        );
        assert_eq!(s.lookup("zone501.example"), None);
    }
}
