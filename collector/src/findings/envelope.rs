//! The EventBridge envelope GuardDuty wraps each finding in (`detail-type: GuardDuty Finding`).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::finding::Finding;

pub const DETAIL_TYPE: &str = "GuardDuty Finding";
pub const SOURCE: &str = "aws.guardduty";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventBridgeEvent {
    pub version: String,
    pub id: String,
    #[serde(rename = "detail-type")]
    pub detail_type: String,
    pub source: String,
    pub account: String,
    pub time: String,
    pub region: String,
    #[serde(default)]
    pub resources: Vec<String>,
    pub detail: Finding,
}

impl EventBridgeEvent {
    /// Wraps a finding for publication. The event id is a UUID-shaped digest of the finding id,
    /// its `updatedAt` and count, so publishing the same finding state twice gives the same event id
    /// (consumers can de-duplicate) while every aggregation update gets a new one.
    pub fn for_finding(finding: Finding) -> Self {
        let mut hasher = Sha256::new();
        for part in [
            finding.id.as_str(),
            finding.updated_at.as_str(),
            &finding.service.count.to_string(),
        ] {
            hasher.update((part.len() as u64).to_be_bytes());
            hasher.update(part.as_bytes());
        }
        let digest = hasher.finalize();
        let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
        let id = format!(
            "{}-{}-{}-{}-{}",
            &hex[0..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..32]
        );
        Self {
            version: "0".into(),
            id,
            detail_type: DETAIL_TYPE.into(),
            source: SOURCE.into(),
            account: finding.account_id.clone(),
            // EventBridge times are second-precision; updatedAt is when this state was produced.
            time: trim_millis(&finding.updated_at),
            region: finding.region.clone(),
            resources: Vec::new(),
            detail: finding,
        }
    }
}

fn trim_millis(timestamp: &str) -> String {
    match super::time::parse_millis(timestamp) {
        Some(ms) => {
            let full = super::time::format_millis(ms.div_euclid(1000) * 1000);
            format!("{}Z", &full[..19])
        }
        None => timestamp.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::findings::Severity;

    #[test]
    fn envelope_carries_the_documented_constants_and_a_stable_id() {
        let finding = Finding {
            id: "46ba0ac2845071e23ccdeb2ae03bfdea".into(),
            account_id: "111122223333".into(),
            region: "us-east-1".into(),
            finding_type_name: "Recon:EC2/Portscan".into(),
            severity: Severity(5.0),
            updated_at: "2020-09-30T12:14:00.206Z".into(),
            ..Finding::default()
        };
        let event = EventBridgeEvent::for_finding(finding.clone());
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["version"], "0");
        assert_eq!(json["detail-type"], "GuardDuty Finding");
        assert_eq!(json["source"], "aws.guardduty");
        assert_eq!(json["account"], "111122223333");
        assert_eq!(json["region"], "us-east-1");
        assert_eq!(json["time"], "2020-09-30T12:14:00Z");
        assert_eq!(json["resources"], serde_json::json!([]));
        assert_eq!(json["detail"]["id"], "46ba0ac2845071e23ccdeb2ae03bfdea");
        assert_eq!(event.id.len(), 36);
        assert_eq!(event.id, EventBridgeEvent::for_finding(finding.clone()).id);

        let mut updated = finding;
        updated.service.count = 2;
        assert_ne!(event.id, EventBridgeEvent::for_finding(updated).id);
    }
}
