//! Attack sequences (spec §10): signals on one group of resources within a window become one
//! `AttackSequence:*` finding that is updated, not duplicated, as more signals arrive.
//!
//! * A **signal** is a finding (identified by its finding id, so repeated occurrences of one
//!   finding are one signal whose count and last-seen time move) or a notable CloudTrail call
//!   (identified by principal, event source and name; see [`super::tactics`]).
//! * A **group** is what one sequence type spans: an instance group for
//!   `AttackSequence:EC2/CompromisedInstanceGroup` (instances sharing an Auto Scaling group or an
//!   instance profile, else one instance), a credential (access key, else principal) for
//!   `AttackSequence:IAM/CompromisedCredentials`, a bucket for `AttackSequence:S3/CompromisedData`,
//!   a cluster for the EKS and ECS types.
//! * **Window**: a group's signals form one episode as long as each arrives within
//!   [`SequenceConfig::window_ms`] (default 24 h, event time) of the previous; a longer silence
//!   starts a new episode (a new sequence finding). AWS does not publish its window.
//! * **Threshold**: a sequence exists once an episode holds [`SequenceConfig::min_signals`]
//!   (default 3) distinct signals, at least one of them a finding: API calls alone (an
//!   administrator listing users) never make one.
//! * Every later signal that joins updates the same finding (same id: the aggregation key is the
//!   group and the episode start), with the full signal list, MITRE tactics and indicators,
//!   severity Critical. A repeat of a member (its finding updated again) is folded into the
//!   group's state and shows at the next update, so a finding recurring a thousand times does
//!   not re-send its sequence a thousand times.
//!
//! Only event times are used, so the same signals in the same order give the same sequences in a
//! replay and live.

use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::state::interned;

use crate::findings::finding::resource_role;
use crate::findings::time::{EpochMillis, format_millis};
use crate::findings::{AggregationKey, Finding, FindingType, Occurrence, Resource, WardDetails};

/// Windows and thresholds; see the module docs.
#[derive(Debug, Clone)]
pub struct SequenceConfig {
    pub window_ms: i64,
    pub min_signals: usize,
    /// At most this many signals are listed in one sequence (Security Hub's limit is 100).
    pub max_signals: usize,
}

impl Default for SequenceConfig {
    fn default() -> Self {
        Self {
            window_ms: 24 * 60 * 60 * 1000,
            min_signals: 3,
            max_signals: 100,
        }
    }
}

/// `FINDING` or `CLOUD_TRAIL` (spec §10 `Signal.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SignalKind {
    Finding,
    CloudTrail,
}

impl SignalKind {
    fn name(self) -> &'static str {
        match self {
            Self::Finding => "FINDING",
            Self::CloudTrail => "CLOUD_TRAIL",
        }
    }
}

/// One signal as the correlator hands it over.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SequenceSignal {
    pub uid: String,
    pub kind: SignalKind,
    /// The finding type, or the API name.
    pub name: String,
    pub description: String,
    pub severity: f64,
    pub first_seen: EpochMillis,
    pub last_seen: EpochMillis,
    /// For findings: the finding's own count; for calls: 1 per call.
    pub count: u64,
    #[serde(with = "interned::one")]
    pub tactic: Name,
    /// `(uid, resourceType, name)` of the resources involved.
    #[serde(with = "interned::middle")]
    pub resources: Vec<(String, Name, String)>,
    /// Actor objects (`id` plus `user`/`session`/`process`).
    pub actors: Vec<Value>,
    /// Endpoint objects (`id` plus `ip`/`domain`/`port`).
    pub endpoints: Vec<Value>,
    /// `(Indicator.key, value)`.
    #[serde(with = "interned::first")]
    pub indicators: Vec<(Name, String)>,
}

/// A name from a small fixed set (tactic, indicator key, resource type). An alias so serde's
/// derive does not tie the deserialiser's lifetime to `'static` (the values are interned).
pub type Name = &'static str;

/// Which sequence a signal belongs to, and the resource the sequence finding is filed under.
#[derive(Debug, Clone)]
pub struct GroupKey {
    pub sequence_type: FindingType,
    pub key: String,
    pub resource: Resource,
    /// A few words naming the group in titles ("instance i-0abc", "credentials ASIA...").
    pub label: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct Group {
    resource: Resource,
    label: String,
    episode_start: EpochMillis,
    last: EpochMillis,
    signals: Vec<SequenceSignal>,
}

/// What one signal did to its group's sequence.
#[derive(Debug)]
pub struct SequenceUpdate {
    pub occurrence: Occurrence,
    /// Ids of the member findings (signals of kind `FINDING`).
    pub members: Vec<String>,
    /// The earliest signal time: the sequence's `eventFirstSeen`.
    pub first_seen: EpochMillis,
}

#[derive(Debug, Default)]
pub struct Sequences {
    config: SequenceConfig,
    groups: HashMap<(FindingType, String), Group>,
}

/// The groups as persisted: one entry per group, in key order (stable output).
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct SequencesState(Vec<(FindingType, String, Value)>);

impl Sequences {
    pub fn new(config: SequenceConfig) -> Self {
        Self {
            config,
            groups: HashMap::new(),
        }
    }

