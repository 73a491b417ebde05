//! Which finding a DNS name or a remote address raises, shared by the runtime intel detector
//! (agent DNS and connection events) and the cloud-log detectors (Route 53 Resolver query logs,
//! VPC Flow Logs), so the two families classify an indicator the same way:
//!
//! 1. a trusted list wins over everything (GuardDuty's rule), test domains included;
//! 2. GuardDuty's test domains (spec §5.5) raise their type;
//! 3. Ward's mining-pool list raises `BitcoinTool.B!DNS`;
//! 4. operator threat lists raise the type of their [`ThreatCategory`], `.Custom` by default.
//!
//! The Runtime and EC2 families differ only in the type names picked ([`AffectedResource`]).
//!
//! "Reputation" without GuardDuty's models: the `Impact:*/…DomainRequest.Reputation` types are
//! raised for the GuardDuty test domains and for operator lists given one of the reputation
//! categories (`abused-rep`, `crypto-rep`, `malicious-rep`, `suspicious-rep`); Ward has no
//! domain-age or popularity model of its own.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use super::builtin::{MINING_POOL_LIST_NAME, mining_pool_finding_for, test_domain_finding_for};
use super::domainset::DomainQuery;
use super::index::{IntelIndex, Verdict};
use crate::findings::{AffectedResource, FindingType};

/// What kind of threat an operator's threat list names. GuardDuty's own intel says which threat
/// an address or domain is (C&C server, mining pool…) and raises the matching type; an operator
/// list says it by this category. Lists without one raise the `.Custom` types, as GuardDuty does
/// for customer threat lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ThreatCategory {
    Custom,
    CommandAndControl,
    Bitcoin,
    Blackhole,
    DropPoint,
    TorNode,
    Dga,
    DriveBy,
    Phishing,
    AbusedReputation,
    BitcoinReputation,
    MaliciousReputation,
    SuspiciousReputation,
    /// Known-malicious files, by SHA-256.
    Malware,
}

/// Whether the indicator is a queried name or a connection's address (and, for addresses, who
/// opened the connection: a Tor node connecting in makes the instance a relay).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndicatorUse {
    Domain,
    Outbound,
    Inbound,
}

impl ThreatCategory {
    pub const NAMES: &str = "custom, cnc, bitcoin, blackhole, droppoint, tor, dga, driveby, phishing, abused-rep, crypto-rep, malicious-rep, suspicious-rep, malware";

    /// The Runtime finding a hit raises: for a DNS name when `dns`, else for a connection's
    /// address. Categories that only make sense for one of them fall back to the `.Custom` type.
    pub fn finding_type(self, dns: bool) -> FindingType {
        let usage = if dns {
            IndicatorUse::Domain
        } else {
            IndicatorUse::Outbound
        };
        self.finding_type_for(usage, AffectedResource::Runtime)
    }

