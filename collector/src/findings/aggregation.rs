//! Aggregation: repeated occurrences of one security issue update one finding.
//!
//! GuardDuty keeps one finding per "security issue": a repeat bumps `service.count`, moves
//! `eventLastSeen` / `updatedAt` and overwrites the details with the newest occurrence; a new
//! resource gives a new finding. AWS does not publish its keys, so Ward defines them here.
//!
//! A finding's identity is its [`AggregationKey`]: the finding type, the affected resource's
//! identity ([`Resource::identity`]: instance id, container id, EKS workload, ECS task definition,
//! access key, bucket) and the facts its family requires. The finding id is a digest of the key
//! (plus account and region), so replaying the same events always yields the same ids.
//!
//! | Family ([`AggregationFamily`]) | Finding types | Required key facts | Why |
//! |---|---|---|---|
//! | `ProcessBehaviour` | runtime behaviour (§3.2): `Execution:`, `PrivilegeEscalation:`, `DefenseEvasion:`, `Persistence:`, `Discovery:`, `Impact:Runtime/CryptoMinerExecuted` | `executable` (path of the acting binary; the SHA-256 when there is no path) | one finding per program misbehaving on a resource; a detector may add a fact such as `target` (module, mount target, file) to split further |
//! | `DomainIndicator` | `…!DNS`, `…DomainRequest…`, `MetadataDNSRebind` | `domain` | each bad domain queried is its own issue; the latest querying process overwrites |
//! | `DnsExfiltration` | `Trojan:EC2/DNSDataExfiltration` | `domainWithSuffix` | exfiltration goes to one registrable domain through endless subdomains |
//! | `IpIndicator` | threat-intel IP hits: `C&CActivity.B`, `BitcoinTool.B`, `BlackholeTraffic`, `DropPoint`, `EC2/MaliciousIPCaller.Custom` | `remoteIp` | each listed address contacted is its own issue |
//! | `BruteForce` | `SSHBruteForce`, `RDPBruteForce`, `WinRMBruteForce` | `resourceRole` | UG example: all attempts against one instance are one finding, the newest attacker IP overwrites; target and actor roles differ in severity so they are separate findings |
//! | `UnusualRemote` | `Behavior:EC2/*`, `DefenseEvasion:EC2/Unusual*` | `remote` (remote port or address that broke the baseline) | each new port / resolver / peer is a distinct deviation |
//! | `ResourceBehaviour` | other VPC-flow findings (DoS, Spambot, Portscan, PortSweep, port probes, Tor client/relay on EC2 and Runtime) | none | the resource's behaviour is the issue, whichever peers it involves |
//! | `PrincipalActivity` | IAM and S3 findings | none (the resource identity names the access key / principal and bucket) | one finding per identity (and bucket); newest caller IP, API and user agent overwrite |
//! | `AttackSequence` | `AttackSequence:*` | `sequence` (the correlation group id) | one finding per correlated incident |
//!
//! Time comes only from the events: `eventFirstSeen` / `createdAt` are the earliest occurrence time,
//! `eventLastSeen` / `updatedAt` the latest, and details are overwritten only by an occurrence at
//! least as new as the latest seen. Replaying the same occurrences in any order therefore gives the
//! same finding, except that of two occurrences with the same timestamp the one recorded last wins.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use sha2::{Digest, Sha256};

use super::catalogue::{DataSource, FindingType};
use super::finding::{DEFAULT_PARTITION, Finding, SCHEMA_VERSION, SERVICE_NAME, finding_arn};
use super::resource::Resource;
use super::time::{EpochMillis, format_millis, parse_millis};

/// How findings of a type are keyed; see the module documentation for the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AggregationFamily {
    ProcessBehaviour,
    DomainIndicator,
    DnsExfiltration,
    IpIndicator,
    BruteForce,
    UnusualRemote,
    ResourceBehaviour,
    PrincipalActivity,
    AttackSequence,
}