    /// Every group's episode and signals.
    pub fn state(&self) -> SequencesState {
        let mut keys: Vec<&(FindingType, String)> = self.groups.keys().collect();
        keys.sort_by(|a, b| (a.0.name(), &a.1).cmp(&(b.0.name(), &b.1)));
        SequencesState(
            keys.into_iter()
                .map(|k| {
                    let group = serde_json::to_value(&self.groups[k])
                        .expect("a group is plain data and serialises");
                    (k.0, k.1.clone(), group)
                })
                .collect(),
        )
    }

    /// Groups from [`Sequences::state`]; a group that does not read back is an error naming it.
    pub fn restore(&mut self, state: SequencesState) -> Result<(), String> {
        for (t, key, group) in state.0 {
            let group: Group = serde_json::from_value(group)
                .map_err(|e| format!("sequence group {} {key}: {e}", t.name()))?;
            self.groups.insert((t, key), group);
        }
        Ok(())
    }

    /// Adds one signal to one group; returns the sequence occurrence when the group qualifies.
    pub fn observe(&mut self, group: &GroupKey, signal: &SequenceSignal) -> Option<SequenceUpdate> {
        let window = self.config.window_ms;
        let t = signal.last_seen;
        let entry = self
            .groups
            .entry((group.sequence_type, group.key.clone()))
            .or_insert_with(|| Group {
                resource: group.resource.clone(),
                label: group.label.clone(),
                episode_start: signal.first_seen.min(t),
                last: t,
                signals: Vec::new(),
            });
        if t > entry.last + window {
            // A long silence: a new episode, a new sequence.
            *entry = Group {
                resource: group.resource.clone(),
                label: group.label.clone(),
                episode_start: signal.first_seen.min(t),
                last: t,
                signals: Vec::new(),
            };
        } else if t < entry.episode_start - window {
            return None;
        }
        entry.last = entry.last.max(t);
        let room = entry.signals.len() < self.config.max_signals;
        let joined = match entry.signals.iter_mut().find(|s| s.uid == signal.uid) {
            Some(known) => {
                known.first_seen = known.first_seen.min(signal.first_seen);
                known.last_seen = known.last_seen.max(signal.last_seen);
                known.count = match signal.kind {
                    SignalKind::Finding => known.count.max(signal.count),
                    SignalKind::CloudTrail => known.count + signal.count,
                };
                known.severity = known.severity.max(signal.severity);
                if signal.last_seen >= known.last_seen {
                    known.description = signal.description.clone();
                }
                for i in &signal.indicators {
                    if !known.indicators.contains(i) {
                        known.indicators.push(i.clone());
                    }
                }
                false
            }
            None if room => {
                entry.signals.push(signal.clone());
                true
            }
            None => false,
        };
        let has_finding = entry.signals.iter().any(|s| s.kind == SignalKind::Finding);
        if !joined || entry.signals.len() < self.config.min_signals || !has_finding {
            return None;
        }
        let episode = episode_id(group.sequence_type, &group.key, entry.episode_start);
        let key = AggregationKey::new(
            group.sequence_type,
            &entry.resource,
            [("sequence", episode.as_str())],
        )
        .ok()?;
        let mut finding = Finding::draft(group.sequence_type, entry.resource.clone());
        let tactics = tactics(&entry.signals);
        finding.title = format!(
            "Potential compromise of {} indicated by a sequence of {} signals.",
            entry.label,
            entry.signals.len()
        );
        finding.description = format!(
            "{} signals on {} since {} span the tactics {}: {}.",
            entry.signals.len(),
            entry.label,
            format_millis(entry.episode_start),
            tactics.join(", "),
            entry
                .signals
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        finding.service.resource_role = Some(resource_role::TARGET.to_owned());
        finding.service.detection = Some(json!({
            "sequence": sequence_json(&episode, &finding.description, &entry.signals, &tactics)
        }));
        let members: Vec<String> = entry
            .signals
            .iter()
            .filter(|s| s.kind == SignalKind::Finding)
            .map(|s| s.uid.clone())
            .collect();
        finding.service.set_ward_details(&WardDetails {
            rule_id: Some("correlate.attack-sequence".into()),
            linked_finding_ids: members.clone(),
            ..WardDetails::default()
        });
        let first_seen = entry
            .signals
            .iter()
            .map(|s| s.first_seen)
            .min()
            .unwrap_or(t);
        Some(SequenceUpdate {
            occurrence: Occurrence {
                key,
                event_time: t,
                details: finding,
            },
            members,
            first_seen,
        })
    }
}

/// The sequence's own id: the group and the start of its episode.
fn episode_id(t: FindingType, key: &str, start: EpochMillis) -> String {
    let digest = Sha256::new()
        .chain_update(b"ward-sequence-v1\0")
        .chain_update(t.name().as_bytes())
        .chain_update(b"\0")
        .chain_update(key.as_bytes())
        .chain_update(start.to_be_bytes())
        .finalize();
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// Distinct tactics in signal order.
fn tactics(signals: &[SequenceSignal]) -> Vec<&'static str> {
    let mut out = Vec::new();
    for s in signals {
        if !out.contains(&s.tactic) {
            out.push(s.tactic);
        }
    }
    out
}

fn sequence_json(
    uid: &str,
    description: &str,
    signals: &[SequenceSignal],
    tactics: &[&str],
) -> Value {
    let mut resources: Vec<Value> = Vec::new();
    let mut seen_resources = BTreeSet::new();
    let mut actors: Vec<Value> = Vec::new();
    let mut endpoints: Vec<Value> = Vec::new();
    let mut indicators: Vec<(&str, Vec<String>)> = Vec::new();
    let mut add_indicator = |key: &'static str, value: &str| match indicators
        .iter_mut()
        .find(|(k, _)| *k == key)
    {
        Some((_, values)) if !values.iter().any(|v| v == value) => values.push(value.to_owned()),
        Some(_) => {}
        None => indicators.push((key, vec![value.to_owned()])),
    };
    for t in tactics {
        add_indicator("ATTACK_TACTIC", t);
    }
    let json_signals: Vec<Value> = signals
        .iter()
        .map(|s| {
            for (uid, kind, name) in &s.resources {
                if seen_resources.insert(uid.clone()) {
                    resources.push(json!({"uid": uid, "name": name, "resourceType": kind}));
                }
            }
            let mut actor_ids = Vec::new();
            for a in &s.actors {
                let id = a["id"].clone();
                if !actors.iter().any(|x| x["id"] == id) {
                    actors.push(a.clone());
                }
                actor_ids.push(id);
            }
            let mut endpoint_ids = Vec::new();
            for e in &s.endpoints {
                let id = e["id"].clone();
                if !endpoints.iter().any(|x| x["id"] == id) {
                    endpoints.push(e.clone());
                }
                endpoint_ids.push(id);
            }
            for (k, v) in &s.indicators {
                add_indicator(k, v);
            }
            let mut signal_indicators: Vec<(&str, Vec<&str>)> =
                vec![("ATTACK_TACTIC", vec![s.tactic])];
            for (k, v) in &s.indicators {
                match signal_indicators.iter_mut().find(|(key, _)| key == k) {
                    Some((_, values)) => values.push(v),
                    None => signal_indicators.push((k, vec![v])),
                }
            }
            json!({
                "uid": s.uid,
                "type": s.kind.name(),
                "name": s.name,
                "description": s.description,
                "createdAt": format_millis(s.first_seen),
                "updatedAt": format_millis(s.last_seen),
                "firstSeenAt": format_millis(s.first_seen),
                "lastSeenAt": format_millis(s.last_seen),
                "severity": s.severity,
                "count": s.count,
                "resourceUids": s.resources.iter().map(|r| r.0.clone()).collect::<Vec<_>>(),
                "actorIds": actor_ids,
                "endpointIds": endpoint_ids,
                "signalIndicators": signal_indicators
                    .into_iter()
                    .map(|(k, v)| json!({"key": k, "values": v}))
                    .collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "uid": uid,
        "description": description,
        "actors": actors,
        "resources": resources,
        "endpoints": endpoints,
        "signals": json_signals,
        "sequenceIndicators": indicators
            .into_iter()
            .map(|(k, v)| json!({"key": k, "values": v, "title": indicator_title(k)}))
            .collect::<Vec<_>>(),
    })
}

fn indicator_title(key: &str) -> &'static str {
    match key {
        "ATTACK_TACTIC" => "MITRE ATT&CK tactics observed",
        "HIGH_RISK_API" => "High-risk API calls",
        "MALICIOUS_DOMAIN" => "Malicious domains",
        "CRYPTOMINING_DOMAIN" => "Cryptomining domains",
        "MALICIOUS_IP" => "Malicious IP addresses",
        "CRYPTOMINING_IP" => "Cryptomining IP addresses",
        "SUSPICIOUS_PROCESS" => "Suspicious processes",
        "CRYPTOMINING_PROCESS" => "Cryptomining processes",
        _ => "Indicators",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::findings::InstanceDetails;

    fn group(instance: &str) -> GroupKey {
        GroupKey {
            sequence_type: FindingType::AttackSequenceEc2CompromisedInstanceGroup,
            key: format!("instance:{instance}"),
            resource: Resource {
                instance_details: Some(InstanceDetails {
                    instance_id: Some(instance.into()),
                    ..Default::default()
                }),
                ..Default::default()
            },
            label: format!("instance {instance}"),
        }
    }

    fn signal(uid: &str, kind: SignalKind, at: EpochMillis) -> SequenceSignal {
        SequenceSignal {
            uid: uid.into(),
            kind,
            name: format!("name-{uid}"),
            description: String::new(),
            severity: 5.0,
            first_seen: at,
            last_seen: at,
            count: 1,
            tactic: if uid.starts_with('a') {
                "Execution"
            } else {
                "Impact"
            },
            resources: vec![("i-1".into(), "EC2_INSTANCE", "i-1".into())],
            actors: vec![],
            endpoints: vec![],
            indicators: vec![("SUSPICIOUS_PROCESS", "xmrig".into())],
        }
    }

    #[test]
    fn three_signals_make_a_sequence_that_later_signals_update() {
        let mut seq = Sequences::default();
        let g = group("i-1");
        assert!(
            seq.observe(&g, &signal("a1", SignalKind::Finding, 1_000))
                .is_none()
        );
        // The same finding again is still one signal.
        assert!(
            seq.observe(&g, &signal("a1", SignalKind::Finding, 1_500))
                .is_none()
        );
        assert!(
            seq.observe(&g, &signal("b2", SignalKind::Finding, 2_000))
                .is_none()
        );
        let first = seq
            .observe(&g, &signal("c3", SignalKind::Finding, 3_000))
            .expect("third distinct signal");
        assert_eq!(first.members, ["a1", "b2", "c3"]);
        assert_eq!(first.first_seen, 1_000);
        let d = first.occurrence.details.service.detection.clone().unwrap();
        assert_eq!(d["sequence"]["signals"].as_array().unwrap().len(), 3);
        assert_eq!(
            d["sequence"]["signals"][0]["lastSeenAt"],
            format_millis(1_500)
        );
        assert_eq!(
            d["sequence"]["sequenceIndicators"][0]["values"],
            json!(["Execution", "Impact"])
        );
        assert!(
            seq.observe(&g, &signal("b2", SignalKind::Finding, 3_500))
                .is_none(),
            "a repeat is folded in, not re-sent"
        );
        let fourth = seq
            .observe(&g, &signal("d4", SignalKind::Finding, 4_000))
            .unwrap();
        let d = fourth.occurrence.details.service.detection.clone().unwrap();
        assert_eq!(
            d["sequence"]["signals"][1]["lastSeenAt"],
            format_millis(3_500)
        );
        assert_eq!(fourth.occurrence.key, first.occurrence.key, "same sequence");
        assert_eq!(fourth.members.len(), 4);
        assert_eq!(
            fourth.occurrence.details.severity.label(),
            "Critical",
            "{:?}",
            fourth.occurrence.details.severity
        );
        // After a silence longer than the window, a new episode with its own key.
        let day = SequenceConfig::default().window_ms;
        let later = 4_000 + day + 1;
        assert!(
            seq.observe(&g, &signal("a1", SignalKind::Finding, later))
                .is_none()
        );
        seq.observe(&g, &signal("b2", SignalKind::Finding, later + 1));
        let next = seq
            .observe(&g, &signal("c3", SignalKind::Finding, later + 2))
            .unwrap();
        assert_ne!(next.occurrence.key, first.occurrence.key);
    }

    #[test]
    fn api_calls_alone_make_no_sequence() {
        let mut seq = Sequences::default();
        let g = group("i-2");
        for (i, uid) in ["x", "y", "z", "w"].iter().enumerate() {
            assert!(
                seq.observe(&g, &signal(uid, SignalKind::CloudTrail, i as i64))
                    .is_none()
            );
        }
        assert!(
            seq.observe(&g, &signal("f", SignalKind::Finding, 10))
                .is_some()
        );
    }
}
