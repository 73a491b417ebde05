//! All active lists together, answering "is this address / domain trusted, listed as a threat, or
//! neither?" with GuardDuty's precedence: an entry on a trusted list wins over any threat list.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::domainset::DomainQuery;
use super::indicator::is_publicly_routable;
use super::list::{IntelList, ListKind, ListRole};

/// The answer for one address or domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict<'a> {
    /// On no list.
    Clean,
    /// On a trusted list: no finding, whatever threat lists say.
    Trusted { list: &'a str },
    /// On these threat lists (names go to `additionalInfo.threatListName` and evidence).
    Threat { lists: Vec<&'a str> },
}

#[derive(Debug, Clone)]
pub struct IntelIndex {
    lists: Vec<Arc<IntelList>>,
    public_only: bool,
    /// Differs between any two contents an index has had in this process (see
    /// [`IntelIndex::generation`]); a clone has its original's.
    generation: u64,
}

impl Default for IntelIndex {
    fn default() -> Self {
        Self {
            lists: Vec::new(),
            public_only: true,
            generation: next_generation(),
        }
    }
}

fn next_generation() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

impl IntelIndex {
    pub fn new(lists: impl IntoIterator<Item = Arc<IntelList>>) -> Self {
        Self {
            lists: lists.into_iter().collect(),
            ..Self::default()
        }
    }

    /// GuardDuty applies lists to publicly routable addresses only (the default here). Turning
    /// this off lets lab setups list private test addresses.
    pub fn with_public_only(mut self, public_only: bool) -> Self {
        self.public_only = public_only;
        self.generation = next_generation();
        self
    }

    pub fn add(&mut self, list: Arc<IntelList>) {
        self.lists.push(list);
        self.generation = next_generation();
    }

    /// Replaces the list with the same name (after a reload), or adds it.
    pub fn replace(&mut self, list: Arc<IntelList>) {
        match self.lists.iter_mut().find(|l| l.name == list.name) {
            Some(slot) => *slot = list,
            None => self.lists.push(list),
        }
        self.generation = next_generation();
    }

    /// Identifies this content of the index: verdicts remembered under one generation hold as
    /// long as the index answering has it (a new or changed index has another).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn lists(&self) -> &[Arc<IntelList>] {
        &self.lists
    }

    /// Address lookup for flow-log, CloudTrail and runtime network findings. IP lists and entity
    /// lists both apply.
    pub fn check_ip(&self, ip: Ipv4Addr) -> Verdict<'_> {
        if self.public_only && !is_publicly_routable(ip) {
            return Verdict::Clean;
        }
        self.verdict(|list| list.contains_ip(ip))
    }

    /// Starts loading what [`IntelIndex::check_ip`] of `ip` reads first into the cache (a hint
    /// for a caller that knows the address before it needs the verdict; it changes nothing).
    pub fn prefetch_ip(&self, ip: Ipv4Addr) {
        if self.public_only && !is_publicly_routable(ip) {
            return;
        }
        for list in &self.lists {
            list.prefetch_ip(ip);
        }
    }

    /// Domain lookup for DNS findings. Only entity lists apply (GuardDuty's IP lists do not
    /// apply to DNS findings, and cannot hold domains anyway).
    pub fn check_domain(&self, domain: &str) -> Verdict<'_> {
        match DomainQuery::new(domain) {
            Some(query) => self.check_domain_query(&query),
            None => Verdict::Clean,
        }
    }

    /// [`IntelIndex::check_domain`] of a query prepared once for several lookups.
    pub fn check_domain_query(&self, query: &DomainQuery<'_>) -> Verdict<'_> {
        self.verdict(|list| list.kind == ListKind::EntityList && list.contains_domain_query(query))
    }

    /// Executable lookup for runtime findings, by SHA-256 (any case). Hashes load only into
    /// entity lists.
    pub fn check_sha256(&self, sha256: &str) -> Verdict<'_> {
        if self.lists.is_empty() {
            return Verdict::Clean;
        }
        let sha256 = sha256.to_ascii_lowercase();
        self.verdict(|list| list.contains_sha256(&sha256))
    }

    fn verdict(&self, matches: impl Fn(&IntelList) -> bool) -> Verdict<'_> {
        if let Some(list) = self
            .lists
            .iter()
            .find(|l| l.role == ListRole::Trusted && matches(l))
        {
            return Verdict::Trusted { list: &list.name };
        }
        // The usual answer is Clean: found without setting up a collection.
        let mut threats = self
            .lists
            .iter()
            .filter(|l| l.role == ListRole::Threat && matches(l))
            .map(|l| l.name.as_str());
        let Some(first) = threats.next() else {
            return Verdict::Clean;
        };
        let mut lists = vec![first];
        lists.extend(threats);
        Verdict::Threat { lists }
    }
}
