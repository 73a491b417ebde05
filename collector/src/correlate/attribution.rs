//! Process attribution for flow-log and DNS-log findings, and the runtime/log twins of one issue.
//!
//! A foundational finding names the instance (and the remote address or the queried domain) but
//! not the process; the agent on that instance saw the connect or the query. The match is made on
//! the host plus the remote `ip:port` (flow) or the query name (DNS), in the windows documented in
//! [`super::activity`]. The process goes where runtime findings carry it: `runtimeDetails.process`
//! (with lineage) and `service.additionalInfo.ward` (argv, ancestry, container, and how it was
//! matched).
//!
//! Twins: GuardDuty defines the same detection twice, once from the runtime agent
//! (`CryptoCurrency:Runtime/BitcoinTool.B!DNS`) and once from the logs
//! (`CryptoCurrency:EC2/BitcoinTool.B!DNS`). For one host and one indicator (domain or remote
//! address) they are one issue: [`TwinKey`] identifies it.

use std::net::{IpAddr, SocketAddr};

use super::activity::{Activity, ActivityConfig, normalise_name};
use crate::detect::signal::{process_details, ward_process_view};
use crate::findings::time::{format_millis, parse_millis};
use crate::findings::{DataSource, Finding, FindingType, RuntimeDetails, WardAttribution};

/// The identity of one issue seen by both the agent and the logs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct TwinKey {
    pub instance_id: String,
    /// `Purpose/Family` without the resource part, e.g. `CryptoCurrency/BitcoinTool.B!DNS`.
    pub family: String,
    /// The domain (normalised) or the remote address.
    pub indicator: String,
}

/// The finding type's counterpart from the other source, if GuardDuty defines one.
pub fn twin_type(t: FindingType) -> Option<FindingType> {
    let name = t.name();
    let other = match t.source() {
        DataSource::Runtime => name.replacen(":Runtime/", ":EC2/", 1),
        DataSource::VpcFlowLogs | DataSource::DnsLogs => name.replacen(":EC2/", ":Runtime/", 1),
        _ => return None,
    };
    let twin: FindingType = other.parse().ok()?;
    (twin != t).then_some(twin)
}

/// The twin key of a finding that has a counterpart type and names its host and indicator.
pub fn twin_key(f: &Finding) -> Option<TwinKey> {
    let t = f.finding_type()?;
    twin_type(t)?;
    let instance_id = instance_of(f)?;
    let action = f.service.action.as_ref()?;
    let indicator = if t.is_domain_based() {
        normalise_name(action.dns_request_action.as_ref()?.domain.as_deref()?)
    } else {
        remote_ip(f)?.to_string()
    };
    let name = t.name();
    let (purpose, rest) = name.split_once(':')?;
    let (_, family) = rest.split_once('/')?;
    Some(TwinKey {
        instance_id,
        family: format!("{purpose}/{family}"),
        indicator,
    })
}

/// The instance a finding is about: its resource, or (for an access-key finding raised from an
/// instance's credentials) the instance Ward recorded.
pub fn instance_of(f: &Finding) -> Option<String> {
    f.resource
        .instance_details
        .as_ref()
        .and_then(|i| i.instance_id.clone())
        .filter(|i| !i.is_empty())
        .or_else(|| f.service.ward_details().and_then(|w| w.instance_id))
}

fn remote_ip(f: &Finding) -> Option<IpAddr> {
    let action = f.service.action.as_ref()?;
    let remote = action
        .network_connection_action
        .as_ref()
        .and_then(|n| n.remote_ip_details.as_ref())
        .or_else(|| {
            action
                .aws_api_call_action
                .as_ref()
                .and_then(|a| a.remote_ip_details.as_ref())
        })?;
    remote
        .ip_address_v4
        .as_deref()
        .or(remote.ip_address_v6.as_deref())?
        .parse()
        .ok()
}

/// The latest runtime event time that could still be a log finding's evidence: its last
/// occurrence plus the DNS slack or the flow look-ahead. `None` for findings attribution does not
/// apply to. Once the host's agent stream is past it, the process will not arrive.
pub fn evidence_deadline(f: &Finding, config: &ActivityConfig) -> Option<i64> {
    let t = f.finding_type()?;
    let last = parse_millis(&f.service.event_last_seen).or_else(|| parse_millis(&f.updated_at))?;
    let action = f.service.action.as_ref()?;
    match t.source() {
        DataSource::DnsLogs if action.dns_request_action.is_some() => {
            Some(last + config.dns_slack_ms)
        }
        DataSource::VpcFlowLogs if action.network_connection_action.is_some() => {
            Some(last + config.flow_lookahead_ms)
        }
        _ => None,
    }
}

