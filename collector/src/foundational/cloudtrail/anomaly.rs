//! The `…:IAMUser/AnomalousBehavior` family: a principal calls an API it has never called, after
//! a learning period, and the API belongs to a tactic GuardDuty profiles.
//!
//! GuardDuty's models are not published; Ward's baseline is explicit and inspectable: per
//! principal (ARN, else principal id), the set of `service:API` pairs it has called and when it was
//! first seen. While a principal is younger than the learning period (`scan --learning-period`,
//! default 7 days of event time) everything it does is learned. After that, the first call of an
//! API outside its set raises the type of the API's tactic ([`tactic`]) and is then learned, so
//! each new API raises once. Calls made by AWS services are ignored. The baseline is persisted
//! (at most 20 000 principals and 2 000 APIs each; beyond that, new principals are not tracked).
//!
//! A consequence worth knowing: principals first seen in the logs being scanned are learning, so a
//! short log (a detonation, a single day) raises nothing here; use `--state` to carry baselines
//! across scans.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{SOURCES, api_draft, by_aws_service, caller_name, record};
use crate::event::{Event, SourceKind};
use crate::findings::{FindingType, Occurrence};
use crate::foundational::{LogContext, LogDetector};

const MAX_PRINCIPALS: usize = 20_000;
const MAX_APIS: usize = 2_000;

