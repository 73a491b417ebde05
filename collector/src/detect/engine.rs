//! The detection engine: one event in, findings out.
//!
//! Per event: the rules indexed under its type, then the detectors registered for its type, each
//! produce [`Signal`]s; a signal becomes an occurrence (see [`super::signal`]), the aggregator
//! folds it into its finding (same issue, same id, `count` up), and suppression rules archive what
//! they match. Time is the event's, never the clock, so replaying a file gives the same findings.
//!
//! The engine is synchronous and single-threaded; a service runs one per agent stream (state such
//! as the reverse-shell stdio table is per host anyway) and merges their findings downstream.

use super::config::EngineConfig;
use super::detectors::{self, DetectContext, Detector};
use super::event::{EVENT_TYPE_SLOTS, EventType, RuntimeEvent, basename};
use super::fields::Field;
use super::rules::{Rule, RuleSet};
use super::signal::{Signal, occurrence};
use crate::findings::{AggregationFamily, Aggregator, Finding, FindingType, RuntimeContext};
use crate::intel::IntelIndex;
pub use crate::suppression::Emitted;
use crate::suppression::RuleSet as SuppressionRules;

/// Counters for operators and benchmarks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EngineStats {
    pub events: u64,
    pub signals: u64,
    pub suppressed: u64,
    /// Occurrences the aggregator refused (a detection without the facts its type needs).
    pub dropped: u64,
}

pub struct Engine {
    config: EngineConfig,
    rules: RuleSet,
    detectors: Vec<Box<dyn Detector>>,
    detectors_by_type: Vec<Vec<usize>>,
    intel: IntelIndex,
    suppression: SuppressionRules,
    aggregator: Aggregator,
    signals: Vec<Signal>,
    stats: EngineStats,
}

impl Engine {
    pub fn new(
        config: EngineConfig,
        rules: RuleSet,
        intel: IntelIndex,
        suppression: SuppressionRules,
    ) -> Self {
        Self::with_detectors(config, rules, intel, suppression, detectors::builtin())
    }

    pub fn with_detectors(
        config: EngineConfig,
        rules: RuleSet,
        intel: IntelIndex,
        suppression: SuppressionRules,
        detectors: Vec<Box<dyn Detector>>,
    ) -> Self {
        let mut detectors_by_type = vec![Vec::new(); EVENT_TYPE_SLOTS];
        for (i, d) in detectors.iter().enumerate() {
            for t in d.event_types() {
                detectors_by_type[t.index()].push(i);
            }
        }
        Self {
            aggregator: Aggregator::new(config.scope.clone()),
            config,
            rules,
            detectors,
            detectors_by_type,
            intel,
            suppression,
            signals: Vec::new(),
            stats: EngineStats::default(),
        }
    }

    pub fn stats(&self) -> &EngineStats {
        &self.stats
    }

    /// Every finding in its current state.
    pub fn findings(&self) -> impl Iterator<Item = &Finding> {
        self.aggregator.findings()
    }

    /// Switches to other lists and suppression rules (changed while the engine runs); state and
    /// findings are kept.
    pub fn replace_intel(&mut self, intel: IntelIndex, suppression: SuppressionRules) {
        self.intel = intel;
        self.suppression = suppression;
    }

    /// Seeds aggregation with stored findings (after a restart), so the same issue keeps its
    /// finding and its count goes on from the stored one.
    pub fn restore(&mut self, findings: impl IntoIterator<Item = Finding>) {
        self.aggregator.restore(findings);
    }

    /// Runs every detection on one event and returns the findings it created or updated.
    pub fn process(&mut self, ev: &RuntimeEvent) -> Vec<Emitted> {
        self.stats.events += 1;
        let mut signals = std::mem::take(&mut self.signals);
        for rule in self.rules.candidates(ev.kind) {
            if rule.containers_only
                && !self.config.container_rules_on_hosts
                && ev.process.as_ref().and_then(|p| p.container_id()).is_none()
            {
                continue;
            }
            if rule.fires(ev) {
                signals.push(rule_signal(rule, ev));
            }
        }
        let ctx = DetectContext {
            config: &self.config,
            intel: &self.intel,
        };
        for &i in &self.detectors_by_type[ev.kind.index()] {
            self.detectors[i].on_event(ev, &ctx, &mut signals);
        }
        let mut emitted = Vec::new();
        for signal in signals.drain(..) {
            self.stats.signals += 1;
            let Ok(occ) = occurrence(signal, ev, &self.config.host) else {
                self.stats.dropped += 1;
                continue;
            };
            let Ok(e) = crate::suppression::record(&mut self.aggregator, &self.suppression, occ)
            else {
                self.stats.dropped += 1;
                continue;
            };
            if e.suppressed_by.is_some() {
                self.stats.suppressed += 1;
            }
            emitted.push(e);
        }
        self.signals = signals;
        emitted
    }
}

