//! Correlation: the host's runtime view joined with flow, DNS and CloudTrail findings, and attack
//! sequences. A stage after detection and before store/outputs.
//!
//! Inputs, each in event time:
//! * agent Hellos ([`Correlator::on_hello`]) and configured instances: the [`hosts::HostMap`];
//! * agent events ([`Correlator::on_runtime_event`]): connects, accepts, DNS queries and
//!   metadata-service fetches, indexed per host ([`activity`]);
//! * CloudTrail records ([`Correlator::on_cloudtrail`]): instance-role sessions used elsewhere
//!   ([`credentials`]) and notable calls (weak signals for sequences);
//! * findings from the runtime and cloud-log engines ([`Correlator::on_finding`]).
//!
//! Outputs ([`Correlated`]): the input finding, enriched; earlier findings updated with a new link
//! or sequence ARN; cross-layer credential findings; attack-sequence findings.
//!
//! What each part adds:
//! * **Process attribution** ([`attribution`]): a flow-log or DNS-log finding on a host with an
//!   agent gets `runtimeDetails.process` and `additionalInfo.ward.{process, ancestry, container,
//!   attribution}`.
//! * **Twins**: when the agent and the logs raise the same detection for one host and indicator
//!   (`CryptoCurrency:Runtime/BitcoinTool.B!DNS` and `CryptoCurrency:EC2/BitcoinTool.B!DNS` for the
//!   same query), the **first to arrive is the alert** (in practice the runtime finding: the agent
//!   reports in under a second, Resolver logs arrive minutes later). The second is passed on
//!   archived (`service.archived = true`, `ward.duplicateOf = <first id>`): stored and searchable,
//!   not alerted. Both carry each other's id in `ward.linkedFindingIds`; the first is re-emitted
//!   as an update carrying the link.
//! * **Credential theft across layers** ([`credentials`]): one
//!   `InstanceCredentialExfiltration` finding naming the process that fetched the credentials, the
//!   host and the calls made elsewhere.
//! * **Attack sequences** ([`sequences`]): `AttackSequence:*` findings over groups of signals; member
//!   findings get `associatedAttackSequenceArn` and are re-emitted once when it is set.
//!
//! Order matters only as it does live: the runtime stream is expected to run ahead of the logs
//! (it does: CloudTrail, flow and Resolver logs are delivered 5-15 minutes late), and every
//! window is in event time, so a replay in the same order gives the same output.

pub mod activity;
pub mod attribution;
pub mod credentials;
pub mod hosts;
pub mod sequences;
pub mod signals;
pub mod state;
pub mod tactics;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::detect::event::RuntimeEvent;
use crate::detect::signal::{process_details, ward_process_view};
use crate::event::CloudTrailRecord;
use crate::findings::finding::resource_role;
use crate::findings::time::{EpochMillis, format_millis};
use crate::findings::{
    Action, AggregationKey, Aggregator, AwsApiCallAction, Finding, Occurrence, Outcome,
    RemoteIpDetails, RuntimeDetails, Scope, WardDetails,
};

use activity::{Activity, ActivityConfig, EventOrigin};
use attribution::{TwinKey, twin_key};
use credentials::{CredentialConfig, outside_use};
use hosts::HostMap;
use sequences::{SequenceConfig, Sequences};

/// Every window and limit of the stage.
#[derive(Debug, Clone)]
pub struct CorrelateConfig {
    /// Where correlation findings (cross-layer, sequences) are filed.
    pub scope: Scope,
    pub activity: ActivityConfig,
    pub credentials: CredentialConfig,
    pub sequences: SequenceConfig,
}

impl CorrelateConfig {
    pub fn new(scope: Scope) -> Self {
        Self {
            scope,
            activity: ActivityConfig::default(),
            credentials: CredentialConfig::default(),
            sequences: SequenceConfig::default(),
        }
    }
}

