//! Instance credentials used away from their instance, joined with the process that took them.
//!
//! CloudTrail shows an EC2 instance role's session as
//! `arn:aws:sts::<account>:assumed-role/<role>/<instance id>` (and `ec2RoleDelivery` in the
//! session context). A call with that session from an address the host map does not give that
//! instance at that time means the credentials left the instance:
//! * the address belongs to another known instance, or is private (another host in the VPC):
//!   `UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.InsideAWS`;
//! * otherwise `...InstanceCredentialExfiltration.OutsideAWS`.
//!
//! Calls whose source is not an address (an AWS service name, `AWS Internal`) and calls from
//! [`CredentialConfig::egress_ips`] (NAT gateways the instances reach AWS through) are not
//! evidence. Only instances the host map knows are judged: for others Ward cannot tell the
//! instance's own addresses from anyone else's.
//!
//! The runtime half: the agent cannot see HTTP paths, so a fetch is a `net_connect` to the
//! metadata endpoint (see [`super::activity::ActivityConfig::imds_endpoints`]); a fetch whose
//! command line names `/latest/meta-data/iam/security-credentials` is preferred. The finding names
//! the most recent such process on the instance before the first outside call (within the
//! credential retention, 12 h by default), its ancestry and container, and the outside calls.
//!
//! The finding is keyed like the foundational detector's (type plus access key, no other facts),
//! so both produce the same finding id and the store keeps one finding.

use std::net::IpAddr;

use crate::event::CloudTrailRecord;
use crate::findings::time::EpochMillis;
use crate::findings::{AccessKeyDetails, FindingType, Resource, WardApiCall};

#[derive(Debug, Clone)]
pub struct CredentialConfig {
    /// Addresses the instances' own traffic to AWS leaves through (NAT gateways).
    pub egress_ips: Vec<IpAddr>,
    /// At most this many calls are listed in one finding (the newest are kept).
    pub max_api_calls: usize,
}

impl Default for CredentialConfig {
    fn default() -> Self {
        Self {
            egress_ips: Vec::new(),
            max_api_calls: 20,
        }
    }
}

/// One call made with an instance's role session from somewhere else.
#[derive(Debug, Clone)]
pub struct OutsideUse {
    pub finding_type: FindingType,
    pub instance_id: String,
    pub role: String,
    pub source_ip: IpAddr,
    /// The known instance the address belongs to, for inside-AWS use.
    pub other_instance: Option<String>,
    pub time: EpochMillis,
    pub resource: Resource,
    pub call: WardApiCall,
}

/// `(role, session)` of an assumed-role ARN.
fn role_session(arn: &str) -> Option<(&str, &str)> {
    let rest = arn.split_once(":assumed-role/")?.1;
    rest.split_once('/')
}

/// Instance ids: `i-` and 8 or 17 hex digits.
pub fn looks_like_instance_id(s: &str) -> bool {
    s.strip_prefix("i-").is_some_and(|h| {
        (h.len() == 8 || h.len() == 17) && h.bytes().all(|b| b.is_ascii_hexdigit())
    })
}

fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || (v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64)
        }
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || (v6.segments()[0] & 0xfe00) == 0xfc00
                || (v6.segments()[0] & 0xffc0) == 0xfe80
        }
    }
}