    /// The finding a hit raises for `resource` (Runtime or EC2; any other family gets the EC2
    /// names, the only other family with network indicators).
    pub fn finding_type_for(self, usage: IndicatorUse, resource: AffectedResource) -> FindingType {
        use FindingType as T;
        use IndicatorUse::{Domain, Inbound, Outbound};
        let runtime = resource == AffectedResource::Runtime;
        let pick = |rt: FindingType, ec2: FindingType| if runtime { rt } else { ec2 };
        match (self, usage) {
            (Self::CommandAndControl, Domain) => pick(
                T::BackdoorRuntimeCncActivityBDns,
                T::BackdoorEc2CncActivityBDns,
            ),
            (Self::CommandAndControl, _) => {
                pick(T::BackdoorRuntimeCncActivityB, T::BackdoorEc2CncActivityB)
            }
            (Self::Bitcoin, Domain) => pick(
                T::CryptoCurrencyRuntimeBitcoinToolBDns,
                T::CryptoCurrencyEc2BitcoinToolBDns,
            ),
            (Self::Bitcoin, _) => pick(
                T::CryptoCurrencyRuntimeBitcoinToolB,
                T::CryptoCurrencyEc2BitcoinToolB,
            ),
            (Self::Blackhole, Domain) => pick(
                T::TrojanRuntimeBlackholeTrafficDns,
                T::TrojanEc2BlackholeTrafficDns,
            ),
            (Self::Blackhole, _) => pick(
                T::TrojanRuntimeBlackholeTraffic,
                T::TrojanEc2BlackholeTraffic,
            ),
            (Self::DropPoint, Domain) => {
                pick(T::TrojanRuntimeDropPointDns, T::TrojanEc2DropPointDns)
            }
            (Self::DropPoint, _) => pick(T::TrojanRuntimeDropPoint, T::TrojanEc2DropPoint),
            (Self::TorNode, Outbound) => pick(
                T::UnauthorizedAccessRuntimeTorClient,
                T::UnauthorizedAccessEc2TorClient,
            ),
            (Self::TorNode, Inbound) => pick(
                T::UnauthorizedAccessRuntimeTorRelay,
                T::UnauthorizedAccessEc2TorRelay,
            ),
            (Self::Dga, Domain) => pick(
                T::TrojanRuntimeDgaDomainRequestCDns,
                T::TrojanEc2DgaDomainRequestCDns,
            ),
            (Self::DriveBy, Domain) => pick(
                T::TrojanRuntimeDriveBySourceTrafficDns,
                T::TrojanEc2DriveBySourceTrafficDns,
            ),
            (Self::Phishing, Domain) => pick(
                T::TrojanRuntimePhishingDomainRequestDns,
                T::TrojanEc2PhishingDomainRequestDns,
            ),
            (Self::AbusedReputation, Domain) => pick(
                T::ImpactRuntimeAbusedDomainRequestReputation,
                T::ImpactEc2AbusedDomainRequestReputation,
            ),
            (Self::BitcoinReputation, Domain) => pick(
                T::ImpactRuntimeBitcoinDomainRequestReputation,
                T::ImpactEc2BitcoinDomainRequestReputation,
            ),
            (Self::MaliciousReputation, Domain) => pick(
                T::ImpactRuntimeMaliciousDomainRequestReputation,
                T::ImpactEc2MaliciousDomainRequestReputation,
            ),
            (Self::SuspiciousReputation, Domain) => pick(
                T::ImpactRuntimeSuspiciousDomainRequestReputation,
                T::ImpactEc2SuspiciousDomainRequestReputation,
            ),
            // GuardDuty has no Runtime `.Custom` types (the Runtime MaliciousIPCaller.Custom is
            // retired); customer-list hits are the EC2 ones for both families.
            (_, Domain) => T::ImpactEc2MaliciousDomainRequestCustom,
            (_, _) => T::UnauthorizedAccessEc2MaliciousIpCallerCustom,
        }
    }
}

impl ThreatCategory {
    /// The finding for an executable whose SHA-256 is on a list of this category: an operator
    /// list that says what it holds raises GuardDuty's own type, a plain one the `.Custom` type.
    pub fn file_finding_type(self) -> FindingType {
        match self {
            Self::Custom => FindingType::ExecutionRuntimeMaliciousFileExecutedCustom,
            _ => FindingType::ExecutionRuntimeMaliciousFileExecuted,
        }
    }
}

impl FromStr for ThreatCategory {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "custom" => Self::Custom,
            "cnc" | "c2" | "c&c" => Self::CommandAndControl,
            "bitcoin" | "crypto" | "mining" => Self::Bitcoin,
            "blackhole" | "sinkhole" => Self::Blackhole,
            "droppoint" => Self::DropPoint,
            "tor" => Self::TorNode,
            "dga" => Self::Dga,
            "driveby" => Self::DriveBy,
            "phishing" => Self::Phishing,
            "abused-rep" => Self::AbusedReputation,
            "crypto-rep" | "bitcoin-rep" => Self::BitcoinReputation,
            "malicious-rep" => Self::MaliciousReputation,
            "suspicious-rep" => Self::SuspiciousReputation,
            "malware" => Self::Malware,
            other => {
                return Err(format!(
                    "unknown threat category {other:?} (expected one of: {})",
                    Self::NAMES
                ));
            }
        })
    }
}

impl fmt::Display for ThreatCategory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self:?}")
    }
}

/// One finding an indicator raises.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    pub finding_type: FindingType,
    /// Which classification step matched (`…test-domain`, `…mining-pool`, `…threat-list`),
    /// appended to the caller's rule-id prefix.
    pub rule: &'static str,
    /// Threat lists behind the hit (comma-joined for `additionalInfo.threatListName`); empty for
    /// test domains.
    pub lists: Vec<String>,
}

impl Hit {
    pub fn threat_list_name(&self) -> Option<String> {
        (!self.lists.is_empty()).then(|| self.lists.join(","))
    }
}