/// Copies the process an earlier version of the same finding was attributed to (and the calls a
/// cross-layer finding listed), when the new version has none: a later occurrence whose evidence
/// has expired, or the foundational detector's version of a credential finding the correlator
/// filed under the same id. Returns true when it did.
pub fn carry_over(earlier: &Finding, f: &mut Finding) -> bool {
    let Some(before) = earlier.service.ward_details() else {
        return false;
    };
    if before.attribution.is_none() || before.process.is_none() {
        return false;
    }
    let mut ward = f.service.ward_details().unwrap_or_default();
    if ward.attribution.is_some() {
        return false;
    }
    ward.process = before.process;
    ward.ancestry = before.ancestry;
    ward.container = before.container;
    ward.attribution = before.attribution;
    if ward.api_calls.is_empty() {
        ward.api_calls = before.api_calls;
    }
    f.service.set_ward_details(&ward);
    if let Some(p) = earlier
        .service
        .runtime_details
        .as_ref()
        .and_then(|r| r.process.clone())
    {
        f.service
            .runtime_details
            .get_or_insert_with(RuntimeDetails::default)
            .process = Some(p);
    }
    true
}

/// Adds the process behind a flow-log or DNS-log finding when the agent on its host saw it.
/// Returns true when a process was attributed.
pub fn attribute(f: &mut Finding, activity: &Activity) -> bool {
    let Some(t) = f.finding_type() else {
        return false;
    };
    if !matches!(t.source(), DataSource::VpcFlowLogs | DataSource::DnsLogs) {
        return false;
    }
    let Some(instance) = instance_of(f) else {
        return false;
    };
    let last = parse_millis(&f.service.event_last_seen).or_else(|| parse_millis(&f.updated_at));
    let first = parse_millis(&f.service.event_first_seen).or(last);
    let (Some(first), Some(last)) = (first, last) else {
        return false;
    };
    let Some(action) = f.service.action.as_ref() else {
        return false;
    };
    let (process, attribution) = if let Some(domain) = action
        .dns_request_action
        .as_ref()
        .and_then(|d| d.domain.as_deref())
    {
        let Some((q, n)) = activity.query_by(&instance, domain, last) else {
            return false;
        };
        (
            q.process.clone(),
            WardAttribution {
                event_type: "dns_query".into(),
                matched_on: normalise_name(domain),
                event_time: format_millis(q.time),
                candidates: n,
            },
        )
    } else if let Some(net) = action.network_connection_action.as_ref() {
        let Some(ip) = remote_ip(f) else {
            return false;
        };
        let port = net
            .remote_port_details
            .as_ref()
            .and_then(|p| p.port)
            .and_then(|p| u16::try_from(p).ok())
            .unwrap_or(0);
        let local_port = net
            .local_port_details
            .as_ref()
            .and_then(|p| p.port)
            .and_then(|p| u16::try_from(p).ok());
        let inbound = net.connection_direction.as_deref() == Some("INBOUND");
        let remote = SocketAddr::new(ip, port);
        let Some((c, n)) =
            activity.connection_to(&instance, remote, local_port, inbound, first, last)
        else {
            return false;
        };
        (
            c.process.clone(),
            WardAttribution {
                event_type: c.kind.name().into(),
                matched_on: c.remote.to_string(),
                event_time: format_millis(c.time),
                candidates: n,
            },
        )
    } else {
        return false;
    };
    let mut ward = f.service.ward_details().unwrap_or_default();
    let (me, ancestry, container) = ward_process_view(&process);
    ward.process = Some(me);
    ward.ancestry = ancestry;
    ward.container = container;
    ward.attribution = Some(attribution);
    f.service.set_ward_details(&ward);
    let details = f
        .service
        .runtime_details
        .get_or_insert_with(RuntimeDetails::default);
    details.process = Some(process_details(&process));
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twin_types_pair_runtime_and_log_detections() {
        assert_eq!(
            twin_type(FindingType::CryptoCurrencyRuntimeBitcoinToolBDns),
            Some(FindingType::CryptoCurrencyEc2BitcoinToolBDns)
        );
        assert_eq!(
            twin_type(FindingType::CryptoCurrencyEc2BitcoinToolBDns),
            Some(FindingType::CryptoCurrencyRuntimeBitcoinToolBDns)
        );
        assert_eq!(
            twin_type(FindingType::CryptoCurrencyEc2BitcoinToolB),
            Some(FindingType::CryptoCurrencyRuntimeBitcoinToolB)
        );
        assert_eq!(twin_type(FindingType::ExecutionRuntimeReverseShell), None);
    }
}