/// Why a finding is in the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// The input finding, unchanged.
    Passed,
    /// The input finding with a process attributed.
    Attributed,
    /// The input finding, archived as the twin of one already sent (`ward.duplicateOf`).
    Duplicate,
    /// An earlier finding that now links a twin.
    Linked,
    /// A cross-layer credential-theft finding created or updated.
    CredentialTheft,
    /// An attack-sequence finding created or updated.
    Sequence,
    /// An earlier log finding whose process arrived after it (see [`Correlator::flush_runtime`]).
    LateAttributed,
    /// An earlier finding that now names its attack sequence.
    SequenceMember,
}

#[derive(Debug, Clone)]
pub struct Correlated {
    pub change: Change,
    pub finding: Finding,
}

/// Counters for operators and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CorrelateStats {
    pub findings: u64,
    pub attributed: u64,
    pub duplicates: u64,
    pub credential_findings: u64,
    pub sequence_updates: u64,
    /// Log findings attributed when runtime events arrived after them.
    pub late_attributed: u64,
}

/// The findings of one twin key, per side (0: runtime, 1: logs), and which side spoke first.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct TwinState {
    first_side: usize,
    ids: [Vec<String>; 2],
}

/// The correlation stage. Synchronous and single-threaded, like the engines around it.
pub struct Correlator {
    config: CorrelateConfig,
    hosts: HostMap,
    activity: Activity,
    sequences: Sequences,
    /// Findings the stage raises itself (cross-layer, sequences).
    aggregator: Aggregator,
    /// The latest state of every finding that passed, to re-emit it with a new link or ARN.
    known: HashMap<String, Finding>,
    twins: HashMap<TwinKey, TwinState>,
    links: HashMap<String, BTreeSet<String>>,
    duplicate_of: HashMap<String, String>,
    sequence_of: HashMap<String, String>,
    /// Outside calls per credential-theft finding id, oldest first.
    api_calls: HashMap<String, Vec<crate::findings::WardApiCall>>,
    /// Log findings on hosts with an agent whose process was not (yet) seen, by instance: retried
    /// as that host's runtime events arrive, until its stream has passed the evidence window.
    pending: BTreeMap<String, Vec<String>>,
    /// Hosts with runtime events since the last [`Correlator::flush_runtime`].
    touched: BTreeSet<String>,
    /// Something changed since the last [`Correlator::take_changed`].
    changed: bool,
    stats: CorrelateStats,
}

/// Log findings waiting for runtime evidence, at most, per host (the oldest give way).
const MAX_PENDING_PER_HOST: usize = 1_000;

impl Correlator {
    pub fn new(config: CorrelateConfig, hosts: HostMap) -> Self {
        Self {
            activity: Activity::new(config.activity.clone()),
            sequences: Sequences::new(config.sequences.clone()),
            aggregator: Aggregator::new(config.scope.clone()),
            config,
            hosts,
            known: HashMap::new(),
            twins: HashMap::new(),
            links: HashMap::new(),
            duplicate_of: HashMap::new(),
            sequence_of: HashMap::new(),
            api_calls: HashMap::new(),
            pending: BTreeMap::new(),
            touched: BTreeSet::new(),
            changed: false,
            stats: CorrelateStats::default(),
        }
    }

    pub fn config(&self) -> &CorrelateConfig {
        &self.config
    }

    /// The host map, to add configured instances.
    pub fn hosts_mut(&mut self) -> &mut HostMap {
        self.changed = true;
        &mut self.hosts
    }

    /// The runtime index (newest times, fetches kept), for persistence.
    pub fn activity(&self) -> &Activity {
        &self.activity
    }

    /// True once if anything changed since the last call: whether the state needs saving.
    pub fn take_changed(&mut self) -> bool {
        std::mem::take(&mut self.changed)
    }

    pub fn hosts(&self) -> &HostMap {
        &self.hosts
    }

    pub fn stats(&self) -> &CorrelateStats {
        &self.stats
    }

