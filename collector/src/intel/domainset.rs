//! Domain names and `*.` wildcard suffixes with a value per entry, matched on label boundaries.
//!
//! Lookup normalises the query (case, one trailing dot), probes the exact table, then probes the
//! wildcard table with each parent suffix from the longest down, so the most specific entry wins.
//! A query whose last two labels end no wildcard entry skips the parent probes: the usual query
//! (on no list) costs two hash probes whatever its number of labels. `*.example.org` matches
//! `a.example.org` and `a.b.example.org` but not `example.org` itself (list the apex separately)
//! nor `badexample.org`.

use std::borrow::Cow;

use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};

use super::indicator::{Indicator, normalise_domain};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainSet<V> {
    exact: HashMap<String, V>,
    wildcard_suffixes: HashMap<String, V>,
    /// The last two labels of every wildcard suffix: a parent suffix of the query that matches
    /// an entry ends in the query's own last two labels, so a query whose last two labels are
    /// not here matches no wildcard (single-label suffixes such as `*.com` aside).
    wildcard_tails: HashSet<String>,
    /// Some wildcard suffix is a single label, which the tail filter cannot rule out (list files
    /// cannot hold one, but the set does not depend on that).
    single_label_wildcard: bool,
}

/// Where the last two labels of a name start (0 when it has fewer). Names are short: a plain
/// backwards loop beats a vectorised search.
fn tail_start(name: &str) -> usize {
    let b = name.as_bytes();
    let mut dots = 0;
    for i in (0..b.len()).rev() {
        if b[i] == b'.' {
            dots += 1;
            if dots == 2 {
                return i + 1;
            }
        }
    }
    0
}

/// The last two labels of a name (all of it when it has fewer).
fn tail(name: &str) -> &str {
    &name[tail_start(name)..]
}

/// A query normalised once (and its last two labels found once) for lookups in several sets.
#[derive(Debug, Clone)]
pub struct DomainQuery<'a> {
    name: Cow<'a, str>,
    tail: usize,
}

impl<'a> DomainQuery<'a> {
    /// `None` for an empty name (nothing can match it).
    pub fn new(query: &'a str) -> Option<Self> {
        normalise_query(query).map(Self::of)
    }

    /// A name its caller has already lower-cased (ASCII): only the trailing dot and surrounding
    /// white space are dropped, without the case scan [`DomainQuery::new`] does.
    pub fn lower_case(name: &'a str) -> Option<Self> {
        debug_assert!(!has_ascii_uppercase(name), "{name}");
        bare_name(name).map(|name| Self::of(Cow::Borrowed(name)))
    }

    fn of(name: Cow<'a, str>) -> Self {
        let tail = tail_start(&name);
        Self { name, tail }
    }

    /// The normalised name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn tail(&self) -> &str {
        &self.name[self.tail..]
    }
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
            wildcard_tails: HashSet::new(),
            single_label_wildcard: false,
        }
    }
}

impl<V> DomainSet<V> {
    /// Adds a domain-kind indicator; returns false (and ignores it) for an IP kind. A repeated
    /// entry keeps its first value.
    pub fn insert(&mut self, indicator: &Indicator, value: V) -> bool {
        let (table, key) = match indicator {
            Indicator::Domain(name) => (&mut self.exact, name),
            Indicator::WildcardDomain(suffix) => {
                if suffix.contains('.') {
                    self.wildcard_tails.insert(tail(suffix).to_owned());
                } else {
                    self.single_label_wildcard = true;
                }
                (&mut self.wildcard_suffixes, suffix)
            }
            _ => return false,
        };
        table.entry(key.clone()).or_insert(value);
        true
    }

