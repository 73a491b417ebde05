//! The top-level finding and its `service` block, serialised exactly as GuardDuty's EventBridge
//! events carry them (camelCase member names, `schemaVersion "2.0"`).
//!
//! Conventions for the whole model:
//! * Every optional member is skipped when absent; `null`, absent and (for lists) `[]` mean the same
//!   and Ward writes none of them.
//! * Timestamps are kept as the wire strings (see [`super::time`]); Ward writes them with
//!   milliseconds, parsed findings keep whatever precision they came with.
//! * Members of protection plans Ward does not model are kept verbatim in `other` maps so imported
//!   GuardDuty findings survive a round trip.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::action::Action;
use super::resource::Resource;
use super::runtime::RuntimeDetails;
use super::severity::Severity;
use super::ward::WardDetails;

pub const SCHEMA_VERSION: &str = "2.0";
pub const SERVICE_NAME: &str = "guardduty";
pub const DEFAULT_PARTITION: &str = "aws";

/// `service.resourceRole` values.
pub mod resource_role {
    pub const TARGET: &str = "TARGET";
    pub const ACTOR: &str = "ACTOR";
}

/// `service.featureName` values Ward emits.
pub mod feature_name {
    pub const RUNTIME_MONITORING: &str = "RuntimeMonitoring";
    pub const CLOUD_TRAIL: &str = "CloudTrail";
    pub const FLOW_LOGS: &str = "FlowLogs";
    pub const DNS_LOGS: &str = "DnsLogs";
    pub const S3_DATA_EVENTS: &str = "S3DataEvents";
}