/// Classifies a queried name (already normalised: lower case, no trailing dot). `category` gives
/// each threat list's category (`None` = `.Custom`).
pub fn classify_domain(
    name: &str,
    intel: &IntelIndex,
    category: &dyn Fn(&str) -> Option<ThreatCategory>,
    resource: AffectedResource,
    out: &mut Vec<Hit>,
) {
    // Prepared once for the three lookups below; the name is lower case already.
    let Some(query) = DomainQuery::lower_case(name) else {
        return;
    };
    let verdict = intel.check_domain_query(&query);
    if matches!(verdict, Verdict::Trusted { .. }) {
        return;
    }
    if let Some(t) = test_domain_finding_for(&query, resource) {
        out.push(Hit {
            finding_type: t,
            rule: "test-domain",
            lists: Vec::new(),
        });
        return;
    }
    if let Some(t) = mining_pool_finding_for(&query, resource) {
        out.push(Hit {
            finding_type: t,
            rule: "mining-pool",
            lists: vec![MINING_POOL_LIST_NAME.to_owned()],
        });
        return;
    }
    if let Verdict::Threat { lists } = verdict {
        by_category(&lists, category, IndicatorUse::Domain, resource, out);
    }
}

/// Classifies a connection's remote IPv4 address (GuardDuty lists hold IPv4 only).
pub fn classify_ip(
    ip: Ipv4Addr,
    usage: IndicatorUse,
    intel: &IntelIndex,
    category: &dyn Fn(&str) -> Option<ThreatCategory>,
    resource: AffectedResource,
    out: &mut Vec<Hit>,
) {
    if let Verdict::Threat { lists } = intel.check_ip(ip) {
        by_category(&lists, category, usage, resource, out);
    }
}

/// One hit per finding type: several lists of one category fold into one.
fn by_category(
    lists: &[&str],
    category: &dyn Fn(&str) -> Option<ThreatCategory>,
    usage: IndicatorUse,
    resource: AffectedResource,
    out: &mut Vec<Hit>,
) {
    let first = out.len();
    for list in lists {
        let t = category(list)
            .unwrap_or(ThreatCategory::Custom)
            .finding_type_for(usage, resource);
        match out[first..].iter_mut().find(|h| h.finding_type == t) {
            Some(hit) => hit.lists.push((*list).to_owned()),
            None => out.push(Hit {
                finding_type: t,
                rule: "threat-list",
                lists: vec![(*list).to_owned()],
            }),
        }
    }
}

/// The instance metadata service addresses a DNS-rebinding attack aims at.
pub const METADATA_ADDRESSES: &[&str] = &["169.254.169.254", "fd00:ec2::254"];
/// Names that legitimately resolve to it.
pub const METADATA_NAMES: &[&str] = &[
    "instance-data",
    "instance-data.ec2.internal",
    "metadata.google.internal",
    "metadata",
];

/// For a name (normalised) and its answers: the metadata address it resolved to when that makes
/// it a rebinding attempt (not a legitimate metadata name, not trusted).
pub fn metadata_rebind<'a>(
    name: &str,
    answers: impl Iterator<Item = &'a str>,
    intel: &IntelIndex,
) -> Option<&'a str> {
    let answer = answers
        .map(trim_answer)
        .find(|a| METADATA_ADDRESSES.contains(a))?;
    if METADATA_NAMES.contains(&name) || matches!(intel.check_domain(name), Verdict::Trusted { .. })
    {
        return None;
    }
    Some(answer)
}