/// File operation names GuardDuty uses in `context.fileOperation`.
fn file_operation(kind: EventType) -> Option<&'static str> {
    Some(match kind {
        EventType::FileOpen
        | EventType::FileTruncate
        | EventType::FileChmod
        | EventType::FileChown
        | EventType::FileSetxattr => "Write",
        EventType::FileUnlink => "Delete",
        EventType::FileRename => "Rename",
        EventType::FileLink => "Link",
        EventType::FileSymlink => "Symlink",
        _ => return None,
    })
}

/// A rule's signal, with the runtime context GuardDuty gives findings of its type filled from the
/// event's family.
fn rule_signal(rule: &Rule, ev: &RuntimeEvent) -> Signal {
    use FindingType as T;
    let t = rule.finding_type;
    let mut c = RuntimeContext::default();
    let process = ev.process.as_ref();
    if let Some(p) = process
        && ev.kind == EventType::ProcessExec
    {
        match t {
            T::ExecutionRuntimeSuspiciousTool => {
                c.tool_name = Some(
                    rule.tool_name
                        .clone()
                        .unwrap_or_else(|| p.exe_basename().to_owned()),
                );
                c.tool_category = rule.tool_category.clone();
            }
            _ if t.threat_family().starts_with("SuspiciousCommand") => {
                c.command_line_example = Some(p.cmdline().to_owned());
            }
            _ => {}
        }
    }
    if let Some(file) = &ev.file {
        c.file_operation = file_operation(ev.kind).map(str::to_owned);
        c.file_path = Some(file.path.clone());
        c.related_file_paths = file.target.iter().cloned().collect();
        match t {
            T::PrivilegeEscalationRuntimeCGroupsReleaseAgentModified => {
                c.release_agent_path = Some(file.path.clone())
            }
            T::PrivilegeEscalationRuntimeRuncContainerEscape => {
                c.runc_binary_path = Some(file.path.clone())
            }
            _ if basename(&file.path).is_some_and(|b| b.ends_with("_history")) => {
                c.shell_history_file_path = Some(file.path.clone());
            }
            _ => {}
        }
    }
    if let Some(m) = &ev.mount {
        c.mount_source = m.source.clone();
        c.mount_target = m.target.clone();
        c.file_system_type = m.fstype.clone();
        c.flags = vec![format!("{:#x}", m.flags)];
    }
    if let Some(m) = &ev.module {
        c.module_file_path = m.path.clone();
        c.module_name = m
            .path
            .as_deref()
            .and_then(basename)
            .map(|b| b.split('.').next().unwrap_or(b).to_owned());
    }
    if let Some(s) = &ev.socket {
        c.socket_path = s.path.clone();
    }
    let mut signal = Signal::new(t, rule.id.clone()).context(c);
    signal.severity = rule.severity;
    signal.title = rule.title.clone();
    signal.description = rule.description.clone();
    for field in &rule.group_by {
        if let Some(value) = field.first_text(ev) {
            signal.facts.push((field.path(), value));
        }
    }
    // Indicator-keyed types (checked at rule load to name DNS or socket events) key on it.
    match AggregationFamily::of(t) {
        AggregationFamily::DomainIndicator => {
            if let Some(domain) = Field::DnsQuestionName.first_text(ev) {
                signal
                    .facts
                    .push(("domain", domain.trim_end_matches('.').to_ascii_lowercase()));
            }
        }
        AggregationFamily::IpIndicator => {
            if let Some(ip) = Field::SocketRemoteIp.first_text(ev) {
                signal.facts.push(("remoteIp", ip));
            }
        }
        _ => {}
    }
    signal
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::rules::RuleSet;
    use crate::findings::Outcome;

    fn engine(config: EngineConfig, suppression: &str) -> Engine {
        let suppression = if suppression.is_empty() {
            SuppressionRules::default()
        } else {
            SuppressionRules::from_json_str(suppression).unwrap()
        };
        Engine::new(
            config,
            RuleSet::builtin().unwrap(),
            IntelIndex::default(),
            suppression,
        )
    }

    fn event(kind: &str, time: &str, exe: &str, container: bool, facts: &str) -> RuntimeEvent {
        let container = if container {
            r#","container":{"id":"c1","runtime":"docker"}"#
        } else {
            ""
        };
        RuntimeEvent::from_json(&format!(
            r#"{{"type":"{kind}","time":"{time}","result":0,"process":{{"pid":5,"start_time":"2026-01-01T00:00:00Z","name":"x","executable":"{exe}","args":["x"],"uid":0,"euid":0{container}}}{facts}}}"#
        ))
        .unwrap()
    }

    #[test]
    fn repeats_aggregate_by_event_time_and_types_come_from_the_catalogue() {
        let mut e = engine(EngineConfig::default(), "");
        let first = e.process(&event(
            "process_exec",
            "2026-01-01T00:00:10Z",
            "/tmp/xmrig",
            false,
            r#","exec":{}"#,
        ));
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].outcome, Outcome::Created);
        let f = &first[0].finding;
        assert_eq!(f.finding_type_name, "Impact:Runtime/CryptoMinerExecuted");
        assert_eq!(f.severity.label(), "High");
        assert_eq!(f.created_at, "2026-01-01T00:00:10.000Z");
        let second = e.process(&event(
            "process_exec",
            "2026-01-01T00:05:00Z",
            "/tmp/xmrig",
            false,
            r#","exec":{}"#,
        ));
        assert_eq!(second[0].finding.id, f.id);
        assert_eq!(second[0].finding.service.count, 2);
        assert_eq!(
            second[0].finding.service.event_last_seen,
            "2026-01-01T00:05:00.000Z"
        );
        assert!(
            e.process(&event(
                "process_exec",
                "2026-01-01T00:06:00Z",
                "/usr/bin/ls",
                false,
                r#","exec":{}"#
            ))
            .is_empty()
        );
        assert_eq!(e.stats().events, 3);
        assert_eq!(e.findings().count(), 1);
    }

    #[test]
    fn container_only_rules_skip_hosts_unless_switched_on() {
        let mount = |container| {
            event(
                "mount",
                "2026-01-01T00:00:10Z",
                "/tmp/m",
                container,
                r#","mount":{"source":"/etc","target":"/mnt","flags":0}"#,
            )
        };
        // The built-in rule also requires a container; an operator rule shows the switch itself.
        let mut e = engine(EngineConfig::default(), "");
        assert_eq!(e.process(&mount(true)).len(), 1);
        assert!(e.process(&mount(false)).is_empty());
        let rules = RuleSet::load(&[(
            "ops.toml",
            "[[rule]]\nid = \"m\"\nfinding = \"PrivilegeEscalation:Runtime/ContainerMountsHostDirectory\"\nevents = [\"mount\"]\ncontainers_only = true\nwhen = { field = \"mount.target\", equals = \"/mnt\" }\n",
        )])
        .unwrap();
        let mut off = Engine::new(
            EngineConfig::default(),
            rules,
            IntelIndex::default(),
            SuppressionRules::default(),
        );
        assert!(off.process(&mount(false)).is_empty());
        let rules = RuleSet::load(&[(
            "ops.toml",
            "[[rule]]\nid = \"m\"\nfinding = \"PrivilegeEscalation:Runtime/ContainerMountsHostDirectory\"\nevents = [\"mount\"]\ncontainers_only = true\nwhen = { field = \"mount.target\", equals = \"/mnt\" }\n",
        )])
        .unwrap();
        let config = EngineConfig {
            container_rules_on_hosts: true,
            ..EngineConfig::default()
        };
        let mut on = Engine::new(
            config,
            rules,
            IntelIndex::default(),
            SuppressionRules::default(),
        );
        let found = on.process(&mount(false));
        assert_eq!(found.len(), 1);
        let context = found[0]
            .finding
            .service
            .runtime_details
            .as_ref()
            .unwrap()
            .context
            .as_ref()
            .unwrap();
        assert_eq!(context.mount_target.as_deref(), Some("/mnt"));
    }

    #[test]
    fn suppression_rules_archive_matching_findings() {
        let rules = r#"[{"Name": "lab-miners", "Action": "ARCHIVE", "FindingCriteria": {"Criterion": {
            "type": {"Eq": ["Impact:Runtime/CryptoMinerExecuted"]},
            "service.runtimeDetails.process.executablePath": {"Eq": ["/opt/lab/xmrig"]}}}}]"#;
        let mut e = engine(EngineConfig::default(), rules);
        let lab = e.process(&event(
            "process_exec",
            "2026-01-01T00:00:10Z",
            "/opt/lab/xmrig",
            false,
            r#","exec":{}"#,
        ));
        assert_eq!(lab[0].suppressed_by.as_deref(), Some("lab-miners"));
        assert!(lab[0].finding.service.archived);
        assert!(
            e.findings().all(|f| f.service.archived),
            "archived state is kept"
        );
        let real = e.process(&event(
            "process_exec",
            "2026-01-01T00:00:11Z",
            "/tmp/xmrig",
            false,
            r#","exec":{}"#,
        ));
        assert_eq!(real[0].suppressed_by, None);
        assert!(!real[0].finding.service.archived);
        assert_eq!(e.stats().suppressed, 1);
    }
}