    /// An agent's Hello, at event time `at` (the stream's first event, or the arrival time live).
    pub fn on_hello(
        &mut self,
        agent_id: &str,
        hello: &ward_proto::v1::HostIdentity,
        at: EpochMillis,
    ) {
        self.changed = true;
        self.hosts.observe_hello(agent_id, hello, at);
    }

    /// One agent event from the host `instance_id`.
    pub fn on_runtime_event(&mut self, instance_id: &str, ev: &RuntimeEvent) {
        self.activity.observe(instance_id, ev);
        self.touched.insert(instance_id.to_owned());
    }

    /// One agent event from the agent `agent_id` (its instance from the host map; ignored when
    /// the agent announced none).
    pub fn on_agent_event(&mut self, agent_id: &str, ev: &RuntimeEvent) {
        self.on_agent_event_at(agent_id, ev, None);
    }

    /// [`Correlator::on_agent_event`] for an event at `origin` in the batch log.
    pub fn on_agent_event_at(
        &mut self,
        agent_id: &str,
        ev: &RuntimeEvent,
        origin: Option<EventOrigin>,
    ) {
        if !Activity::wants(ev.kind) {
            return;
        }
        if let Some(instance) = self.hosts.instance_of_agent(agent_id) {
            let instance = instance.to_owned();
            // Connections and queries are not persisted (the log is replayed); fetches are.
            self.changed |= self.activity.observe_at(&instance, ev, origin);
            self.touched.insert(instance);
        }
    }

    /// Forgets which hosts sent events (after the log replay at start: what the replayed events
    /// could resolve was resolved before the restart).
    pub fn clear_touched(&mut self) {
        self.touched.clear();
    }

    /// After a run of agent events: log findings waiting on the hosts that sent them get their
    /// process now if it has arrived (re-emitted as [`Change::LateAttributed`]); those whose
    /// evidence window the host's stream has passed stop waiting.
    pub fn flush_runtime(&mut self) -> Vec<Correlated> {
        let mut out = Vec::new();
        for instance in std::mem::take(&mut self.touched) {
            let Some(ids) = self.pending.remove(&instance) else {
                continue;
            };
            let newest = self.activity.newest(&instance).unwrap_or(EpochMillis::MIN);
            let mut waiting = Vec::new();
            for id in ids {
                let Some(mut finding) = self.known.get(&id).cloned() else {
                    continue;
                };
                if finding
                    .service
                    .ward_details()
                    .is_some_and(|w| w.attribution.is_some())
                {
                    continue; // a later occurrence found its process meanwhile
                }
                if attribution::attribute(&mut finding, &self.activity) {
                    self.stats.attributed += 1;
                    self.stats.late_attributed += 1;
                    self.decorate(&mut finding);
                    self.known.insert(id, finding.clone());
                    out.push(Correlated {
                        change: Change::LateAttributed,
                        finding,
                    });
                } else if attribution::evidence_deadline(&finding, self.activity.config())
                    .is_some_and(|d| newest <= d)
                {
                    waiting.push(id);
                }
            }
            if !waiting.is_empty() {
                self.pending.insert(instance, waiting);
            }
        }
        if !out.is_empty() {
            self.changed = true;
        }
        out
    }

    /// True for the CloudTrail records [`Correlator::on_cloudtrail`] can act on: instance-role
    /// sessions and notable calls (the cloud path keeps only these for the correlator).
    pub fn reads_call(record: &CloudTrailRecord<'_>) -> bool {
        let instance_session = record.user_identity.as_ref().is_some_and(|u| {
            u.identity_type.as_deref() == Some("AssumedRole")
                && u.arn
                    .as_deref()
                    .and_then(|a| a.rsplit('/').next())
                    .is_some_and(credentials::looks_like_instance_id)
        });
        instance_session
            || matches!(
                (record.event_source.as_deref(), record.event_name.as_deref()),
                (Some(source), Some(name)) if tactics::notable_call(source, name).is_some()
            )
    }

