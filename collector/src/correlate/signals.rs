//! Findings and notable API calls as attack-sequence signals, and the groups each belongs to.

use serde_json::{Value, json};

use super::attribution::instance_of;
use super::hosts::HostMap;
use super::sequences::{GroupKey, SequenceSignal, SignalKind};
use super::tactics::tactic_of;
use crate::event::CloudTrailRecord;
use crate::findings::time::parse_millis;
use crate::findings::{
    AccessKeyDetails, DataSource, Finding, FindingType, InstanceDetails, Resource, ThreatPurpose,
};

/// A finding as a signal (`None` for attack sequences themselves and unknown types).
pub fn finding_signal(f: &Finding) -> Option<SequenceSignal> {
    let t = f.finding_type()?;
    if t.source() == DataSource::Correlation {
        return None;
    }
    let last = parse_millis(&f.service.event_last_seen).or_else(|| parse_millis(&f.updated_at))?;
    let first = parse_millis(&f.service.event_first_seen).unwrap_or(last);
    let mut resources = Vec::new();
    if let Some(id) = instance_of(f) {
        resources.push((id.clone(), "EC2_INSTANCE", id));
    }
    if let Some(id) = f
        .resource
        .container_details
        .as_ref()
        .and_then(|c| c.id.clone())
    {
        resources.push((id.clone(), "CONTAINER", id));
    }
    let mut actors = Vec::new();
    if let Some(key) = &f.resource.access_key_details
        && let Some(id) = key.access_key_id.clone().or(key.principal_id.clone())
    {
        resources.push((id.clone(), "ACCESS_KEY", id.clone()));
        actors.push(json!({
            "id": id,
            "user": {
                "name": key.user_name,
                "uid": key.principal_id,
                "type": key.user_type,
                "credentialUid": key.access_key_id,
            }
        }));
    }
    for bucket in &f.resource.s3_bucket_details {
        if let Some(name) = bucket.name.clone().or(bucket.arn.clone()) {
            resources.push((name.clone(), "S3_BUCKET", name));
        }
    }
    let mut indicators: Vec<(&'static str, String)> = Vec::new();
    let crypto = t.threat_purpose() == ThreatPurpose::CryptoCurrency
        || t == FindingType::ImpactRuntimeCryptoMinerExecuted;
    if let Some(p) = f
        .service
        .runtime_details
        .as_ref()
        .and_then(|r| r.process.as_ref())
    {
        let id = p.uuid.clone().unwrap_or_default();
        actors.push(json!({
            "id": id,
            "process": {"name": p.name, "path": p.executable_path, "sha256": p.executable_sha256}
        }));
        if let Some(name) = p.executable_path.clone().or(p.name.clone()) {
            indicators.push((
                if crypto {
                    "CRYPTOMINING_PROCESS"
                } else {
                    "SUSPICIOUS_PROCESS"
                },
                name,
            ));
        }
    }
    let mut endpoints = Vec::new();
    if let Some(action) = &f.service.action {
        if let Some(domain) = action
            .dns_request_action
            .as_ref()
            .and_then(|d| d.domain.clone())
        {
            endpoints.push(json!({"id": domain, "domain": domain}));
            indicators.push((
                if crypto {
                    "CRYPTOMINING_DOMAIN"
                } else {
                    "MALICIOUS_DOMAIN"
                },
                domain,
            ));
        }
        let remote = action
            .network_connection_action
            .as_ref()
            .map(|n| {
                (
                    n.remote_ip_details.as_ref(),
                    n.remote_port_details.as_ref().and_then(|p| p.port),
                )
            })
            .or_else(|| {
                action
                    .aws_api_call_action
                    .as_ref()
                    .map(|a| (a.remote_ip_details.as_ref(), None))
            });
        if let Some((Some(ip), port)) = remote
            && let Some(addr) = ip.ip_address_v4.clone().or(ip.ip_address_v6.clone())
        {
            endpoints.push(json!({"id": addr, "ip": addr, "port": port}));
            if t.source() != DataSource::CloudTrailManagement {
                indicators.push((
                    if crypto {
                        "CRYPTOMINING_IP"
                    } else {
                        "MALICIOUS_IP"
                    },
                    addr,
                ));
            }
        }
        if let Some(api) = action
            .aws_api_call_action
            .as_ref()
            .and_then(|a| a.api.clone())
        {
            indicators.push(("HIGH_RISK_API", api));
        }
    }
    Some(SequenceSignal {
        uid: f.id.clone(),
        kind: SignalKind::Finding,
        name: f.finding_type_name.clone(),
        description: f.title.clone(),
        severity: f.severity.0,
        first_seen: first,
        last_seen: last,
        count: f.service.count.max(1),
        tactic: tactic_of(t),
        resources,
        actors,
        endpoints,
        indicators,
    })
}

fn instance_resource(instance_id: &str) -> Resource {
    Resource {
        instance_details: Some(InstanceDetails {
            instance_id: Some(instance_id.to_owned()),
            ..InstanceDetails::default()
        }),
        ..Resource::default()
    }
}

/// The EC2 instance group of an instance (see [`super::hosts::HostRecord::group`]).
pub fn instance_group(hosts: &HostMap, instance_id: &str) -> GroupKey {
    let key = hosts
        .host(instance_id)
        .map(|h| h.group())
        .unwrap_or_else(|| format!("instance:{instance_id}"));
    let label = match key.strip_prefix("instance:") {
        Some(id) => format!("instance {id}"),
        None => format!("instance group {key} (first seen on {instance_id})"),
    };
    GroupKey {
        sequence_type: FindingType::AttackSequenceEc2CompromisedInstanceGroup,
        key,
        resource: instance_resource(instance_id),
        label,
    }
}

/// A credential's group: the access key, else the principal.
pub fn credential_group(key: &AccessKeyDetails) -> Option<GroupKey> {
    let id = key.access_key_id.clone().or(key.principal_id.clone())?;
    Some(GroupKey {
        sequence_type: FindingType::AttackSequenceIamCompromisedCredentials,
        key: format!("credential:{id}"),
        resource: Resource {
            access_key_details: Some(key.clone()),
            ..Resource::default()
        },
        label: format!("credentials {id}"),
    })
}

/// Every group a finding belongs to.
pub fn finding_groups(f: &Finding, hosts: &HostMap) -> Vec<GroupKey> {
    let mut groups = Vec::new();
    let r = &f.resource;
    if let Some(cluster) = &r.eks_cluster_details
        && let Some(name) = cluster.name.clone().or(cluster.arn.clone())
    {
        groups.push(GroupKey {
            sequence_type: FindingType::AttackSequenceEksCompromisedCluster,
            key: format!("eks:{name}"),
            resource: Resource {
                eks_cluster_details: Some(cluster.clone()),
                ..Resource::default()
            },
            label: format!("EKS cluster {name}"),
        });
    } else if let Some(cluster) = &r.ecs_cluster_details
        && let Some(name) = cluster.name.clone().or(cluster.arn.clone())
    {
        let mut cluster = cluster.clone();
        cluster.task_details = None;
        groups.push(GroupKey {
            sequence_type: FindingType::AttackSequenceEcsCompromisedCluster,
            key: format!("ecs:{name}"),
            resource: Resource {
                ecs_cluster_details: Some(cluster),
                ..Resource::default()
            },
            label: format!("ECS cluster {name}"),
        });
    } else if let Some(instance) = instance_of(f) {
        groups.push(instance_group(hosts, &instance));
    }
    if let Some(key) = &r.access_key_details
        && let Some(group) = credential_group(key)
    {
        groups.push(group);
    }
    for bucket in &r.s3_bucket_details {
        if let Some(name) = bucket.name.clone().or(bucket.arn.clone()) {
            groups.push(GroupKey {
                sequence_type: FindingType::AttackSequenceS3CompromisedData,
                key: format!("bucket:{name}"),
                resource: Resource {
                    s3_bucket_details: vec![bucket.clone()],
                    ..Resource::default()
                },
                label: format!("S3 bucket {name}"),
            });
        }
    }
    groups
}

/// A notable CloudTrail call as a weak signal on its credential.
pub fn api_signal(
    record: &CloudTrailRecord<'_>,
    tactic: &'static str,
) -> Option<(GroupKey, SequenceSignal)> {
    let identity = record.user_identity.as_ref()?;
    let text = |t: &Option<crate::event::json::Text<'_>>| t.as_deref().map(str::to_owned);
    let key = AccessKeyDetails {
        access_key_id: text(&identity.access_key_id),
        principal_id: text(&identity.principal_id),
        user_name: text(&identity.user_name).or_else(|| {
            identity
                .arn
                .as_deref()
                .and_then(|a| a.rsplit('/').nth(1))
                .map(str::to_owned)
        }),
        user_type: text(&identity.identity_type),
    };
    let group = credential_group(&key)?;
    let time = record.time_ms()?;
    let source = text(&record.event_source).unwrap_or_default();
    let name = text(&record.event_name)?;
    let credential = group.key.clone();
    let mut endpoints: Vec<Value> = Vec::new();
    if let Some(ip) = record.source_ip() {
        endpoints.push(json!({"id": ip.to_string(), "ip": ip.to_string()}));
    }
    let actor_id = key.access_key_id.clone().or(key.principal_id.clone());
    let signal = SequenceSignal {
        uid: format!("api:{credential}:{source}:{name}"),
        kind: SignalKind::CloudTrail,
        name: name.clone(),
        description: format!(
            "{name} ({source}) by {}",
            actor_id.as_deref().unwrap_or("?")
        ),
        severity: 2.0,
        first_seen: time,
        last_seen: time,
        count: 1,
        tactic,
        resources: vec![(
            actor_id.clone().unwrap_or_default(),
            "ACCESS_KEY",
            actor_id.clone().unwrap_or_default(),
        )],
        actors: vec![json!({
            "id": actor_id,
            "user": {"name": key.user_name, "uid": key.principal_id, "type": key.user_type,
                     "credentialUid": key.access_key_id, "account": text(&identity.account_id)}
        })],
        endpoints,
        indicators: vec![("HIGH_RISK_API", format!("{source}:{name}"))],
    };
    Some((group, signal))
}