/// `answer.trim()`, without its Unicode walk from both ends for the usual answer, which starts
/// and ends with a printable ASCII byte and so has nothing to trim (every answer of every query
/// comes through here).
fn trim_answer(answer: &str) -> &str {
    let b = answer.as_bytes();
    match (b.first(), b.last()) {
        (Some(first), Some(last)) if first.is_ascii_graphic() && last.is_ascii_graphic() => answer,
        _ => answer.trim(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intel::{IntelList, ListFormat, ListKind, ListRole};
    use std::sync::Arc;

    fn index(lists: &[(&str, ListRole, &str)]) -> IntelIndex {
        IntelIndex::new(lists.iter().map(|(name, role, text)| {
            Arc::new(IntelList::parse(
                *name,
                *role,
                ListKind::EntityList,
                ListFormat::Txt,
                text,
            ))
        }))
    }

    fn classify(name: &str, intel: &IntelIndex, resource: AffectedResource) -> Vec<FindingType> {
        let category = |list: &str| (list == "c2").then_some(ThreatCategory::CommandAndControl);
        let mut out = Vec::new();
        classify_domain(name, intel, &category, resource, &mut out);
        out.into_iter().map(|h| h.finding_type).collect()
    }

    /// The shortcut for answers with nothing to trim agrees with `str::trim` on every border
    /// byte (ASCII white space including vertical tab, printable, control, non-ASCII space).
    #[test]
    fn answers_trim_like_str_trim() {
        let borders = [
            "", " ", "\t", "\n", "\r", "\u{b}", "\u{c}", "\u{1f}", "\u{85}", "\u{a0}", "\u{3000}",
            "x", "é", "1",
        ];
        for core in ["169.254.169.254", "fd00:ec2::254", "a", "10.0.0.1", ""] {
            for pre in borders {
                for post in borders {
                    let answer = format!("{pre}{core}{post}");
                    assert_eq!(trim_answer(&answer), answer.trim(), "{answer:?}");
                }
            }
        }
    }

    #[test]
    fn same_indicator_gives_the_runtime_or_ec2_twin() {
        let intel = index(&[
            ("c2", ListRole::Threat, "evil.example.org\n"),
            (
                "other",
                ListRole::Threat,
                "evil.example.org\nbad.example.net\n",
            ),
        ]);
        assert_eq!(
            classify("evil.example.org", &intel, AffectedResource::Ec2),
            [
                FindingType::BackdoorEc2CncActivityBDns,
                FindingType::ImpactEc2MaliciousDomainRequestCustom
            ]
        );
        assert_eq!(
            classify("evil.example.org", &intel, AffectedResource::Runtime),
            [
                FindingType::BackdoorRuntimeCncActivityBDns,
                FindingType::ImpactEc2MaliciousDomainRequestCustom
            ]
        );
        assert_eq!(
            classify(
                "crypto.guarddutyc2activityb.com",
                &intel,
                AffectedResource::Ec2
            ),
            [FindingType::CryptoCurrencyEc2BitcoinToolBDns]
        );
        assert!(classify("example.com", &intel, AffectedResource::Ec2).is_empty());
    }

    #[test]
    fn trusted_lists_win_over_test_domains() {
        let intel = index(&[("ok", ListRole::Trusted, "guarddutyc2activityb.com\n")]);
        assert!(classify("guarddutyc2activityb.com", &intel, AffectedResource::Ec2).is_empty());
    }

    #[test]
    fn tor_nodes_make_clients_outbound_and_relays_inbound() {
        let t = ThreatCategory::TorNode;
        assert_eq!(
            t.finding_type_for(IndicatorUse::Outbound, AffectedResource::Ec2),
            FindingType::UnauthorizedAccessEc2TorClient
        );
        assert_eq!(
            t.finding_type_for(IndicatorUse::Inbound, AffectedResource::Ec2),
            FindingType::UnauthorizedAccessEc2TorRelay
        );
        assert_eq!(
            "suspicious-rep"
                .parse::<ThreatCategory>()
                .unwrap()
                .finding_type_for(IndicatorUse::Domain, AffectedResource::Ec2),
            FindingType::ImpactEc2SuspiciousDomainRequestReputation
        );
        assert!("nope".parse::<ThreatCategory>().is_err());
    }

    #[test]
    fn rebinding_needs_the_metadata_address_and_an_unexpected_name() {
        let intel = IntelIndex::default();
        let answers = ["93.184.216.34", "169.254.169.254"];
        assert_eq!(
            metadata_rebind("rebind.example.com", answers.iter().copied(), &intel),
            Some("169.254.169.254")
        );
        assert_eq!(
            metadata_rebind(
                "instance-data.ec2.internal",
                answers.iter().copied(),
                &intel
            ),
            None
        );
        assert_eq!(
            metadata_rebind("rebind.example.com", ["93.184.216.34"].into_iter(), &intel),
            None
        );
        let near = [
            "169.254.169.25",
            "169.254.169.2540",
            "fd00:ec2::25",
            "fd00:ec2::2541",
        ];
        assert_eq!(
            metadata_rebind("rebind.example.com", near.into_iter(), &intel),
            None
        );
        assert_eq!(
            metadata_rebind(
                "rebind.example.com",
                [" fd00:ec2::254 "].into_iter(),
                &intel
            ),
            Some("fd00:ec2::254")
        );
    }
}
