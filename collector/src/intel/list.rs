//! One loaded trusted or threat list: its entries indexed for lookup plus a report of what loaded.

use std::collections::HashSet;
use std::fmt;
use std::net::Ipv4Addr;

use super::domainset::{DomainQuery, DomainSet};
use super::formats::{LineError, ListFormat, ParsedList};
use super::indicator::Indicator;
use super::ipset::{IpSet, IpSetBuilder};

/// Trusted entries suppress findings; threat entries raise `.Custom` findings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ListRole {
    Trusted,
    Threat,
}

/// GuardDuty's two list families. IP lists (`IPSet` / `ThreatIntelSet`) hold IPv4 addresses and
/// CIDR blocks only and do not apply to DNS findings; entity lists (`TrustedEntitySet` /
/// `ThreatEntitySet`) also hold domain names and apply to DNS findings too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ListKind {
    IpList,
    EntityList,
}

/// What loading a list produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Entries accepted.
    pub loaded: usize,
    /// Lines rejected, with their numbers; the rest of the list loaded.
    pub errors: Vec<LineError>,
    /// Well-formed rows without a network indicator (e.g. file hashes), ignored on purpose.
    pub skipped: usize,
}

impl fmt::Display for LoadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} entries loaded, {} lines rejected, {} rows skipped",
            self.loaded,
            self.errors.len(),
            self.skipped
        )
    }
}

#[derive(Debug, Clone)]
pub struct IntelList {
    pub name: String,
    pub role: ListRole,
    pub kind: ListKind,
    pub format: ListFormat,
    ips: IpSet,
    domains: DomainSet<()>,
    /// File SHA-256s, lower-case hex.
    hashes: HashSet<String>,
    pub report: LoadReport,
}

impl IntelList {
    /// Parses `text` in `format`. Never fails as a whole: bad lines are reported in `report`.
    pub fn parse(
        name: impl Into<String>,
        role: ListRole,
        kind: ListKind,
        format: ListFormat,
        text: &str,
    ) -> Self {
        Self::from_parsed(name, role, kind, format, format.parse_list(text))
    }

    pub fn from_parsed(
        name: impl Into<String>,
        role: ListRole,
        kind: ListKind,
        format: ListFormat,
        parsed: ParsedList,
    ) -> Self {
        let ParsedList {
            entries,
            mut errors,
            skipped,
        } = parsed;
        let mut ips = IpSetBuilder::default();
        let mut domains = DomainSet::default();
        let mut hashes = HashSet::new();
        let mut loaded = 0;
        for entry in entries {
            if let Indicator::Sha256(hash) = entry.indicator {
                if kind == ListKind::IpList {
                    errors.push(LineError {
                        line: entry.line,
                        message: format!("{hash} is a file hash; IP lists hold only IPv4 addresses and CIDR blocks (use an entity list)"),
                    });
                    continue;
                }
                hashes.insert(hash);
            } else if entry.indicator.is_domain() {
                if kind == ListKind::IpList {
                    errors.push(LineError {
                        line: entry.line,
                        message: format!("{} is a domain name; IP lists hold only IPv4 addresses and CIDR blocks (use an entity list)", entry.indicator),
                    });
                    continue;
                }
                domains.insert(&entry.indicator, ());
            } else {
                ips.add(&entry.indicator);
            }
            loaded += 1;
        }
        errors.sort_by_key(|e| e.line);
        Self {
            name: name.into(),
            role,
            kind,
            format,
            ips: ips.build(),
            domains,
            hashes,
            report: LoadReport {
                loaded,
                errors,
                skipped,
            },
        }
    }

    pub fn contains_ip(&self, ip: Ipv4Addr) -> bool {
        self.ips.contains(ip)
    }

    /// Starts loading what [`IntelList::contains_ip`] of `ip` reads first (a hint).
    pub fn prefetch_ip(&self, ip: Ipv4Addr) {
        self.ips.prefetch(ip);
    }

    pub fn contains_domain(&self, domain: &str) -> bool {
        self.domains.contains(domain)
    }

    pub fn contains_domain_query(&self, query: &DomainQuery<'_>) -> bool {
        !self.domains.is_empty() && self.domains.find(query).is_some()
    }

    /// `sha256` in lower-case hex.
    pub fn contains_sha256(&self, sha256: &str) -> bool {
        self.hashes.contains(sha256)
    }
}