impl AggregationFamily {
    pub fn of(finding_type: FindingType) -> Self {
        use FindingType as T;
        let family = finding_type.threat_family();
        match finding_type {
            T::TrojanEc2DnsDataExfiltration => return Self::DnsExfiltration,
            T::UnauthorizedAccessEc2SshBruteForce
            | T::UnauthorizedAccessEc2RdpBruteForce
            | T::ImpactEc2WinRmBruteForce => return Self::BruteForce,
            _ => {}
        }
        if finding_type.source() == DataSource::Correlation {
            return Self::AttackSequence;
        }
        if finding_type.is_domain_based() {
            return Self::DomainIndicator;
        }
        let ip_intel = [
            "C&CActivity.B",
            "BitcoinTool.B",
            "BlackholeTraffic",
            "DropPoint",
            "MaliciousIPCaller.Custom",
        ];
        match finding_type.source() {
            DataSource::Runtime | DataSource::VpcFlowLogs if ip_intel.contains(&family) => {
                Self::IpIndicator
            }
            DataSource::Runtime if family.starts_with("Tor") => Self::ResourceBehaviour,
            DataSource::Runtime => Self::ProcessBehaviour,
            DataSource::VpcFlowLogs
                if family.ends_with("Unusual") || family.starts_with("Unusual") =>
            {
                Self::UnusualRemote
            }
            DataSource::VpcFlowLogs | DataSource::DnsLogs => Self::ResourceBehaviour,
            DataSource::CloudTrailManagement | DataSource::S3DataEvents => Self::PrincipalActivity,
            DataSource::Correlation => Self::AttackSequence,
        }
    }

    /// Fact names an [`AggregationKey`] of this family must carry (non-empty).
    pub fn required_facts(self) -> &'static [&'static str] {
        match self {
            Self::ProcessBehaviour => &["executable"],
            Self::DomainIndicator => &["domain"],
            Self::DnsExfiltration => &["domainWithSuffix"],
            Self::IpIndicator => &["remoteIp"],
            Self::BruteForce => &["resourceRole"],
            Self::UnusualRemote => &["remote"],
            Self::ResourceBehaviour | Self::PrincipalActivity => &[],
            Self::AttackSequence => &["sequence"],
        }
    }
}

/// The identity of one aggregated finding.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AggregationKey {
    finding_type: FindingType,
    resource_identity: String,
    facts: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AggregationError {
    /// The resource names nothing to key on (no instance id, access key, bucket, …).
    ResourceWithoutIdentity(FindingType),
    MissingFact {
        finding_type: FindingType,
        fact: &'static str,
    },
    /// The occurrence's finding says one type, its key another.
    TypeMismatch { key: FindingType, finding: String },
}

impl fmt::Display for AggregationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ResourceWithoutIdentity(t) => {
                write!(
                    f,
                    "{t}: the resource has no identity (instance id, container, workload, access key or bucket)"
                )
            }
            Self::MissingFact { finding_type, fact } => write!(
                f,
                "{finding_type}: aggregation key fact {fact:?} is required for the {:?} family",
                AggregationFamily::of(*finding_type)
            ),
            Self::TypeMismatch { key, finding } => {
                write!(
                    f,
                    "aggregation key is for {key} but the finding has type {finding:?}"
                )
            }
        }
    }
}

impl std::error::Error for AggregationError {}

impl AggregationKey {
    /// Builds a key, checking the family's required facts. Facts beyond the required ones are
    /// allowed and become part of the identity.
    pub fn new<'a>(
        finding_type: FindingType,
        resource: &Resource,
        facts: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, AggregationError> {
        let resource_identity = resource
            .identity()
            .ok_or(AggregationError::ResourceWithoutIdentity(finding_type))?;
        let facts: BTreeMap<String, String> = facts
            .into_iter()
            .filter(|(_, value)| !value.is_empty())
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect();
        for &fact in AggregationFamily::of(finding_type).required_facts() {
            if !facts.contains_key(fact) {
                return Err(AggregationError::MissingFact { finding_type, fact });
            }
        }
        Ok(Self {
            finding_type,
            resource_identity,
            facts,
        })
    }

    pub fn finding_type(&self) -> FindingType {
        self.finding_type
    }