    /// One CloudTrail record: instance credentials used elsewhere, notable calls.
    pub fn on_cloudtrail(&mut self, record: &CloudTrailRecord<'_>) -> Vec<Correlated> {
        let mut out = Vec::new();
        self.changed = true;
        if let Some(use_) = outside_use(record, &self.hosts, &self.config.credentials) {
            let finding = self.credential_finding(use_);
            self.stats.credential_findings += 1;
            self.pass(finding, Change::CredentialTheft, &mut out);
        }
        if let (Some(source), Some(name)) =
            (record.event_source.as_deref(), record.event_name.as_deref())
            && let Some(tactic) = tactics::notable_call(source, name)
            && let Some((group, signal)) = signals::api_signal(record, tactic)
        {
            self.sequence_signal(&group, &signal, &mut out);
        }
        out
    }

    /// One finding from an engine (runtime or cloud-log).
    pub fn on_finding(&mut self, mut finding: Finding) -> Vec<Correlated> {
        self.stats.findings += 1;
        self.changed = true;
        let mut out = Vec::new();
        let change = if attribution::attribute(&mut finding, &self.activity) {
            self.stats.attributed += 1;
            Change::Attributed
        } else if let Some(earlier) = self.known.get(&finding.id)
            && attribution::carry_over(earlier, &mut finding)
        {
            // A new occurrence whose evidence is gone keeps the process found for an earlier one.
            Change::Attributed
        } else {
            self.wait_for_evidence(&finding);
            Change::Passed
        };
        self.pass(finding, change, &mut out);
        out
    }

    /// Keeps a log finding that found no process for later, if its host has an agent whose
    /// stream has not yet passed the finding's evidence window.
    fn wait_for_evidence(&mut self, finding: &Finding) {
        let Some(deadline) = attribution::evidence_deadline(finding, self.activity.config()) else {
            return;
        };
        let Some(instance) = attribution::instance_of(finding) else {
            return;
        };
        if self
            .hosts
            .host(&instance)
            .is_none_or(|h| h.agent_id.is_none())
        {
            return;
        }
        if self
            .activity
            .newest(&instance)
            .is_some_and(|newest| newest > deadline)
        {
            return;
        }
        let ids = self.pending.entry(instance).or_default();
        if !ids.contains(&finding.id) {
            ids.push(finding.id.clone());
            if ids.len() > MAX_PENDING_PER_HOST {
                ids.remove(0);
            }
        }
    }

    /// Twins, decoration, sequences; pushes the finding (first) and whatever it changed.
    fn pass(&mut self, mut finding: Finding, change: Change, out: &mut Vec<Correlated>) {
        let mut updates = Vec::new();
        if let Some(key) = twin_key(&finding) {
            let side = usize::from(
                finding
                    .finding_type()
                    .is_some_and(|t| t.source() != crate::findings::DataSource::Runtime),
            );
            let id = finding.id.clone();
            let state = self.twins.entry(key).or_insert_with(|| TwinState {
                first_side: side,
                ids: [Vec::new(), Vec::new()],
            });
            if !state.ids[side].contains(&id) {
                state.ids[side].push(id.clone());
            }
            let first = state.first_side;
            // Findings from the side that spoke second duplicate the first side's (several runtime
            // findings may share a key: one per querying executable; all of them get the link).
            if side != first
                && let Some(original) = state.ids[first].first().cloned()
                && !self.duplicate_of.contains_key(&id)
            {
                self.duplicate_of.insert(id.clone(), original);
                self.stats.duplicates += 1;
                for other in state.ids[first].clone() {
                    self.links
                        .entry(id.clone())
                        .or_default()
                        .insert(other.clone());
                    self.links
                        .entry(other.clone())
                        .or_default()
                        .insert(id.clone());
                    updates.push((other, Change::Linked));
                }
            }
        }
        let change = if self.duplicate_of.contains_key(&finding.id) {
            Change::Duplicate
        } else {
            change
        };
        self.decorate(&mut finding);
        // Sequences see the finding before it is sent, so a finding that completes a sequence
        // goes out once, already naming it.
        let mut sequence_out = Vec::new();
        if !finding.service.archived
            && let Some(signal) = signals::finding_signal(&finding)
        {
            for group in signals::finding_groups(&finding, &self.hosts) {
                self.sequence_signal(&group, &signal, &mut sequence_out);
            }
        }
        self.decorate(&mut finding);
        self.known.insert(finding.id.clone(), finding.clone());
        out.push(Correlated { change, finding });
        out.append(&mut sequence_out);
        for (id, change) in updates {
            if let Some(mut earlier) = self.known.get(&id).cloned() {
                self.decorate(&mut earlier);
                self.known.insert(id, earlier.clone());
                out.push(Correlated {
                    change,
                    finding: earlier,
                });
            }
        }
    }