/// The key in `service.additionalInfo` under which Ward's own details live (see [`WardDetails`]).
pub const WARD_ADDITIONAL_INFO_KEY: &str = "ward";

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub schema_version: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub account_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub region: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub partition: String,
    /// 32 lower-case hex characters; stable across occurrences of one aggregated finding.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    /// `arn:<partition>:guardduty:<region>:<account>:detector/<detectorId>/finding/<id>`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub arn: String,
    /// The finding type name, e.g. `Backdoor:Runtime/C&CActivity.B!DNS`. A string rather than
    /// [`super::FindingType`] so findings of types Ward does not emit (other protection plans,
    /// retired types) still parse; [`Finding::finding_type`] gives the typed view.
    #[serde(rename = "type")]
    pub finding_type_name: String,
    pub severity: Severity,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub title: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub created_at: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub updated_at: String,
    /// Present and 0 means "marked false positive".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub associated_attack_sequence_arn: Option<String>,
    #[serde(default)]
    pub resource: Resource,
    #[serde(default)]
    pub service: Service,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Service {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub service_name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detector_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Action>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<Evidence>,
    /// Always written: filters commonly test `service.archived` = `false`.
    #[serde(default)]
    pub archived: bool,
    /// Number of aggregated occurrences; 0 only in findings parsed without a count.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub count: u64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub event_first_seen: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub event_last_seen: String,
    /// `TARGET` or `ACTOR`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_feedback: Option<String>,
    /// Free-form details. GuardDuty's API wraps them as `{"value": "<json text>", "type": "default"}`
    /// while EventBridge deliveries carry the keys directly; the map holds whichever arrived.
    /// Ward writes keys directly, including its own [`WardDetails`] under `ward`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub additional_info: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feature_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_details: Option<RuntimeDetails>,
    /// Anomaly and attack-sequence payloads (`{anomaly, sequence}`); typed once correlation exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detection: Option<Value>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

fn is_zero(count: &u64) -> bool {
    *count == 0
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Evidence {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub threat_intelligence_details: Vec<ThreatIntelligenceDetail>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ThreatIntelligenceDetail {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threat_list_name: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub threat_names: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threat_file_sha256: Option<String>,
}

/// Builds the finding ARN GuardDuty uses.
pub fn finding_arn(
    partition: &str,
    region: &str,
    account_id: &str,
    detector_id: &str,
    finding_id: &str,
) -> String {
    format!(
        "arn:{partition}:guardduty:{region}:{account_id}:detector/{detector_id}/finding/{finding_id}"
    )
}

impl Finding {
    /// The starting point for a detector's occurrence: type name and default severity from the
    /// catalogue, the resource (its `resourceType` defaulted from the catalogue when unset) and,
    /// for runtime types, `featureName = RuntimeMonitoring`. Identity, times and count are left
    /// to the aggregator.
    pub fn draft(finding_type: super::FindingType, mut resource: Resource) -> Self {
        resource
            .resource_type
            .get_or_insert_with(|| finding_type.default_resource_type().to_owned());
        let mut finding = Self {
            finding_type_name: finding_type.name().to_owned(),
            severity: finding_type.default_severity(),
            resource,
            ..Self::default()
        };
        if finding_type.source() == super::DataSource::Runtime {
            finding.service.feature_name = Some(feature_name::RUNTIME_MONITORING.to_owned());
        }
        finding
    }

    /// The catalogue entry for this finding's type, if it is one Ward knows.
    pub fn finding_type(&self) -> Option<super::FindingType> {
        self.finding_type_name.parse().ok()
    }

    pub fn to_json_value(&self) -> Value {
        serde_json::to_value(self).expect("a Finding always serialises: all map keys are strings")
    }

    pub fn from_json_str(text: &str) -> serde_json::Result<Self> {
        serde_json::from_str(text)
    }
}

impl Service {
    /// `additionalInfo` as plain keys: the API's `{"value": "<json>", "type": "default"}` wrapper is
    /// unwrapped (its JSON text parsed) so callers see one shape whichever way the finding arrived.
    pub fn additional_info_entries(&self) -> Map<String, Value> {
        let Some(info) = &self.additional_info else {
            return Map::new();
        };
        if let (Some(Value::String(encoded)), Some(Value::String(_))) =
            (info.get("value"), info.get("type"))
            && let Ok(Value::Object(decoded)) = serde_json::from_str(encoded)
        {
            return decoded;
        }
        info.clone()
    }

    /// Sets one `additionalInfo` key (creating the map if needed).
    pub fn set_additional_info(&mut self, key: &str, value: Value) {
        self.additional_info
            .get_or_insert_with(Map::new)
            .insert(key.to_owned(), value);
    }

    /// Ward's own details (`service.additionalInfo.ward`), if present and well-formed.
    pub fn ward_details(&self) -> Option<WardDetails> {
        let raw = self
            .additional_info_entries()
            .remove(WARD_ADDITIONAL_INFO_KEY)?;
        serde_json::from_value(raw).ok()
    }

    pub fn set_ward_details(&mut self, details: &WardDetails) {
        let value = serde_json::to_value(details).expect("WardDetails always serialises");
        self.set_additional_info(WARD_ADDITIONAL_INFO_KEY, value);
    }

    /// The list name of the first threat-intelligence hit, from evidence or additionalInfo.
    pub fn threat_list_name(&self) -> Option<String> {
        self.evidence
            .as_ref()
            .and_then(|e| {
                e.threat_intelligence_details
                    .iter()
                    .find_map(|d| d.threat_list_name.clone())
            })
            .or_else(|| {
                self.additional_info_entries()
                    .get("threatListName")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::findings::FindingType;

    #[test]
    fn drafts_take_defaults_from_the_catalogue() {
        let draft = Finding::draft(
            FindingType::ExecutionRuntimeReverseShell,
            Resource::default(),
        );
        assert_eq!(draft.finding_type_name, "Execution:Runtime/ReverseShell");
        assert_eq!(draft.severity, Severity(8.0));
        assert_eq!(draft.resource.resource_type.as_deref(), Some("Instance"));
        assert_eq!(
            draft.service.feature_name.as_deref(),
            Some("RuntimeMonitoring")
        );

        let eks = Resource {
            resource_type: Some("EKSCluster".into()),
            ..Resource::default()
        };
        let draft = Finding::draft(FindingType::ReconIamUserTorIpCaller, eks);
        assert_eq!(
            draft.resource.resource_type.as_deref(),
            Some("EKSCluster"),
            "an explicit type is kept"
        );
        assert_eq!(draft.service.feature_name, None);
        assert_eq!(draft.severity.label(), "Medium");
    }

    #[test]
    fn wrapped_and_plain_additional_info_read_the_same() {
        let mut plain = Service::default();
        plain.set_additional_info("threatListName", Value::from("corp"));
        let mut wrapped = Service::default();
        wrapped.set_additional_info("value", Value::from(r#"{"threatListName":"corp"}"#));
        wrapped.set_additional_info("type", Value::from("default"));
        assert_eq!(
            plain.additional_info_entries(),
            wrapped.additional_info_entries()
        );
        assert_eq!(wrapped.threat_list_name().as_deref(), Some("corp"));
        assert_eq!(Service::default().threat_list_name(), None);
    }
}
