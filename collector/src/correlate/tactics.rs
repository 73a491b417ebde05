//! MITRE ATT&CK tactics of signals, and the API calls Ward counts as weak signals.
//!
//! GuardDuty's finding types carry a threat purpose (`Backdoor:`, `CryptoCurrency:`, ...) that is
//! close to, but not the same as, an ATT&CK tactic; attack sequences list tactics, so each
//! purpose maps to one (a few types are more specific than their purpose and override it).

use crate::findings::{FindingType, ThreatPurpose};

/// The ATT&CK tactic of a finding type.
pub fn tactic_of(finding_type: FindingType) -> &'static str {
    use FindingType as T;
    match finding_type {
        T::UnauthorizedAccessIamUserInstanceCredentialExfiltrationOutsideAws
        | T::UnauthorizedAccessIamUserInstanceCredentialExfiltrationInsideAws => {
            return "Credential Access";
        }
        T::TrojanEc2DnsDataExfiltration => return "Exfiltration",
        _ => {}
    }
    match finding_type.threat_purpose() {
        ThreatPurpose::Backdoor | ThreatPurpose::Trojan => "Command and Control",
        ThreatPurpose::CryptoCurrency | ThreatPurpose::Impact => "Impact",
        ThreatPurpose::CredentialAccess => "Credential Access",
        ThreatPurpose::DefenseEvasion | ThreatPurpose::Stealth => "Defense Evasion",
        ThreatPurpose::Discovery | ThreatPurpose::Recon | ThreatPurpose::PenTest => "Discovery",
        ThreatPurpose::Execution => "Execution",
        ThreatPurpose::Exfiltration => "Exfiltration",
        ThreatPurpose::InitialAccess | ThreatPurpose::UnauthorizedAccess => "Initial Access",
        ThreatPurpose::Persistence => "Persistence",
        ThreatPurpose::PrivilegeEscalation | ThreatPurpose::Policy => "Privilege Escalation",
        ThreatPurpose::Behavior => "Discovery",
        ThreatPurpose::AttackSequence => "Impact",
    }
}

/// CloudTrail calls that are weak signals on their own and strengthen a sequence on the same
/// principal: discovery an attacker runs first with stolen credentials, persistence, logging
/// tampering, secret reads and data-exposure changes. `(eventSource, eventName, tactic)`.
const NOTABLE_CALLS: &[(&str, &str, &str)] = &[
    ("sts.amazonaws.com", "GetCallerIdentity", "Discovery"),
    ("iam.amazonaws.com", "ListUsers", "Discovery"),
    ("iam.amazonaws.com", "ListRoles", "Discovery"),
    ("iam.amazonaws.com", "ListAccessKeys", "Discovery"),
    ("iam.amazonaws.com", "ListAttachedUserPolicies", "Discovery"),
    (
        "iam.amazonaws.com",
        "GetAccountAuthorizationDetails",
        "Discovery",
    ),
    ("s3.amazonaws.com", "ListBuckets", "Discovery"),
    ("ec2.amazonaws.com", "DescribeInstances", "Discovery"),
    ("secretsmanager.amazonaws.com", "ListSecrets", "Discovery"),
    ("iam.amazonaws.com", "CreateUser", "Persistence"),
    ("iam.amazonaws.com", "CreateAccessKey", "Persistence"),
    ("iam.amazonaws.com", "CreateLoginProfile", "Persistence"),
    ("iam.amazonaws.com", "UpdateLoginProfile", "Persistence"),
    (
        "iam.amazonaws.com",
        "AttachUserPolicy",
        "Privilege Escalation",
    ),
    (
        "iam.amazonaws.com",
        "AttachRolePolicy",
        "Privilege Escalation",
    ),
    ("iam.amazonaws.com", "PutUserPolicy", "Privilege Escalation"),
    ("iam.amazonaws.com", "PutRolePolicy", "Privilege Escalation"),
    (
        "iam.amazonaws.com",
        "UpdateAssumeRolePolicy",
        "Privilege Escalation",
    ),
    ("cloudtrail.amazonaws.com", "StopLogging", "Defense Evasion"),
    ("cloudtrail.amazonaws.com", "DeleteTrail", "Defense Evasion"),
    (
        "cloudtrail.amazonaws.com",
        "PutEventSelectors",
        "Defense Evasion",
    ),
    (
        "guardduty.amazonaws.com",
        "DeleteDetector",
        "Defense Evasion",
    ),
    ("ec2.amazonaws.com", "DeleteFlowLogs", "Defense Evasion"),
    (
        "secretsmanager.amazonaws.com",
        "GetSecretValue",
        "Credential Access",
    ),
    ("ssm.amazonaws.com", "GetParameters", "Credential Access"),
    ("ssm.amazonaws.com", "GetParameter", "Credential Access"),
    ("s3.amazonaws.com", "PutBucketPolicy", "Exfiltration"),
    ("s3.amazonaws.com", "PutBucketAcl", "Exfiltration"),
    (
        "s3.amazonaws.com",
        "DeleteBucketPublicAccessBlock",
        "Exfiltration",
    ),
    (
        "ec2.amazonaws.com",
        "ModifySnapshotAttribute",
        "Exfiltration",
    ),
    ("ec2.amazonaws.com", "RunInstances", "Impact"),
    ("s3.amazonaws.com", "DeleteBucket", "Impact"),
    ("kms.amazonaws.com", "ScheduleKeyDeletion", "Impact"),
];

/// The tactic of a notable call, or `None` for an ordinary one.
pub fn notable_call(event_source: &str, event_name: &str) -> Option<&'static str> {
    NOTABLE_CALLS
        .iter()
        .find(|(s, n, _)| *s == event_source && *n == event_name)
        .map(|(_, _, tactic)| *tactic)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_catalogue_type_has_a_tactic_and_overrides_apply() {
        assert_eq!(
            tactic_of(FindingType::CryptoCurrencyRuntimeBitcoinToolBDns),
            "Impact"
        );
        assert_eq!(
            tactic_of(
                FindingType::UnauthorizedAccessIamUserInstanceCredentialExfiltrationOutsideAws
            ),
            "Credential Access"
        );
        assert_eq!(
            tactic_of(FindingType::ExecutionRuntimeReverseShell),
            "Execution"
        );
        assert_eq!(
            notable_call("iam.amazonaws.com", "ListUsers"),
            Some("Discovery")
        );
        assert_eq!(notable_call("iam.amazonaws.com", "GetUser"), None);
    }
}