    /// Applies what the stage knows about a finding id: links, duplicate status, sequence ARN.
    fn decorate(&self, finding: &mut Finding) {
        let links = self.links.get(&finding.id);
        let duplicate = self.duplicate_of.get(&finding.id);
        if links.is_some() || duplicate.is_some() {
            let mut ward = finding.service.ward_details().unwrap_or_default();
            for id in links.into_iter().flatten() {
                if !ward.linked_finding_ids.contains(id) {
                    ward.linked_finding_ids.push(id.clone());
                }
            }
            if let Some(first) = duplicate {
                ward.duplicate_of = Some(first.clone());
                finding.service.archived = true;
            }
            finding.service.set_ward_details(&ward);
        }
        if let Some(arn) = self.sequence_of.get(&finding.id) {
            finding.associated_attack_sequence_arn = Some(arn.clone());
        }
    }

    /// Adds a signal to a group; emits the sequence and re-emits members that gained its ARN.
    fn sequence_signal(
        &mut self,
        group: &sequences::GroupKey,
        signal: &sequences::SequenceSignal,
        out: &mut Vec<Correlated>,
    ) {
        let Some(update) = self.sequences.observe(group, signal) else {
            return;
        };
        let Ok((_, sequence)) = self.aggregator.record(update.occurrence) else {
            return;
        };
        let mut sequence = sequence.clone();
        sequence.service.event_first_seen = format_millis(update.first_seen);
        self.aggregator.restore([sequence.clone()]);
        self.stats.sequence_updates += 1;
        let arn = sequence.arn.clone();
        let mut members = Vec::new();
        for id in update.members {
            if self.sequence_of.get(&id) != Some(&arn) {
                self.sequence_of.insert(id.clone(), arn.clone());
                members.push(id);
            }
        }
        out.push(Correlated {
            change: Change::Sequence,
            finding: sequence,
        });
        for id in members {
            if let Some(mut member) = self.known.get(&id).cloned() {
                self.decorate(&mut member);
                self.known.insert(id, member.clone());
                out.push(Correlated {
                    change: Change::SequenceMember,
                    finding: member,
                });
            }
        }
    }