    /// 32 lower-case hex characters (GuardDuty's id shape): the first 128 bits of SHA-256 over the
    /// scope and the key, each part length-prefixed so no two keys encode alike.
    pub fn finding_id(&self, scope: &Scope) -> String {
        let mut hasher = Sha256::new();
        let mut part = |text: &str| {
            hasher.update((text.len() as u64).to_be_bytes());
            hasher.update(text.as_bytes());
        };
        part("ward-finding-v1");
        part(&scope.account_id);
        part(&scope.region);
        part(self.finding_type.name());
        part(&self.resource_identity);
        for (name, value) in &self.facts {
            part(name);
            part(value);
        }
        let digest = hasher.finalize();
        digest[..16].iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Where findings are filed: the account, Region and detector they belong to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub account_id: String,
    pub region: String,
    pub partition: String,
    pub detector_id: String,
}

impl Scope {
    pub fn new(
        account_id: impl Into<String>,
        region: impl Into<String>,
        detector_id: impl Into<String>,
    ) -> Self {
        Self {
            account_id: account_id.into(),
            region: region.into(),
            partition: DEFAULT_PARTITION.into(),
            detector_id: detector_id.into(),
        }
    }
}

/// One detection of an issue: its key, when the evidence happened, and the finding as the detector
/// describes it (type, severity, title, description, resource, and `service` details such as
/// action, evidence, runtimeDetails, additionalInfo, resourceRole, featureName). Identity, times,
/// count and the fixed `service` members are filled by the aggregator.
#[derive(Debug, Clone)]
pub struct Occurrence {
    pub key: AggregationKey,
    pub event_time: EpochMillis,
    pub details: Finding,
}

/// What [`Aggregator::record`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Created,
    /// An existing finding was updated; `details_replaced` is false for a late (older) occurrence,
    /// which only counts.
    Updated {
        details_replaced: bool,
    },
}

/// Keeps the current state of every finding of one scope and folds occurrences into it.
#[derive(Debug, Clone)]
pub struct Aggregator {
    scope: Scope,
    findings: HashMap<String, Finding>,
}

impl Aggregator {
    pub fn new(scope: Scope) -> Self {
        Self {
            scope,
            findings: HashMap::new(),
        }
    }

    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    /// Seeds the aggregator with findings from the store so aggregation continues after a restart.
    pub fn restore(&mut self, findings: impl IntoIterator<Item = Finding>) {
        for finding in findings {
            self.findings.insert(finding.id.clone(), finding);
        }
    }

    pub fn get(&self, id: &str) -> Option<&Finding> {
        self.findings.get(id)
    }

    pub fn findings(&self) -> impl Iterator<Item = &Finding> {
        self.findings.values()
    }

    pub fn len(&self) -> usize {
        self.findings.len()
    }

    pub fn is_empty(&self) -> bool {
        self.findings.is_empty()
    }

    /// Drops findings whose last activity is older than `cutoff` (event time; GuardDuty keeps
    /// findings 90 days). Returns how many were dropped.
    pub fn expire_before(&mut self, cutoff: EpochMillis) -> usize {
        let before = self.findings.len();
        self.findings.retain(|_, f| {
            parse_millis(&f.service.event_last_seen).is_none_or(|last| last >= cutoff)
        });
        before - self.findings.len()
    }

    /// Folds one occurrence in, creating or updating its finding.
    pub fn record(
        &mut self,
        occurrence: Occurrence,
    ) -> Result<(Outcome, &Finding), AggregationError> {
        let Occurrence {
            key,
            event_time,
            details,
        } = occurrence;
        if details.finding_type_name != key.finding_type.name() {
            return Err(AggregationError::TypeMismatch {
                key: key.finding_type,
                finding: details.finding_type_name,
            });
        }
        let id = key.finding_id(&self.scope);
        let at = format_millis(event_time);
        let outcome = match self.findings.get_mut(&id) {
            None => {
                let finding = self.new_finding(&id, &at, details);
                self.findings.insert(id.clone(), finding);
                Outcome::Created
            }
            Some(existing) => {
                let first = parse_millis(&existing.service.event_first_seen).unwrap_or(event_time);
                let last = parse_millis(&existing.service.event_last_seen).unwrap_or(i64::MIN);
                let count = existing.service.count.max(1) + 1;
                let replace = event_time >= last;
                if replace {
                    let created_at = std::mem::take(&mut existing.created_at);
                    *existing = stamped_finding(&self.scope, &id, &at, details);
                    existing.created_at = created_at;
                    existing.service.event_first_seen = format_millis(first.min(event_time));
                }
                if event_time < first {
                    existing.service.event_first_seen = at.clone();
                    existing.created_at = at.clone();
                }
                existing.service.count = count;
                // A new occurrence resurfaces a manually archived finding; suppression rules run
                // after aggregation and re-archive what they match.
                existing.service.archived = false;
                Outcome::Updated {
                    details_replaced: replace,
                }
            }
        };
        Ok((outcome, &self.findings[&id]))
    }

