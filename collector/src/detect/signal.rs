//! What a detection produces ([`Signal`]) and how it becomes an aggregation [`Occurrence`]: the
//! resource from the host and container, `runtimeDetails.process` and lineage from the event's
//! process, Ward's extensions, the aggregation key and the event time.

use sha2::{Digest, Sha256};

use super::event::{Ancestor, Process, RuntimeEvent};
use crate::findings::finding::resource_role;
use crate::findings::resource::resource_type;
use crate::findings::time::{format_millis, parse_millis};
use crate::findings::{
    Action, AggregationError, AggregationKey, Container, Evidence, Finding, FindingType,
    InstanceDetails, LineageObject, Occurrence, ProcessDetails, Resource, RuntimeContext,
    RuntimeDetails, Severity, ThreatIntelligenceDetail, WardContainer, WardDetails, WardProcess,
};

/// One detection on one event, before it becomes a finding.
#[derive(Debug, Clone)]
pub struct Signal {
    pub finding_type: FindingType,
    /// Overrides the catalogue's default severity.
    pub severity: Option<Severity>,
    pub title: Option<String>,
    pub description: Option<String>,
    pub context: RuntimeContext,
    pub action: Option<Action>,
    /// Threat list hit: list name and threat names (evidence and `additionalInfo.threatListName`).
    pub threat: Option<(String, Vec<String>)>,
    /// The SHA-256 that was on the list (evidence `threatFileSha256`).
    pub threat_file_sha256: Option<String>,
    /// Aggregation facts beyond the acting executable (`domain`, `remoteIp`, `target`, …).
    pub facts: Vec<(&'static str, String)>,
    /// The rule id or detector name, for `additionalInfo.ward.ruleId`.
    pub rule_id: String,
}

impl Signal {
    pub fn new(finding_type: FindingType, rule_id: impl Into<String>) -> Self {
        Self {
            finding_type,
            severity: None,
            title: None,
            description: None,
            context: RuntimeContext::default(),
            action: None,
            threat: None,
            threat_file_sha256: None,
            facts: Vec::new(),
            rule_id: rule_id.into(),
        }
    }

    pub fn fact(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.facts.push((name, value.into()));
        self
    }

    pub fn context(mut self, context: RuntimeContext) -> Self {
        self.context = context;
        self
    }

    pub fn description(mut self, text: impl Into<String>) -> Self {
        self.description = Some(text.into());
        self
    }
}

/// Where the events come from: the host the agent runs on. The agent's `watch` output does not
/// name its host, so the collector supplies it (from the stream's authenticated identity, or from
/// the command line offline).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostIdentity {
    pub instance_id: String,
    pub agent_id: Option<String>,
    pub hostname: Option<String>,
}