    /// The cross-layer finding for one outside call: the call, the host, the fetching process.
    fn credential_finding(&mut self, use_: credentials::OutsideUse) -> Finding {
        let t = use_.finding_type;
        let key = AggregationKey::new(t, &use_.resource, [])
            .expect("an access-key resource has an identity and the family needs no facts");
        let id = key.finding_id(&self.config.scope);
        let calls = self.api_calls.entry(id).or_default();
        calls.push(use_.call.clone());
        let max = self.config.credentials.max_api_calls.max(1);
        if calls.len() > max {
            let excess = calls.len() - max;
            calls.drain(..excess);
        }
        let first_call = calls
            .first()
            .and_then(|c| crate::findings::time::parse_millis(&c.event_time))
            .unwrap_or(use_.time)
            .min(use_.time);
        let retention = self.config.activity.credential_retention_ms;
        let fetches =
            self.activity
                .credential_fetches(&use_.instance_id, first_call - retention, first_call);
        let fetch = fetches
            .iter()
            .find(|f| f.names_credentials_path)
            .or(fetches.first())
            .copied();
        let host = self.hosts.host(&use_.instance_id);
        let mut finding = Finding::draft(t, use_.resource.clone());
        let place = match (&use_.other_instance, t.name().ends_with("OutsideAWS")) {
            (Some(other), _) => format!("instance {other}"),
            (None, true) => "outside AWS".to_owned(),
            (None, false) => "another host inside AWS".to_owned(),
        };
        let who = match fetch {
            Some(f) => format!(
                " They were fetched from instance metadata by process {} (pid {}, {}) at {}.",
                f.process.name,
                f.process.pid,
                f.process.executable,
                format_millis(f.time)
            ),
            None => " No process on the instance was seen fetching them.".to_owned(),
        };
        finding.title = format!(
            "Credentials of instance {} (role {}) used from {} {place}.",
            use_.instance_id, use_.role, use_.source_ip
        );
        finding.description = format!(
            "Credentials created exclusively for instance {} through its role {} were used from {} \
             ({place}): {} call(s), the latest {} ({}).{who}",
            use_.instance_id,
            use_.role,
            use_.source_ip,
            calls.len(),
            use_.call.event_name,
            use_.call.event_source
        );
        let (v4, v6) = match use_.source_ip {
            std::net::IpAddr::V4(ip) => (Some(ip.to_string()), None),
            std::net::IpAddr::V6(ip) => (None, Some(ip.to_string())),
        };
        let service = &mut finding.service;
        service.resource_role = Some(resource_role::TARGET.to_owned());
        service.action = Some(Action {
            action_type: Some("AWS_API_CALL".into()),
            aws_api_call_action: Some(AwsApiCallAction {
                api: Some(use_.call.event_name.clone()),
                caller_type: Some("Remote IP".into()),
                user_agent: use_.call.user_agent.clone(),
                error_code: use_.call.error_code.clone(),
                service_name: Some(use_.call.event_source.clone()),
                remote_ip_details: Some(RemoteIpDetails {
                    ip_address_v4: v4,
                    ip_address_v6: v6,
                    ..RemoteIpDetails::default()
                }),
                ..AwsApiCallAction::default()
            }),
            ..Action::default()
        });
        let mut ward = WardDetails {
            rule_id: Some("correlate.instance-credential-exfiltration".into()),
            instance_id: Some(use_.instance_id.clone()),
            agent_id: host.and_then(|h| h.agent_id.clone()),
            hostname: host.and_then(|h| h.hostname.clone()),
            api_calls: calls.clone(),
            ..WardDetails::default()
        };
        if let Some(f) = fetch {
            let (me, ancestry, container) = ward_process_view(&f.process);
            ward.process = Some(me);
            ward.ancestry = ancestry;
            ward.container = container;
            ward.attribution = Some(crate::findings::WardAttribution {
                event_type: "net_connect".into(),
                matched_on: f.how.clone(),
                event_time: format_millis(f.time),
                candidates: fetches.len() as u32,
            });
            service.runtime_details = Some(RuntimeDetails {
                process: Some(process_details(&f.process)),
                context: None,
            });
        }
        service.set_ward_details(&ward);
        let occurrence = Occurrence {
            key,
            event_time: use_.time,
            details: finding,
        };
        let (outcome, finding) = self
            .aggregator
            .record(occurrence)
            .expect("the key was built for this finding's type");
        let mut finding = finding.clone();
        // A late (older) call only counts in the aggregator; the call list still gains it.
        if outcome
            == (Outcome::Updated {
                details_replaced: false,
            })
        {
            let mut ward = finding.service.ward_details().unwrap_or_default();
            ward.api_calls = self.api_calls[&finding.id].clone();
            finding.service.set_ward_details(&ward);
            self.aggregator.restore([finding.clone()]);
        }
        finding
    }
}

#[cfg(test)]
mod tests;
