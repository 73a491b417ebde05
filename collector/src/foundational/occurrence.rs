//! The one way foundational detectors describe what they found ([`Draft`]) and turn it into an
//! aggregation [`Occurrence`]: catalogue defaults, `featureName` by data source, evidence, the
//! threat lists that matched, and a pointer to the log record in `additionalInfo.ward.logRecord`.

use serde_json::Value;

use super::LogContext;
use crate::event::{Event, Record};
use crate::findings::finding::{feature_name, resource_role};
use crate::findings::{
    Action, AggregationKey, DataSource, Evidence, Finding, FindingType, LogRecordRef, Occurrence,
    Resource, Severity, ThreatIntelligenceDetail, WardDetails,
};

/// A detection before it becomes an occurrence.
#[derive(Debug, Clone)]
pub struct Draft {
    pub finding_type: FindingType,
    pub resource: Resource,
    /// Aggregation facts beyond the resource (see `findings::aggregation`).
    pub facts: Vec<(&'static str, String)>,
    /// Overrides the catalogue's default severity.
    pub severity: Option<Severity>,
    pub title: String,
    pub description: String,
    pub action: Option<Action>,
    /// `TARGET` (default) or `ACTOR`.
    pub resource_role: &'static str,
    /// Names of the threat lists that matched (evidence and `additionalInfo.threatListName`).
    pub threat_lists: Vec<String>,
    pub threat_names: Vec<String>,
    /// Extra `service.additionalInfo` keys.
    pub additional_info: Vec<(&'static str, Value)>,
    /// `service.detection` (anomaly details).
    pub detection: Option<Value>,
    pub rule_id: &'static str,
    pub event_time: i64,
    pub record: Option<LogRecordRef>,
    /// CloudTrail `eventID`s (or other record ids) behind this occurrence.
    pub event_ids: Vec<String>,
    /// Account and Region to file the finding under (set from the record's scope).
    pub account_id: String,
    pub region: String,
}

impl Draft {
    /// A draft about one record: its time, its pointer, its `eventID` and its account/Region.
    pub fn from_event(
        finding_type: FindingType,
        resource: Resource,
        rule_id: &'static str,
        event: &Event<'_>,
        ctx: &LogContext<'_>,
    ) -> Self {
        let mut d = Self::new(
            finding_type,
            resource,
            rule_id,
            event.time_ms().unwrap_or_default(),
        );
        d.record = Some(LogRecordRef {
            source: event.source().name().to_owned(),
            object: event.origin.object.to_owned(),
            line: event.origin.line,
            index: event.origin.index,
        });
        if let Record::CloudTrail(r) = event.record
            && let Some(id) = r.event_id.as_deref()
        {
            d.event_ids.push(id.to_owned());
        }
        d.account_id.clone_from(&ctx.scope.account_id);
        d.region.clone_from(&ctx.scope.region);
        d
    }

    /// A draft not tied to one record (a closed window); set `record` and scope yourself.
    pub fn new(
        finding_type: FindingType,
        resource: Resource,
        rule_id: &'static str,
        event_time: i64,
    ) -> Self {
        Self {
            finding_type,
            resource,
            facts: Vec::new(),
            severity: None,
            title: String::new(),
            description: String::new(),
            action: None,
            resource_role: resource_role::TARGET,
            threat_lists: Vec::new(),
            threat_names: Vec::new(),
            additional_info: Vec::new(),
            detection: None,
            rule_id,
            event_time,
            record: None,
            event_ids: Vec::new(),
            account_id: String::new(),
            region: String::new(),
        }
    }

    pub fn text(mut self, title: impl Into<String>, description: impl Into<String>) -> Self {
        self.title = title.into();
        self.description = description.into();
        self
    }

    pub fn action(mut self, action: Action) -> Self {
        self.action = Some(action);
        self
    }

    pub fn severity(mut self, severity: Severity) -> Self {
        self.severity = Some(severity);
        self
    }

    pub fn fact(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.facts.push((name, value.into()));
        self
    }

    pub fn info(mut self, key: &'static str, value: Value) -> Self {
        self.additional_info.push((key, value));
        self
    }

    pub fn threat(mut self, lists: Vec<String>) -> Self {
        self.threat_lists = lists;
        self
    }

    /// The occurrence, or `None` when the resource or facts cannot key a finding (a detector
    /// bug or a record without identity; the engine counts it).
    pub fn build(self) -> Option<Occurrence> {
        let t = self.finding_type;
        let facts = self.facts.iter().map(|(k, v)| (*k, v.as_str()));
        let key = AggregationKey::new(t, &self.resource, facts).ok()?;
        let mut f = Finding::draft(t, self.resource);
        f.account_id = self.account_id;
        f.region = self.region;
        if let Some(s) = self.severity {
            f.severity = s;
        }
        f.title = if self.title.is_empty() {
            t.threat_family().to_owned()
        } else {
            self.title
        };
        f.description = if self.description.is_empty() {
            f.title.clone()
        } else {
            self.description
        };
        let s = &mut f.service;
        s.action = self.action;
        s.resource_role = Some(self.resource_role.to_owned());
        s.feature_name = Some(
            match t.source() {
                DataSource::VpcFlowLogs => feature_name::FLOW_LOGS,
                DataSource::DnsLogs => feature_name::DNS_LOGS,
                DataSource::S3DataEvents => feature_name::S3_DATA_EVENTS,
                _ => feature_name::CLOUD_TRAIL,
            }
            .to_owned(),
        );
        if let Some(first) = self.threat_lists.first() {
            s.set_additional_info("threatListName", first.clone().into());
            s.evidence = Some(Evidence {
                threat_intelligence_details: self
                    .threat_lists
                    .iter()
                    .map(|l| ThreatIntelligenceDetail {
                        threat_list_name: Some(l.clone()),
                        threat_names: self.threat_names.clone(),
                        threat_file_sha256: None,
                    })
                    .collect(),
            });
        }
        for (k, v) in self.additional_info {
            s.set_additional_info(k, v);
        }
        s.detection = self.detection;
        s.set_ward_details(&WardDetails {
            event_ids: self.event_ids,
            log_record: self.record,
            rule_id: Some(self.rule_id.to_owned()),
            ..WardDetails::default()
        });
        Some(Occurrence {
            key,
            event_time: self.event_time,
            details: f,
        })
    }
}