    fn new_finding(&self, id: &str, at: &str, details: Finding) -> Finding {
        let mut finding = stamped_finding(&self.scope, id, at, details);
        finding.created_at = at.to_owned();
        finding
    }
}

/// The finding for one occurrence with all aggregator-owned members set (createdAt left to the
/// caller, which knows whether this is a creation).
fn stamped_finding(scope: &Scope, id: &str, at: &str, details: Finding) -> Finding {
    let mut finding = details;
    finding.schema_version = SCHEMA_VERSION.into();
    finding.account_id = scope.account_id.clone();
    finding.region = scope.region.clone();
    finding.partition = scope.partition.clone();
    finding.id = id.to_owned();
    finding.arn = finding_arn(
        &scope.partition,
        &scope.region,
        &scope.account_id,
        &scope.detector_id,
        id,
    );
    finding.updated_at = at.to_owned();
    finding.service.service_name = SERVICE_NAME.into();
    finding.service.detector_id = scope.detector_id.clone();
    finding.service.archived = false;
    finding.service.count = 1;
    finding.service.event_first_seen = at.to_owned();
    finding.service.event_last_seen = at.to_owned();
    finding
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::findings::InstanceDetails;

    fn instance(id: &str) -> Resource {
        Resource {
            resource_type: Some("Instance".into()),
            instance_details: Some(InstanceDetails {
                instance_id: Some(id.into()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn brute_force(instance_id: &str, attacker: &str, at: EpochMillis) -> Occurrence {
        let t = FindingType::UnauthorizedAccessEc2SshBruteForce;
        let resource = instance(instance_id);
        let key = AggregationKey::new(t, &resource, [("resourceRole", "TARGET")]).unwrap();
        let details = Finding {
            finding_type_name: t.name().into(),
            severity: t.default_severity(),
            title: format!(
                "{attacker} is performing SSH brute force attacks against {instance_id}."
            ),
            resource,
            ..Finding::default()
        };
        Occurrence {
            key,
            event_time: at,
            details,
        }
    }

    fn scope() -> Scope {
        Scope::new(
            "111122223333",
            "us-east-1",
            "d4b040365221be2b54a6264dc9a4bc64",
        )
    }

    #[test]
    fn first_occurrence_creates_a_complete_finding() {
        let mut aggregator = Aggregator::new(scope());
        let (outcome, finding) = aggregator
            .record(brute_force("i-1", "198.51.100.7", 1_598_088_874_146))
            .unwrap();
        assert_eq!(outcome, Outcome::Created);
        assert_eq!(finding.id.len(), 32);
        assert!(
            finding
                .id
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert_eq!(
            finding.arn,
            format!(
                "arn:aws:guardduty:us-east-1:111122223333:detector/d4b040365221be2b54a6264dc9a4bc64/finding/{}",
                finding.id
            )
        );
        assert_eq!(finding.schema_version, "2.0");
        assert_eq!(finding.created_at, "2020-08-22T09:34:34.146Z");
        assert_eq!(finding.updated_at, "2020-08-22T09:34:34.146Z");
        assert_eq!(finding.service.event_first_seen, "2020-08-22T09:34:34.146Z");
        assert_eq!(finding.service.count, 1);
        assert_eq!(finding.service.service_name, "guardduty");
        assert!(!finding.service.archived);
    }

    #[test]
    fn repeats_on_one_instance_update_and_a_new_instance_creates() {
        let mut aggregator = Aggregator::new(scope());
        let first_id = aggregator
            .record(brute_force("i-1", "198.51.100.7", 1_000))
            .unwrap()
            .1
            .id
            .clone();
        let (outcome, finding) = aggregator
            .record(brute_force("i-1", "203.0.113.9", 5_000))
            .unwrap();
        assert_eq!(
            outcome,
            Outcome::Updated {
                details_replaced: true
            }
        );
        assert_eq!(finding.id, first_id);
        assert_eq!(finding.service.count, 2);
        assert_eq!(finding.created_at, format_millis(1_000));
        assert_eq!(finding.service.event_first_seen, format_millis(1_000));
        assert_eq!(finding.service.event_last_seen, format_millis(5_000));
        assert_eq!(finding.updated_at, format_millis(5_000));
        assert!(
            finding.title.starts_with("203.0.113.9"),
            "latest details win: {}",
            finding.title
        );

        let (outcome, other) = aggregator
            .record(brute_force("i-2", "198.51.100.7", 6_000))
            .unwrap();
        assert_eq!(outcome, Outcome::Created);
        assert_ne!(other.id, first_id);
        assert_eq!(aggregator.len(), 2);
    }

    #[test]
    fn late_occurrence_counts_and_extends_first_seen_but_keeps_newer_details() {
        let mut aggregator = Aggregator::new(scope());
        aggregator
            .record(brute_force("i-1", "203.0.113.9", 5_000))
            .unwrap();
        let (outcome, finding) = aggregator
            .record(brute_force("i-1", "198.51.100.7", 1_000))
            .unwrap();
        assert_eq!(
            outcome,
            Outcome::Updated {
                details_replaced: false
            }
        );
        assert_eq!(finding.service.count, 2);
        assert_eq!(finding.service.event_first_seen, format_millis(1_000));
        assert_eq!(finding.created_at, format_millis(1_000));
        assert_eq!(finding.service.event_last_seen, format_millis(5_000));
        assert!(finding.title.starts_with("203.0.113.9"));
    }

    #[test]
    fn replay_in_any_order_gives_the_same_finding() {
        let occurrences: Vec<_> = [(3_000, "a"), (1_000, "b"), (9_000, "c"), (4_000, "d")]
            .iter()
            .map(|(t, ip)| brute_force("i-1", ip, *t))
            .collect();
        let mut forward = Aggregator::new(scope());
        for o in occurrences.iter().cloned() {
            forward.record(o).unwrap();
        }
        let mut backward = Aggregator::new(scope());
        for o in occurrences.iter().rev().cloned() {
            backward.record(o).unwrap();
        }
        let a: Vec<_> = forward.findings().cloned().collect();
        let b: Vec<_> = backward.findings().cloned().collect();
        assert_eq!(a, b);
        assert_eq!(a[0].service.count, 4);
        assert!(a[0].title.starts_with("c "));
    }

    #[test]
    fn ids_are_stable_across_aggregators_and_scoped_by_account() {
        let mut one = Aggregator::new(scope());
        let mut two = Aggregator::new(scope());
        let id1 = one.record(brute_force("i-1", "x", 1)).unwrap().1.id.clone();
        let id2 = two
            .record(brute_force("i-1", "y", 99))
            .unwrap()
            .1
            .id
            .clone();
        assert_eq!(id1, id2);
        let mut other_account = Aggregator::new(Scope::new("999988887777", "us-east-1", "d"));
        let id3 = other_account
            .record(brute_force("i-1", "x", 1))
            .unwrap()
            .1
            .id
            .clone();
        assert_ne!(id1, id3);
    }

    #[test]
    fn a_new_occurrence_unarchives() {
        let mut aggregator = Aggregator::new(scope());
        let id = aggregator
            .record(brute_force("i-1", "x", 1))
            .unwrap()
            .1
            .id
            .clone();
        let mut archived = aggregator.get(&id).unwrap().clone();
        archived.service.archived = true;
        aggregator.restore([archived]);
        assert!(aggregator.get(&id).unwrap().service.archived);
        let (_, finding) = aggregator.record(brute_force("i-1", "x", 2)).unwrap();
        assert!(!finding.service.archived);
    }

    #[test]
    fn keys_enforce_family_facts_and_resource_identity() {
        let t = FindingType::BackdoorRuntimeCncActivityBDns;
        let err = AggregationKey::new(t, &instance("i-1"), []).unwrap_err();
        assert_eq!(
            err,
            AggregationError::MissingFact {
                finding_type: t,
                fact: "domain"
            }
        );
        assert!(err.to_string().contains("\"domain\""), "{err}");
        let err =
            AggregationKey::new(t, &Resource::default(), [("domain", "x.example")]).unwrap_err();
        assert_eq!(err, AggregationError::ResourceWithoutIdentity(t));
        let empty_value = AggregationKey::new(t, &instance("i-1"), [("domain", "")]).unwrap_err();
        assert!(matches!(empty_value, AggregationError::MissingFact { .. }));

        let a = AggregationKey::new(t, &instance("i-1"), [("domain", "a.example")]).unwrap();
        let b = AggregationKey::new(t, &instance("i-1"), [("domain", "b.example")]).unwrap();
        assert_ne!(a.finding_id(&scope()), b.finding_id(&scope()));
    }

    #[test]
    fn type_mismatch_is_refused() {
        let mut occurrence = brute_force("i-1", "x", 1);
        occurrence.details.finding_type_name = "Recon:EC2/Portscan".into();
        let mut aggregator = Aggregator::new(scope());
        assert!(matches!(
            aggregator.record(occurrence),
            Err(AggregationError::TypeMismatch { .. })
        ));
        assert!(aggregator.is_empty());
    }

    #[test]
    fn expiry_uses_event_time() {
        let mut aggregator = Aggregator::new(scope());
        aggregator.record(brute_force("i-1", "x", 1_000)).unwrap();
        aggregator.record(brute_force("i-2", "x", 9_000)).unwrap();
        assert_eq!(aggregator.expire_before(5_000), 1);
        assert_eq!(aggregator.len(), 1);
        assert_eq!(
            aggregator
                .findings()
                .next()
                .unwrap()
                .service
                .event_last_seen,
            format_millis(9_000)
        );
    }

    #[test]
    fn every_type_has_a_family_and_families_match_the_table() {
        use AggregationFamily as F;
        use FindingType as T;
        let expectations = [
            (T::ExecutionRuntimeReverseShell, F::ProcessBehaviour),
            (T::ImpactRuntimeCryptoMinerExecuted, F::ProcessBehaviour),
            (T::BackdoorRuntimeCncActivityBDns, F::DomainIndicator),
            (
                T::ImpactEc2SuspiciousDomainRequestReputation,
                F::DomainIndicator,
            ),
            (
                T::UnauthorizedAccessRuntimeMetadataDnsRebind,
                F::DomainIndicator,
            ),
            (T::TrojanEc2DnsDataExfiltration, F::DnsExfiltration),
            (T::BackdoorRuntimeCncActivityB, F::IpIndicator),
            (
                T::UnauthorizedAccessEc2MaliciousIpCallerCustom,
                F::IpIndicator,
            ),
            (T::UnauthorizedAccessEc2SshBruteForce, F::BruteForce),
            (T::BehaviorEc2NetworkPortUnusual, F::UnusualRemote),
            (T::DefenseEvasionEc2UnusualDnsResolver, F::UnusualRemote),
            (T::ReconEc2Portscan, F::ResourceBehaviour),
            (T::UnauthorizedAccessRuntimeTorClient, F::ResourceBehaviour),
            (T::ReconIamUserTorIpCaller, F::PrincipalActivity),
            (T::PolicyS3BucketPublicAccessGranted, F::PrincipalActivity),
            (T::AttackSequenceS3CompromisedData, F::AttackSequence),
        ];
        for (t, family) in expectations {
            assert_eq!(AggregationFamily::of(t), family, "{t}");
        }
    }
}
