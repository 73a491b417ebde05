//! Intel shipped inside the binary: GuardDuty's test domains and a curated list of
//! cryptocurrency mining pools. The data files live in `collector/intel/` and are embedded at
//! build time, so they need no deployment step and are covered by tests.

use std::sync::OnceLock;

use super::domainset::{DomainQuery, DomainSet};
use super::formats::ListFormat;
use super::indicator::Indicator;
use super::list::{IntelList, ListKind, ListRole};
use crate::findings::{AffectedResource, FindingType};

const TEST_DOMAINS: &str = include_str!("../../intel/guardduty-test-domains.txt");
const MINING_POOLS: &str = include_str!("../../intel/mining-pools.txt");

/// `additionalInfo.threatListName` / evidence list name for mining-pool hits.
pub const MINING_POOL_LIST_NAME: &str = "WardCryptoMiningPools";

/// Parses the test-domain table: `domain  Type  Type…` per line, `#` comments.
fn parse_test_domains(text: &str) -> Result<DomainSet<Vec<FindingType>>, String> {
    let mut set = DomainSet::default();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at =
            |message: String| format!("guardduty-test-domains.txt line {}: {message}", index + 1);
        let mut words = line.split_whitespace();
        let domain = words.next().expect("non-empty line has a word");
        let indicator = Indicator::parse(domain).map_err(at)?;
        let types = words
            .map(|w| w.parse::<FindingType>().map_err(|e| at(e.to_string())))
            .collect::<Result<Vec<_>, _>>()?;
        if types.is_empty() {
            return Err(at(format!("{domain} names no finding type")));
        }
        set.insert(&indicator, types);
    }
    Ok(set)
}

/// The GuardDuty test domains mapped to the finding types they raise.
pub fn test_domains() -> &'static DomainSet<Vec<FindingType>> {
    static SET: OnceLock<DomainSet<Vec<FindingType>>> = OnceLock::new();
    SET.get_or_init(|| {
        parse_test_domains(TEST_DOMAINS)
            .expect("embedded test-domain table is valid (checked by tests)")
    })
}

/// The finding a query for `domain` raises when it is a GuardDuty test domain: the EC2 variant
/// for DNS-log detections, the Runtime variant for agent detections.
pub fn test_domain_finding(domain: &str, resource: AffectedResource) -> Option<FindingType> {
    test_domain_finding_for(&DomainQuery::new(domain)?, resource)
}

/// [`test_domain_finding`] of a query prepared once for several lookups.
pub fn test_domain_finding_for(
    query: &DomainQuery<'_>,
    resource: AffectedResource,
) -> Option<FindingType> {
    let types = test_domains().find(query)?.value();
    types
        .iter()
        .copied()
        .find(|t| t.affected_resource() == resource)
}

/// The curated mining-pool entity list (a threat list).
pub fn mining_pools() -> &'static IntelList {
    static LIST: OnceLock<IntelList> = OnceLock::new();
    LIST.get_or_init(|| {
        IntelList::parse(
            MINING_POOL_LIST_NAME,
            ListRole::Threat,
            ListKind::EntityList,
            ListFormat::Txt,
            MINING_POOLS,
        )
    })
}

/// The finding a mining-pool query raises for the given resource family, if any.
pub fn mining_pool_finding(domain: &str, resource: AffectedResource) -> Option<FindingType> {
    mining_pool_finding_for(&DomainQuery::new(domain)?, resource)
}

/// [`mining_pool_finding`] of a query prepared once for several lookups.
pub fn mining_pool_finding_for(
    query: &DomainQuery<'_>,
    resource: AffectedResource,
) -> Option<FindingType> {
    if !mining_pools().contains_domain_query(query) {
        return None;
    }
    match resource {
        AffectedResource::Ec2 => Some(FindingType::CryptoCurrencyEc2BitcoinToolBDns),
        AffectedResource::Runtime => Some(FindingType::CryptoCurrencyRuntimeBitcoinToolBDns),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_files_load_without_errors() {
        assert_eq!(test_domains().len(), 12);
        let pools = mining_pools();
        assert!(pools.report.errors.is_empty(), "{:?}", pools.report.errors);
        assert!(pools.report.loaded >= 50, "{}", pools.report);
    }

    #[test]
    fn test_domains_map_to_resource_specific_types() {
        assert_eq!(
            test_domain_finding("c2.GuardDutyC2ActivityB.com.", AffectedResource::Runtime),
            Some(FindingType::BackdoorRuntimeCncActivityBDns)
        );
        assert_eq!(
            test_domain_finding("guarddutyc2activityb.com", AffectedResource::Ec2),
            Some(FindingType::BackdoorEc2CncActivityBDns)
        );
        assert_eq!(
            test_domain_finding("crypto.guarddutyc2activityb.com", AffectedResource::Ec2),
            Some(FindingType::CryptoCurrencyEc2BitcoinToolBDns)
        );
        assert_eq!(
            test_domain_finding("other.guarddutyc2activityb.com", AffectedResource::Ec2),
            None
        );
        assert_eq!(
            test_domain_finding("guarddutyc2activityb.com", AffectedResource::S3),
            None
        );
    }

    #[test]
    fn mining_pools_match_stratum_hosts_not_lookalikes() {
        assert_eq!(
            mining_pool_finding("pool.supportxmr.com", AffectedResource::Runtime),
            Some(FindingType::CryptoCurrencyRuntimeBitcoinToolBDns)
        );
        assert!(mining_pools().contains_domain("xmr-eu1.nanopool.org"));
        assert!(mining_pools().contains_domain("xmr.pool.minergate.com"));
        assert!(mining_pools().contains_domain("donate.v2.xmrig.com"));
        assert!(
            !mining_pools().contains_domain("xmrig.com"),
            "apex of the miner's project site is not listed"
        );
        assert!(!mining_pools().contains_domain("notnanopool.org"));
        assert_eq!(
            mining_pool_finding("example.com", AffectedResource::Ec2),
            None
        );
    }

    #[test]
    fn malformed_test_domain_tables_are_rejected_with_line_numbers() {
        let err = parse_test_domains("# c\nexample.com  Nope:EC2/Missing\n").unwrap_err();
        assert!(
            err.contains("line 2") && err.contains("Nope:EC2/Missing"),
            "{err}"
        );
        let err = parse_test_domains("\n\nexample.com\n").unwrap_err();
        assert!(
            err.contains("line 3") && err.contains("names no finding type"),
            "{err}"
        );
        let err = parse_test_domains("not_a domain..x Recon:EC2/Portscan\n").unwrap_err();
        assert!(err.contains("line 1"), "{err}");
    }
}