/// Judges one CloudTrail record; `Some` when it is an instance role session used away from its
/// instance.
pub fn outside_use(
    record: &CloudTrailRecord<'_>,
    hosts: &super::hosts::HostMap,
    config: &CredentialConfig,
) -> Option<OutsideUse> {
    let identity = record.user_identity.as_ref()?;
    if identity.identity_type.as_deref() != Some("AssumedRole") {
        return None;
    }
    let (role, session) = role_session(identity.arn.as_deref()?)?;
    if !looks_like_instance_id(session) {
        return None;
    }
    hosts.host(session)?;
    let time = record.time_ms()?;
    let ip = record.source_ip()?;
    if config.egress_ips.contains(&ip) || hosts.held_by(ip, session, time) {
        return None;
    }
    let other_instance = hosts.instance_at(ip, time).map(str::to_owned);
    let finding_type = if other_instance.is_some() || is_internal(ip) {
        FindingType::UnauthorizedAccessIamUserInstanceCredentialExfiltrationInsideAws
    } else {
        FindingType::UnauthorizedAccessIamUserInstanceCredentialExfiltrationOutsideAws
    };
    let text = |t: &Option<crate::event::json::Text<'_>>| t.as_deref().map(str::to_owned);
    let resource = Resource {
        access_key_details: Some(AccessKeyDetails {
            access_key_id: text(&identity.access_key_id),
            principal_id: text(&identity.principal_id),
            user_name: Some(role.to_owned()),
            user_type: Some("AssumedRole".into()),
        }),
        ..Resource::default()
    };
    Some(OutsideUse {
        finding_type,
        instance_id: session.to_owned(),
        role: role.to_owned(),
        source_ip: ip,
        other_instance,
        time,
        resource,
        call: WardApiCall {
            event_time: crate::findings::time::format_millis(time),
            event_source: text(&record.event_source).unwrap_or_default(),
            event_name: text(&record.event_name).unwrap_or_default(),
            source_ip: Some(ip.to_string()),
            user_agent: text(&record.user_agent),
            error_code: text(&record.error_code),
            event_id: text(&record.event_id),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::correlate::hosts::{ConfiguredHost, HostMap};

    fn record(ip: &str, session: &str) -> String {
        format!(
            r#"{{"eventVersion":"1.08","userIdentity":{{"type":"AssumedRole","principalId":"AROAEXAMPLE:{session}",
            "arn":"arn:aws:sts::123456789012:assumed-role/web-role/{session}","accountId":"123456789012","accessKeyId":"ASIAEXAMPLE",
            "sessionContext":{{"sessionIssuer":{{"type":"Role","arn":"arn:aws:iam::123456789012:role/web-role"}},"ec2RoleDelivery":"2.0"}}}},
            "eventTime":"2026-01-01T10:00:00Z","eventSource":"iam.amazonaws.com","eventName":"ListUsers","awsRegion":"us-east-1",
            "sourceIPAddress":"{ip}","userAgent":"aws-cli/2.15"}}"#
        )
    }

    fn judge(hosts: &HostMap, ip: &str, session: &str) -> Option<OutsideUse> {
        let text = record(ip, session);
        let r: CloudTrailRecord = serde_json::from_str(&text).unwrap();
        outside_use(&r, hosts, &CredentialConfig::default())
    }

    #[test]
    fn instance_sessions_used_elsewhere_are_outside_or_inside_aws() {
        let mut hosts = HostMap::new();
        for (id, ip) in [
            ("i-0123456789abcdef0", "10.0.0.5"),
            ("i-0aaaaaaaaaaaaaaaa", "10.0.0.9"),
        ] {
            hosts
                .add_configured(ConfiguredHost {
                    instance_id: id.into(),
                    private_ips: vec![ip.into()],
                    ..Default::default()
                })
                .unwrap();
        }
        let me = "i-0123456789abcdef0";
        assert!(judge(&hosts, "10.0.0.5", me).is_none(), "its own address");
        let out = judge(&hosts, "198.51.100.7", me).unwrap();
        assert_eq!(
            out.finding_type,
            FindingType::UnauthorizedAccessIamUserInstanceCredentialExfiltrationOutsideAws
        );
        assert_eq!(out.role, "web-role");
        assert_eq!(out.call.event_name, "ListUsers");
        assert_eq!(
            out.resource
                .access_key_details
                .unwrap()
                .access_key_id
                .as_deref(),
            Some("ASIAEXAMPLE")
        );
        let inside = judge(&hosts, "10.0.0.9", me).unwrap();
        assert_eq!(
            inside.other_instance.as_deref(),
            Some("i-0aaaaaaaaaaaaaaaa")
        );
        assert_eq!(
            inside.finding_type,
            FindingType::UnauthorizedAccessIamUserInstanceCredentialExfiltrationInsideAws
        );
        assert!(judge(&hosts, "ec2.amazonaws.com", me).is_none());
        assert!(
            judge(&hosts, "198.51.100.7", "i-0bbbbbbbbbbbbbbbb").is_none(),
            "unknown instance"
        );
        assert!(
            judge(&hosts, "198.51.100.7", "alice").is_none(),
            "not an instance session"
        );
    }
}
