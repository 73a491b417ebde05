//! The host identity the agent announces in its Hello: local facts (hostname, boot id, kernel) plus cloud
//! facts from IMDS, or from configuration when IMDS is off or unreachable. The collector authenticates
//! the agent by its certificate; these fields describe the host, they do not prove anything.

use std::time::Duration;

use ward_proto::v1::HostIdentity;

use super::imds::{self, ImdsEndpoint};

/// Cloud facts given by configuration (used when IMDS is off or fails, and to fill what it lacks).
#[derive(Clone, Debug, Default)]
pub struct ConfiguredIdentity {
    pub instance_id: String,
    pub region: String,
    pub account_id: String,
    pub private_ips: Vec<String>,
    pub kubernetes_node: String,
}

pub async fn resolve(
    agent_id: &str,
    imds: &ImdsEndpoint,
    imds_timeout: Duration,
    configured: &ConfiguredIdentity,
) -> HostIdentity {
    let mut host = match imds {
        ImdsEndpoint::Off => HostIdentity::default(),
        ImdsEndpoint::Http(endpoint) => match imds::fetch(endpoint, imds_timeout).await {
            Ok(h) => h,
            Err(e) => {
                tracing::info!("instance metadata unavailable, using configured identity: {e:#}");
                HostIdentity::default()
            }
        },
    };
    let fill = |field: &mut String, value: &str| {
        if field.is_empty() {
            *field = value.to_string();
        }
    };
    let from_config = host.identity_source.is_empty()
        && !(configured.instance_id.is_empty()
            && configured.region.is_empty()
            && configured.account_id.is_empty());
    fill(&mut host.instance_id, &configured.instance_id);
    fill(&mut host.region, &configured.region);
    fill(&mut host.account_id, &configured.account_id);
    if host.private_ips.is_empty() {
        host.private_ips = configured.private_ips.clone();
    }
    if from_config {
        host.identity_source = "config".into();
    }
    let k8s = if configured.kubernetes_node.is_empty() {
        // The DaemonSet convention: the downward API puts spec.nodeName in NODE_NAME.
        std::env::var("NODE_NAME").unwrap_or_default()
    } else {
        configured.kubernetes_node.clone()
    };
    host.kubernetes_node = k8s;
    host.agent_id = agent_id.to_string();
    host.hostname = hostname();
    host.boot_id = read_trim("/proc/sys/kernel/random/boot_id");
    host.kernel_release = read_trim("/proc/sys/kernel/osrelease");
    host.agent_version = env!("CARGO_PKG_VERSION").to_string();
    host
}

fn read_trim(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

pub fn hostname() -> String {
    read_trim("/proc/sys/kernel/hostname")
}