/// A stable id for one process instance (pid and start time), shaped like a UUID as GuardDuty's
/// `process.uuid` is. Same process, same id, in every finding.
pub fn process_uuid(pid: u32, start_time: &str) -> String {
    let digest = Sha256::new()
        .chain_update(b"ward-process-v1\0")
        .chain_update(pid.to_be_bytes())
        .chain_update(start_time.as_bytes())
        .finalize();
    let h: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn millis_text(rfc3339: &str) -> Option<String> {
    parse_millis(rfc3339).map(format_millis)
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

/// `ProcessDetails` for the acting process, lineage included.
pub fn process_details(p: &Process) -> ProcessDetails {
    let uuid = |pid, start: &str| process_uuid(pid, start);
    let lineage = p
        .ancestors
        .iter()
        .enumerate()
        .map(|(i, a)| LineageObject {
            start_time: millis_text(&a.start_time),
            namespace_pid: Some(a.ns_pid.into()),
            user_id: Some(a.uid.into()),
            name: non_empty(&a.name),
            pid: Some(a.pid.into()),
            uuid: Some(uuid(a.pid, &a.start_time)),
            executable_path: non_empty(&a.executable),
            euid: Some(a.euid.into()),
            parent_uuid: p
                .ancestors
                .get(i + 1)
                .map(|pa| uuid(pa.pid, &pa.start_time)),
        })
        .collect();
    ProcessDetails {
        name: non_empty(&p.name),
        executable_path: non_empty(&p.executable),
        executable_sha256: p.sha256.get().map(str::to_owned),
        namespace_pid: Some(p.ns_pid.into()),
        pwd: non_empty(&p.cwd),
        pid: Some(p.pid.into()),
        start_time: millis_text(&p.start_time),
        uuid: Some(uuid(p.pid, &p.start_time)),
        parent_uuid: p.ancestors.first().map(|a| uuid(a.pid, &a.start_time)),
        user: None,
        user_id: Some(p.uid.into()),
        euid: Some(p.euid.into()),
        lineage,
    }
}

/// A related process (a ptrace target, the writer of a binary) in `ProcessDetails` form.
pub fn ancestor_details(a: &Ancestor) -> ProcessDetails {
    ProcessDetails {
        name: non_empty(&a.name),
        executable_path: non_empty(&a.executable),
        namespace_pid: Some(a.ns_pid.into()),
        pid: Some(a.pid.into()),
        start_time: millis_text(&a.start_time),
        uuid: (!a.start_time.is_empty()).then(|| process_uuid(a.pid, &a.start_time)),
        user_id: Some(a.uid.into()),
        euid: Some(a.euid.into()),
        ..ProcessDetails::default()
    }
}

fn ward_process(pid: u32, start: &str, name: &str, exe: &str, uid: u32, euid: u32) -> WardProcess {
    WardProcess {
        pid: Some(pid.into()),
        start_time: millis_text(start),
        uuid: Some(process_uuid(pid, start)),
        name: non_empty(name),
        executable_path: non_empty(exe),
        command_line: Vec::new(),
        user_id: Some(uid.into()),
        euid: Some(euid.into()),
    }
}

/// Ward's view of a process (argv, ancestry, container) for `additionalInfo.ward`: the same
/// members runtime findings carry, for findings from other sources attributed to a process.
pub fn ward_process_view(p: &Process) -> (WardProcess, Vec<WardProcess>, Option<WardContainer>) {
    let mut me = ward_process(p.pid, &p.start_time, &p.name, &p.executable, p.uid, p.euid);
    me.command_line = p.args.clone();
    let ancestry = p
        .ancestors
        .iter()
        .map(|a| ward_process(a.pid, &a.start_time, &a.name, &a.executable, a.uid, a.euid))
        .collect();
    let container = p
        .container
        .as_ref()
        .filter(|c| !c.id.is_empty())
        .map(|c| WardContainer {
            id: Some(c.id.clone()),
            runtime: non_empty(&c.runtime),
            cgroup_path: non_empty(&p.cgroup),
            ..WardContainer::default()
        });
    (me, ancestry, container)
}

/// The resource a runtime finding is about: the instance, and the container when the process
/// runs in one (then `resourceType` is `Container` and findings are kept per container).
pub fn resource(host: &HostIdentity, process: Option<&Process>) -> Resource {
    let mut resource = Resource {
        resource_type: Some(resource_type::INSTANCE.to_owned()),
        instance_details: Some(InstanceDetails {
            instance_id: Some(host.instance_id.clone()),
            ..InstanceDetails::default()
        }),
        ..Resource::default()
    };
    if let Some(p) = process
        && let Some(id) = p.container_id()
    {
        resource.resource_type = Some(resource_type::CONTAINER.to_owned());
        resource.container_details = Some(Container {
            id: Some(id.to_owned()),
            container_runtime: p.container.as_ref().and_then(|c| non_empty(&c.runtime)),
            ..Container::default()
        });
    }
    resource
}

/// Turns a signal on `ev` into an occurrence for the aggregator.
pub fn occurrence(
    signal: Signal,
    ev: &RuntimeEvent,
    host: &HostIdentity,
) -> Result<Occurrence, AggregationError> {
    let t = signal.finding_type;
    let process = ev.process.as_ref();
    let resource = resource(host, process);
    let executable = process
        .map(|p| {
            if !p.executable.is_empty() {
                p.executable.clone()
            } else {
                p.sha256.get().unwrap_or(&p.name).to_owned()
            }
        })
        .unwrap_or_default();
    let mut facts: Vec<(&str, &str)> = vec![("executable", executable.as_str())];
    facts.extend(signal.facts.iter().map(|(k, v)| (*k, v.as_str())));
    let key = AggregationKey::new(t, &resource, facts)?;

    let mut finding = Finding::draft(t, resource);
    if let Some(severity) = signal.severity {
        finding.severity = severity;
    }
    let who = process
        .map(|p| format!("process {} (pid {}, {})", p.name, p.pid, p.executable))
        .unwrap_or_else(|| "an unattributed process".to_owned());
    let place = match process.and_then(Process::container_id) {
        Some(id) => format!(
            "container {} on {}",
            &id[..id.len().min(12)],
            host.instance_id
        ),
        None => host.instance_id.clone(),
    };
    finding.title = signal
        .title
        .unwrap_or_else(|| format!("{} by {who} on {place}.", t.threat_family()));
    finding.description = match signal.description {
        Some(text) => format!("{text} Process: {who}, on {place}."),
        None => finding.title.clone(),
    };
    let service = &mut finding.service;
    service.resource_role = Some(resource_role::TARGET.to_owned());
    service.action = signal.action;
    service.runtime_details = Some(RuntimeDetails {
        process: process.map(process_details),
        context: (signal.context != RuntimeContext::default()).then_some(signal.context),
    });
    if let Some((list, names)) = signal.threat {
        service.set_additional_info("threatListName", list.clone().into());
        service.evidence = Some(Evidence {
            threat_intelligence_details: vec![ThreatIntelligenceDetail {
                threat_list_name: Some(list),
                threat_names: names,
                threat_file_sha256: signal.threat_file_sha256,
            }],
        });
    }
    if let Some(agent) = &host.agent_id {
        service.set_additional_info("agentDetails", serde_json::json!({ "agentId": agent }));
    }
    let mut ward = WardDetails {
        agent_id: host.agent_id.clone(),
        hostname: host.hostname.clone(),
        rule_id: Some(signal.rule_id),
        ..WardDetails::default()
    };
    if let Some(p) = process {
        let (me, ancestry, container) = ward_process_view(p);
        ward.process = Some(me);
        ward.ancestry = ancestry;
        ward.container = container;
    }
    service.set_ward_details(&ward);
    Ok(Occurrence {
        key,
        event_time: ev.time_millis().unwrap_or_default(),
        details: finding,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_stable_and_distinct() {
        let a = process_uuid(10, "2026-01-01T00:00:00.000000001Z");
        assert_eq!(a, process_uuid(10, "2026-01-01T00:00:00.000000001Z"));
        assert_ne!(a, process_uuid(10, "2026-01-01T00:00:00.000000002Z"));
        assert_eq!(a.len(), 36);
        assert_eq!(a.matches('-').count(), 4);
    }

    #[test]
    fn occurrences_carry_process_lineage_and_container() {
        let ev = RuntimeEvent::from_json(
            r#"{"type":"process_exec","time":"2026-01-01T00:00:01.5Z","process":{"pid":30,"ns_pid":3,
              "start_time":"2026-01-01T00:00:01Z","name":"xmrig","executable":"/tmp/xmrig","args":["/tmp/xmrig","-o","x"],
              "uid":33,"euid":33,"cwd":"/tmp","cgroup":"/docker/abc","container":{"id":"abcdef0123456789","runtime":"docker"},
              "ancestors":[{"pid":20,"start_time":"2026-01-01T00:00:00Z","name":"sh","executable":"/bin/sh","uid":33,"euid":33},
                           {"pid":10,"start_time":"2025-12-31T00:00:00Z","name":"apache2","executable":"/usr/sbin/apache2"}]}}"#,
        )
        .unwrap();
        let host = HostIdentity {
            instance_id: "i-0123".into(),
            agent_id: Some("agent-1".into()),
            hostname: None,
        };
        let occ = occurrence(
            Signal::new(FindingType::ImpactRuntimeCryptoMinerExecuted, "r1"),
            &ev,
            &host,
        )
        .unwrap();
        let f = occ.details;
        assert_eq!(occ.event_time, 1_767_225_601_500);
        assert_eq!(f.resource.resource_type.as_deref(), Some("Container"));
        assert_eq!(
            f.resource.container_details.as_ref().unwrap().id.as_deref(),
            Some("abcdef0123456789")
        );
        let p = f
            .service
            .runtime_details
            .as_ref()
            .unwrap()
            .process
            .as_ref()
            .unwrap();
        assert_eq!(p.pid, Some(30));
        assert_eq!(p.namespace_pid, Some(3));
        assert_eq!(p.lineage.len(), 2);
        assert_eq!(p.parent_uuid, p.lineage[0].uuid);
        assert_eq!(p.lineage[0].parent_uuid, p.lineage[1].uuid);
        assert_eq!(p.lineage[1].parent_uuid, None);
        assert_eq!(p.start_time.as_deref(), Some("2026-01-01T00:00:01.000Z"));
        let ward = f.service.ward_details().unwrap();
        assert_eq!(ward.rule_id.as_deref(), Some("r1"));
        assert_eq!(
            ward.process.unwrap().command_line,
            ["/tmp/xmrig", "-o", "x"]
        );
        assert_eq!(ward.ancestry[1].name.as_deref(), Some("apache2"));
        assert!(
            f.title.contains("container abcdef012345 on i-0123"),
            "{}",
            f.title
        );
        assert_eq!(
            f.service.additional_info_entries()["agentDetails"]["agentId"],
            "agent-1"
        );
    }
}
