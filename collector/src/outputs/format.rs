//! What a JSON output writes per finding: the finding itself, or the EventBridge event GuardDuty
//! publishes for it (`{"version":"0","detail-type":"GuardDuty Finding","source":"aws.guardduty",
//! ...,"detail":<finding>}`), so rules and Lambdas written for GuardDuty's events work unchanged.

use crate::findings::{EventBridgeEvent, Finding};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum BodyFormat {
    /// The finding JSON.
    #[default]
    Finding,
    /// The finding inside an EventBridge `GuardDuty Finding` event.
    Eventbridge,
}

impl BodyFormat {
    pub fn name(self) -> &'static str {
        match self {
            Self::Finding => "finding",
            Self::Eventbridge => "eventbridge",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "finding" => Some(Self::Finding),
            "eventbridge" => Some(Self::Eventbridge),
            _ => None,
        }
    }

    /// The body as compact JSON (no trailing newline).
    pub fn render(self, finding: &Finding) -> Vec<u8> {
        let result = match self {
            Self::Finding => serde_json::to_vec(finding),
            Self::Eventbridge => {
                serde_json::to_vec(&EventBridgeEvent::for_finding(finding.clone()))
            }
        };
        result.expect("a Finding always serialises: all map keys are strings")
    }
}
