//! Engine settings shared by rules and detectors.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use super::signal::HostIdentity;
use crate::findings::{FindingType, Scope};

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
}

impl ThreatCategory {
    pub const NAMES: &str =
        "custom, cnc, bitcoin, blackhole, droppoint, tor, dga, driveby, phishing";

    /// The finding a hit raises: for a DNS name when `dns`, else for a connection's address.
    /// Categories that only make sense for one of them fall back to the `.Custom` type.
    pub fn finding_type(self, dns: bool) -> FindingType {
        use FindingType as T;
        match (self, dns) {
            (Self::CommandAndControl, false) => T::BackdoorRuntimeCncActivityB,
            (Self::CommandAndControl, true) => T::BackdoorRuntimeCncActivityBDns,
            (Self::Bitcoin, false) => T::CryptoCurrencyRuntimeBitcoinToolB,
            (Self::Bitcoin, true) => T::CryptoCurrencyRuntimeBitcoinToolBDns,
            (Self::Blackhole, false) => T::TrojanRuntimeBlackholeTraffic,
            (Self::Blackhole, true) => T::TrojanRuntimeBlackholeTrafficDns,
            (Self::DropPoint, false) => T::TrojanRuntimeDropPoint,
            (Self::DropPoint, true) => T::TrojanRuntimeDropPointDns,
            (Self::TorNode, false) => T::UnauthorizedAccessRuntimeTorClient,
            (Self::Dga, true) => T::TrojanRuntimeDgaDomainRequestCDns,
            (Self::DriveBy, true) => T::TrojanRuntimeDriveBySourceTrafficDns,
            (Self::Phishing, true) => T::TrojanRuntimePhishingDomainRequestDns,
            (_, true) => T::ImpactEc2MaliciousDomainRequestCustom,
            (_, false) => T::UnauthorizedAccessEc2MaliciousIpCallerCustom,
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

/// How the engine runs.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Account, Region and detector the findings are filed under.
    pub scope: Scope,
    /// The host the events come from.
    pub host: HostIdentity,
    /// GuardDuty raises some types only for container workloads (NewBinaryExecuted,
    /// ContainerMountsHostDirectory, DockerSocketAccessed, RuncContainerEscape: rules marked
    /// `containers_only`). On (default off), they are raised for host processes as well.
    pub container_rules_on_hosts: bool,
    /// NewBinaryExecuted: how long (event time) each container or host is watched before an
    /// executable never seen there counts as new.
    pub learning_period_ms: i64,
    /// Operator threat lists by name → category (lists not named here are `.Custom`).
    pub threat_categories: HashMap<String, ThreatCategory>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            scope: Scope::new("000000000000", "us-east-1", "ward"),
            host: HostIdentity {
                instance_id: "i-unknown".into(),
                ..HostIdentity::default()
            },
            container_rules_on_hosts: false,
            learning_period_ms: 10 * 60 * 1000,
            threat_categories: HashMap::new(),
        }
    }
}