/// The AnomalousBehavior type an API belongs to, after GuardDuty's examples (spec §5.2) and the
/// API's verb; `None` for APIs GuardDuty does not profile by tactic.
pub fn tactic(name: &str) -> Option<FindingType> {
    use FindingType as T;
    let explicit = match name {
        "GetPasswordData"
        | "GetSecretValue"
        | "BatchGetSecretValue"
        | "GenerateDbAuthToken"
        | "GetParameter"
        | "GetParameters"
        | "GetParametersByPath"
        | "GetCredentialReport"
        | "GenerateCredentialReport"
        | "GetSigninToken" => Some(T::CredentialAccessIamUserAnomalousBehavior),
        "StopLogging"
        | "DeleteTrail"
        | "UpdateTrail"
        | "PutEventSelectors"
        | "DeleteFlowLogs"
        | "DisableAlarmActions"
        | "DeleteDetector"
        | "UpdateDetector"
        | "DisassociateFromMasterAccount"
        | "DeleteResolverQueryLogConfig"
        | "DisassociateResolverQueryLogConfig"
        | "DeleteLogGroup"
        | "DeleteLogStream"
        | "StopConfigurationRecorder"
        | "DeleteConfigurationRecorder"
        | "DeleteDeliveryChannel"
        | "DeleteConfigRule"
        | "DisableSecurityHub"
        | "LeaveOrganization"
        | "DisableEbsEncryptionByDefault"
        | "DeleteModelInvocationLoggingConfiguration"
        | "PutBucketLogging"
        | "DeleteBucketPublicAccessBlock" => Some(T::DefenseEvasionIamUserAnomalousBehavior),
        "PutBucketReplication"
        | "CreateSnapshot"
        | "CopySnapshot"
        | "ModifySnapshotAttribute"
        | "ModifyImageAttribute"
        | "ModifyDBSnapshotAttribute"
        | "ModifyDBClusterSnapshotAttribute"
        | "RestoreDBInstanceFromDBSnapshot"
        | "CreateDBSnapshot"
        | "CopyDBSnapshot"
        | "StartExportTask"
        | "CopyImage"
        | "CreateImage"
        | "ShareDirectory" => Some(T::ExfiltrationIamUserAnomalousBehavior),
        "GetFederationToken"
        | "GetSessionToken"
        | "StartSession"
        | "GetAuthorizationToken"
        | "SendSSHPublicKey"
        | "SendSerialConsoleSSHPublicKey"
        | "CreateLoginProfile"
        | "ConsoleLogin" => Some(T::InitialAccessIamUserAnomalousBehavior),
        "AssociateIamInstanceProfile"
        | "ReplaceIamInstanceProfileAssociation"
        | "AddUserToGroup"
        | "PutUserPolicy"
        | "PutRolePolicy"
        | "PutGroupPolicy"
        | "AttachUserPolicy"
        | "AttachRolePolicy"
        | "AttachGroupPolicy"
        | "CreatePolicyVersion"
        | "SetDefaultPolicyVersion"
        | "UpdateAssumeRolePolicy"
        | "UpdateLoginProfile"
        | "PassRole" => Some(T::PrivilegeEscalationIamUserAnomalousBehavior),
        "CreateAccessKey"
        | "ImportKeyPair"
        | "CreateKeyPair"
        | "ModifyInstanceAttribute"
        | "UpdateFunctionCode"
        | "UpdateFunctionConfiguration"
        | "AddPermission"
        | "PublishLayerVersion"
        | "CreateTrustAnchor"
        | "CreateProfile"
        | "AuthorizeSecurityGroupIngress"
        | "SendCommand"
        | "EnableSerialConsoleAccess" => Some(T::PersistenceIamUserAnomalousBehavior),
        "RunInstances"
        | "TerminateInstances"
        | "StopInstances"
        | "DeleteSecurityGroup"
        | "UpdateUser"
        | "PutBucketPolicy"
        | "DeleteBucket"
        | "DeleteDBInstance"
        | "ScheduleKeyDeletion"
        | "DisableKey" => Some(T::ImpactIamUserAnomalousBehavior),
        _ => None,
    };
    if explicit.is_some() {
        return explicit;
    }
    let verb_is = |p: &[&str]| p.iter().any(|v| name.starts_with(v));
    if verb_is(&["Describe", "List", "Get", "Search", "Lookup"]) {
        Some(T::DiscoveryIamUserAnomalousBehavior)
    } else if verb_is(&["Create", "Import", "Register", "Enable"]) {
        Some(T::PersistenceIamUserAnomalousBehavior)
    } else if verb_is(&[
        "Delete", "Put", "Update", "Modify", "Remove", "Detach", "Disable",
    ]) {
        Some(T::ImpactIamUserAnomalousBehavior)
    } else {
        None
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Profile {
    first_seen_ms: i64,
    apis: BTreeSet<String>,
}

#[derive(Default)]
pub struct AnomalousApis {
    principals: BTreeMap<String, Profile>,
}

impl LogDetector for AnomalousApis {
    fn name(&self) -> &'static str {
        "ct.anomalous-behavior"
    }

    fn sources(&self) -> &'static [SourceKind] {
        SOURCES
    }

    fn on_event(&mut self, ev: &Event<'_>, ctx: &LogContext<'_>, out: &mut Vec<Occurrence>) {
        let Some(rec) = record(ev) else { return };
        let (Some(name), Some(now)) = (rec.event_name.as_deref(), ev.time_ms()) else {
            return;
        };
        if by_aws_service(rec) {
            return;
        }
        let who = caller_name(rec);
        let service = rec
            .event_source
            .as_deref()
            .unwrap_or("")
            .trim_end_matches(".amazonaws.com");
        let api = format!("{service}:{name}");
        if !self.principals.contains_key(&who) && self.principals.len() >= MAX_PRINCIPALS {
            return;
        }
        let profile = self.principals.entry(who).or_insert_with(|| Profile {
            first_seen_ms: now,
            apis: BTreeSet::new(),
        });
        profile.first_seen_ms = profile.first_seen_ms.min(now);
        if profile.apis.contains(&api) {
            return;
        }
        let learned_until = profile.first_seen_ms + ctx.settings.learning_period_ms;
        let known = profile.apis.len();
        if profile.apis.len() < MAX_APIS {
            profile.apis.insert(api.clone());
        }
        if now < learned_until {
            return;
        }
        let Some(t) = tactic(name) else { return };
        let detection = json!({ "anomaly": {
            "unusual": { "api": api, "userAgent": rec.user_agent.as_deref(),
                         "ipAddress": rec.source_ip_address.as_deref() },
            "profiles": { "principal": { "knownApis": known,
                          "learningSince": crate::findings::time::format_millis(learned_until - ctx.settings.learning_period_ms) } }
        }});
        let mut d = api_draft(
            t,
            self.name(),
            ev,
            rec,
            ctx,
            "A principal called an API it had not called before",
        );
        d.detection = Some(detection);
        out.extend(d.build());
    }

    fn save_state(&self) -> Option<Value> {
        Some(json!({ "principals": self.principals }))
    }

    fn restore_state(&mut self, state: Value) -> Result<(), String> {
        self.principals =
            serde_json::from_value(state.get("principals").cloned().unwrap_or_default())
                .map_err(|e| format!("principals: {e}"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::foundational::Settings;
    use crate::foundational::cloudtrail::testing::{run_with, stratus, types};
    use crate::intel::IntelIndex;

    #[test]
    fn tactics_follow_guardduty_examples() {
        use FindingType as T;
        assert_eq!(
            tactic("GetSecretValue"),
            Some(T::CredentialAccessIamUserAnomalousBehavior)
        );
        assert_eq!(
            tactic("DeleteFlowLogs"),
            Some(T::DefenseEvasionIamUserAnomalousBehavior)
        );
        assert_eq!(
            tactic("DescribeInstances"),
            Some(T::DiscoveryIamUserAnomalousBehavior)
        );
        assert_eq!(
            tactic("ModifySnapshotAttribute"),
            Some(T::ExfiltrationIamUserAnomalousBehavior)
        );
        assert_eq!(
            tactic("DeleteSecurityGroup"),
            Some(T::ImpactIamUserAnomalousBehavior)
        );
        assert_eq!(
            tactic("GetFederationToken"),
            Some(T::InitialAccessIamUserAnomalousBehavior)
        );
        assert_eq!(
            tactic("CreateAccessKey"),
            Some(T::PersistenceIamUserAnomalousBehavior)
        );
        assert_eq!(
            tactic("PutUserPolicy"),
            Some(T::PrivilegeEscalationIamUserAnomalousBehavior)
        );
        assert_eq!(tactic("AssumeRole"), None);
    }

    #[test]
    fn new_apis_after_learning_raise_once_and_the_baseline_persists() {
        let settings = Settings {
            learning_period_ms: 24 * 3600 * 1000,
            ..Settings::default()
        };
        let intel = IntelIndex::default();
        // A principal's real calls (Stratus), learned on day one.
        let day1 = stratus("aws.credential-access.secretsmanager-retrieve-secrets");
        let mut d = AnomalousApis::default();
        assert!(
            run_with(&mut d, &day1, &intel, &settings).is_empty(),
            "learning"
        );
        // Eight days later: the same calls are known, a new one is not.
        let later = |r: &Value, name: &str| {
            let mut r = r.clone();
            r["eventTime"] = "2030-01-01T00:00:00Z".into();
            r["eventName"] = name.into();
            r
        };
        let known = day1
            .iter()
            .find(|r| r["eventName"] == "GetSecretValue")
            .unwrap();
        assert!(run_with(&mut d, &[later(known, "GetSecretValue")], &intel, &settings).is_empty());
        let occ = run_with(
            &mut d,
            &[
                later(known, "DeleteSecurityGroup"),
                later(known, "DeleteSecurityGroup"),
            ],
            &intel,
            &settings,
        );
        assert_eq!(types(&occ), ["Impact:IAMUser/AnomalousBehavior"]);
        assert_eq!(
            occ[0].details.service.detection.as_ref().unwrap()["anomaly"]["unusual"]["api"],
            "secretsmanager:DeleteSecurityGroup"
        );
        let mut restored = AnomalousApis::default();
        restored.restore_state(d.save_state().unwrap()).unwrap();
        assert!(
            run_with(
                &mut restored,
                &[later(known, "DeleteSecurityGroup")],
                &intel,
                &settings
            )
            .is_empty(),
            "learned after raising, across a restart"
        );
        assert_eq!(
            types(&run_with(
                &mut restored,
                &[later(known, "CreateAccessKey")],
                &intel,
                &settings
            )),
            ["Persistence:IAMUser/AnomalousBehavior"]
        );
    }
}