    pub fn lookup(&self, query: &str) -> Option<DomainMatch<'_, V>> {
        if self.is_empty() {
            return None;
        }
        self.find(&DomainQuery::new(query)?)
    }

    /// [`DomainSet::lookup`] of a query prepared once for several sets.
    pub fn find(&self, query: &DomainQuery<'_>) -> Option<DomainMatch<'_, V>> {
        let name = &*query.name;
        if let Some((_, value)) = self.exact.get_key_value(name) {
            return Some(DomainMatch::Exact(value));
        }
        if self.wildcard_suffixes.is_empty()
            || !self.single_label_wildcard && !self.wildcard_tails.contains(query.tail())
        {
            return None;
        }
        let mut rest = name;
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

/// Whether `s` has an ASCII upper-case letter. Every queried name is checked, and names are
/// short (tens of bytes): eight bytes at a time in a general-purpose register, the last word
/// overlapping the one before, where a vector loop spends as long on its set-up and byte-wise
/// tail as on the name.
pub fn has_ascii_uppercase(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 8 {
        let mut word = [0u8; 8];
        word[..b.len()].copy_from_slice(b);
        return upper_in(u64::from_le_bytes(word));
    }
    let word = |at: usize| u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"));
    let mut upper = false;
    let mut at = 0;
    while at + 8 < b.len() {
        upper |= upper_in(word(at));
        at += 8;
    }
    upper | upper_in(word(b.len() - 8))
}

/// Whether a word has a byte in `A..=Z`. Bytes are taken below 0x80 first, so adding to them
/// carries into no neighbour: `b + 0x3f` reaches 0x80 from `A` (0x41) on, `b + 0x25` from `[`
/// (0x5b) on; bytes that were 0x80 or above are dropped at the end.
fn upper_in(w: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x80 * ONES;
    let low = w & !HIGH;
    let from_a = low + 0x3f * ONES;
    let past_z = low + 0x25 * ONES;
    from_a & !past_z & !w & HIGH != 0
}

/// The query without surrounding white space and one trailing dot; `None` when nothing is left.
fn bare_name(query: &str) -> Option<&str> {
    let trimmed = query.trim_ascii();
    let name = trimmed.strip_suffix('.').unwrap_or(trimmed);
    (!name.is_empty()).then_some(name)
}

/// Queries come from DNS traffic and logs, so they are not validated as strictly as list entries:
/// only case and the trailing dot are normalised.
fn normalise_query(query: &str) -> Option<Cow<'_, str>> {
    let name = bare_name(query)?;
    // Already lower case (the usual query): both normalisers below would return it unchanged,
    // so it is used as it is, without an allocation per lookup.
    if !has_ascii_uppercase(name) {
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
    fn tail_filter_agrees_with_probing_every_parent() {
        // Names from a few labels, so queries share tails with entries without matching them.
        let labels = ["a", "b", "pool", "example", "org", "com", "x1"];
        let name = |mut n: usize, len: usize| {
            let mut parts = Vec::new();
            for _ in 0..len {
                parts.push(labels[n % labels.len()]);
                n /= labels.len();
            }
            parts.join(".")
        };
        for single_label in [false, true] {
            let mut s = DomainSet::default();
            let mut suffixes = Vec::new();
            for i in (0..400).step_by(7) {
                let suffix = name(i, 2 + i % 3);
                s.insert(&Indicator::parse(&format!("*.{suffix}")).unwrap(), ());
                suffixes.push(suffix);
            }
            if single_label {
                // The list parser refuses a wildcard over a whole TLD; the set still handles one.
                s.insert(&Indicator::WildcardDomain("com".into()), ());
                suffixes.push("com".to_owned());
            }
            let mut matched = 0;
            for i in 0..3000 {
                let query = name(i * 13, 1 + i % 5);
                // Reference: any parent suffix (on a label boundary) is an entry.
                let expected = suffixes
                    .iter()
                    .any(|suffix| query.ends_with(&format!(".{suffix}")));
                assert_eq!(
                    s.contains(&query),
                    expected,
                    "{query} (*.com: {single_label})"
                );
                matched += usize::from(expected);
            }
            assert!(matched > 100, "the check saw matches: {matched}");
        }
    }

    #[test]
    fn tails_of_short_and_long_names() {
        assert_eq!(tail("a.b.example.org"), "example.org");
        assert_eq!(tail("example.org"), "example.org");
        assert_eq!(tail("org"), "org");
        assert_eq!(tail("x..org"), ".org");
        let q = DomainQuery::new(" Sub.Example.ORG. ").unwrap();
        assert_eq!((q.name(), q.tail()), ("sub.example.org", "example.org"));
        assert!(DomainQuery::new("").is_none() && DomainQuery::new(".").is_none());
        let lower = DomainQuery::lower_case(" sub.example.org. ").unwrap();
        assert_eq!((lower.name(), lower.tail()), (q.name(), q.tail()));
        assert!(DomainQuery::lower_case(" . ").is_none());
        let mut s = set(&[("*.b.example.org", 2)]);
        s.insert(&Indicator::WildcardDomain("com".into()), 1);
        assert_eq!(s.lookup("a.example.com").map(|m| *m.value()), Some(1));
        assert_eq!(s.lookup("x.b.example.org").map(|m| *m.value()), Some(2));
        assert_eq!(s.lookup("x.c.example.org"), None);
        assert_eq!(s.lookup("b.example.org"), None);
        assert_eq!(s.lookup("com"), None);
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

    /// The word-at-a-time check against the byte-wise definition: every byte value at every
    /// position of names of every length up to 40 (the tail word overlaps the one before), and
    /// random text with non-ASCII bytes.
    #[test]
    fn upper_case_check_is_byte_wise_is_ascii_uppercase() {
        let reference = |b: &[u8]| b.iter().any(u8::is_ascii_uppercase);
        for len in 1..=40usize {
            for at in 0..len {
                for v in 0..=0x7fu8 {
                    let mut name = vec![b'a'; len];
                    name[at] = v;
                    let s = std::str::from_utf8(&name).unwrap();
                    assert_eq!(
                        has_ascii_uppercase(s),
                        reference(&name),
                        "{len} {at} {v:#x}"
                    );
                }
            }
        }
        assert!(!has_ascii_uppercase(""));
        let mut rng = crate::test_rng::XorShift(0x9e37_79b9_7f4a_7c15);
        for _ in 0..20_000 {
            let x = rng.next();
            let len = (x % 48) as usize;
            // Letters, digits, dots, accented letters (two bytes, both >= 0x80) and symbols.
            let alphabet = [
                "a", "Z", "m", "0", ".", "-", "é", "Ä", "@", "[", "`", "{", "ß",
            ];
            let s: String = (0..len)
                .map(|i| alphabet[((x >> (i % 60)) as usize + i) % alphabet.len()])
                .collect();
            assert_eq!(has_ascii_uppercase(&s), reference(s.as_bytes()), "{s:?}");
        }
    }
}
