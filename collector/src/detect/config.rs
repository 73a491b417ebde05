//! Engine settings shared by rules and detectors.

use std::collections::HashMap;

use super::signal::HostIdentity;
use crate::findings::Scope;
/// Operator threat-list categories; shared with the cloud-log detectors, so defined with the intel.
pub use crate::intel::classify::ThreatCategory;

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
