//! Logging and password-policy tampering.
//!
//! `Stealth:IAMUser/CloudTrailLoggingDisabled` (Low) for a successful:
//! * `StopLogging`, `DeleteTrail` (GuardDuty's documented triggers);
//! * `UpdateTrail` that narrows what the trail records (`isMultiRegionTrail` or
//!   `includeGlobalServiceEvents` set to false) or moves where it delivers (`s3BucketName`);
//!   an `UpdateTrail` that changes neither (e.g. turning on log-file validation) raises nothing;
//! * `DeleteBucket` of a bucket a trail delivers to (learned from `CreateTrail` / `UpdateTrail`
//!   `s3BucketName`, persisted; a trail created before the logs Ward has seen is unknown to it);
//! * `PutEventSelectors` that leaves the trail recording **no management events** (every basic
//!   selector has `includeManagementEvents: false`, or no advanced selector selects the
//!   `Management` category). GuardDuty raises nothing for this (it is a known way around its
//!   CloudTrail findings); Ward raises the same type under its own rule id
//!   (`ct.logging-disabled.event-selectors`), so it can be suppressed on its own.
//!
//! `DefenseEvasion:IAMUser/BedrockLoggingDisabled` (Medium): a successful
//! `DeleteModelInvocationLoggingConfiguration`.
//!
//! `Stealth:IAMUser/PasswordPolicyChange` (Low, Medium or High): a successful
//! `UpdateAccountPasswordPolicy` or `DeleteAccountPasswordPolicy`. GuardDuty grades by how much the
//! policy was weakened. Ward keeps the last policy seen per account (persisted) and counts the
//! weakened settings: deletion is High; an update weakening 3 or more settings is High, 1-2 is
//! Medium, none is Low. With no earlier policy to compare, an update that allows passwords shorter
//! than 8 characters is Medium, otherwise Low.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{Api, SOURCES, api_draft, params, record_call};
use crate::event::{Event, SourceKind};
use crate::findings::{FindingType, Occurrence, Severity};
use crate::foundational::{Calls, LogContext, LogDetector};

/// Trail delivery buckets learned from trail creation and updates.
#[derive(Default)]
pub struct LoggingDisabled {
    trail_buckets: std::collections::BTreeSet<String>,
}

/// At most this many trail buckets are remembered.
const MAX_TRAIL_BUCKETS: usize = 10_000;

/// Whether `PutEventSelectors` parameters leave the trail without management events.
fn selectors_drop_management(p: &Value) -> bool {
    if let Some(basic) = p.get("eventSelectors").and_then(Value::as_array) {
        return basic.iter().all(|s| {
            s.get("includeManagementEvents")
                .and_then(Value::as_bool)
                .is_some_and(|b| !b)
        });
    }
    if let Some(advanced) = p.get("advancedEventSelectors").and_then(Value::as_array) {
        return !advanced.iter().any(|s| {
            s.get("fieldSelectors")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .any(|f| {
                    f.get("field").and_then(Value::as_str) == Some("eventCategory")
                        && f.get("equals")
                            .and_then(Value::as_array)
                            .is_some_and(|v| v.iter().any(|x| x == "Management"))
                })
        });
    }
    false
}

/// Whether `UpdateTrail` parameters narrow or redirect the trail.
fn update_weakens_trail(p: &Value) -> bool {
    let off = |k: &str| p.get(k).and_then(Value::as_bool) == Some(false);
    off("isMultiRegionTrail")
        || off("includeGlobalServiceEvents")
        || p.get("s3BucketName").is_some()
}

/// The calls [`LoggingDisabled`] looks at.
const LOGGING_APIS: &[Api] = &[
    Api::CreateTrail,
    Api::UpdateTrail,
    Api::StopLogging,
    Api::DeleteTrail,
    Api::PutEventSelectors,
    Api::DeleteBucket,
    Api::DeleteModelInvocationLoggingConfiguration,
];

impl LogDetector for LoggingDisabled {
    fn name(&self) -> &'static str {
        "ct.logging-disabled"
    }

    fn sources(&self) -> &'static [SourceKind] {
        SOURCES
    }

    fn calls(&self) -> Calls {
        Calls::Apis(LOGGING_APIS)
    }

    fn on_event(&mut self, ev: &Event<'_>, ctx: &LogContext<'_>, out: &mut Vec<Occurrence>) {
        let Some((rec, call)) = record_call(ev) else {
            return;
        };
        if !call.succeeded || !LOGGING_APIS.contains(&call.api) {
            return;
        }
        let (source, name) = (
            rec.event_source.as_deref().unwrap_or(""),
            rec.event_name.as_deref().unwrap_or(""),
        );
        if source == "cloudtrail.amazonaws.com"
            && matches!(name, "CreateTrail" | "UpdateTrail")
            && let Some(bucket) = params(rec).get("s3BucketName").and_then(Value::as_str)
            && self.trail_buckets.len() < MAX_TRAIL_BUCKETS
        {
            self.trail_buckets.insert(bucket.to_owned());
        }
        let (t, rule, what) = match (source, name) {
            ("s3.amazonaws.com", "DeleteBucket")
                if params(rec)
                    .get("bucketName")
                    .and_then(Value::as_str)
                    .is_some_and(|b| self.trail_buckets.contains(b)) =>
            {
                (
                    FindingType::StealthIamUserCloudTrailLoggingDisabled,
                    "ct.logging-disabled.trail-bucket",
                    "The S3 bucket a CloudTrail trail delivers to was deleted",
                )
            }
            ("cloudtrail.amazonaws.com", "StopLogging" | "DeleteTrail") => (
                FindingType::StealthIamUserCloudTrailLoggingDisabled,
                "ct.logging-disabled",
                "CloudTrail logging was disabled",
            ),
            ("cloudtrail.amazonaws.com", "UpdateTrail") if update_weakens_trail(&params(rec)) => (
                FindingType::StealthIamUserCloudTrailLoggingDisabled,
                "ct.logging-disabled.update-trail",
                "A CloudTrail trail was narrowed or redirected",
            ),
            ("cloudtrail.amazonaws.com", "PutEventSelectors")
                if selectors_drop_management(&params(rec)) =>
            {
                (
                    FindingType::StealthIamUserCloudTrailLoggingDisabled,
                    "ct.logging-disabled.event-selectors",
                    "A CloudTrail trail stopped recording management events",
                )
            }
            ("bedrock.amazonaws.com", "DeleteModelInvocationLoggingConfiguration") => (
                FindingType::DefenseEvasionIamUserBedrockLoggingDisabled,
                "ct.bedrock-logging-disabled",
                "Bedrock model invocation logging was disabled",
            ),
            _ => return,
        };
        out.extend(api_draft(t, rule, ev, rec, ctx, what).build());
    }

    fn save_state(&self) -> Option<Value> {
        Some(json!({ "trailBuckets": self.trail_buckets }))
    }

    fn restore_state(&mut self, state: Value) -> Result<(), String> {
        self.trail_buckets =
            serde_json::from_value(state.get("trailBuckets").cloned().unwrap_or_default())
                .map_err(|e| format!("trailBuckets: {e}"))?;
        Ok(())
    }
}

/// Password-policy settings and whether a larger value is stronger.
const POLICY_SETTINGS: &[(&str, Strength)] = &[
    ("MinimumPasswordLength", Strength::Higher),
    ("RequireSymbols", Strength::True),
    ("RequireNumbers", Strength::True),
    ("RequireUppercaseCharacters", Strength::True),
    ("RequireLowercaseCharacters", Strength::True),
    ("MaxPasswordAge", Strength::LowerNonZero),
    ("PasswordReusePrevention", Strength::Higher),
    ("HardExpiry", Strength::True),
];

#[derive(Clone, Copy)]
enum Strength {
    Higher,
    True,
    /// A shorter maximum age is stronger; absent or 0 means never expires.
    LowerNonZero,
}

/// How many settings `new` weakens compared with `old` (missing settings are the weakest value).
fn weakened(old: &Value, new: &Value) -> usize {
    let num = |v: &Value, k: &str| v.get(k).and_then(Value::as_f64).unwrap_or(0.0);
    let flag = |v: &Value, k: &str| v.get(k).and_then(Value::as_bool).unwrap_or(false);
    POLICY_SETTINGS
        .iter()
        .filter(|(k, s)| match s {
            Strength::Higher => num(new, k) < num(old, k),
            Strength::True => flag(old, k) && !flag(new, k),
            Strength::LowerNonZero => {
                let (o, n) = (num(old, k), num(new, k));
                o > 0.0 && (n == 0.0 || n > o)
            }
        })
        .count()
}

/// Last password policy seen per account.
#[derive(Default)]
pub struct PasswordPolicy {
    last: BTreeMap<String, Value>,
}

/// The calls [`PasswordPolicy`] looks at.
const PASSWORD_POLICY_APIS: &[Api] = &[
    Api::DeleteAccountPasswordPolicy,
    Api::UpdateAccountPasswordPolicy,
];

impl LogDetector for PasswordPolicy {
    fn name(&self) -> &'static str {
        "ct.password-policy-change"
    }

    fn sources(&self) -> &'static [SourceKind] {
        SOURCES
    }

    fn calls(&self) -> Calls {
        Calls::Apis(PASSWORD_POLICY_APIS)
    }

    fn on_event(&mut self, ev: &Event<'_>, ctx: &LogContext<'_>, out: &mut Vec<Occurrence>) {
        let Some((rec, call)) = record_call(ev) else {
            return;
        };
        if !PASSWORD_POLICY_APIS.contains(&call.api) || !call.succeeded {
            return;
        }
        let account = ctx.scope.account_id.clone();
        let (severity, what, detail) = match rec.event_name.as_deref() {
            Some("DeleteAccountPasswordPolicy") => {
                self.last.remove(&account);
                (8.0, "The account password policy was deleted", Value::Null)
            }
            Some("UpdateAccountPasswordPolicy") => {
                let new = params(rec);
                let severity = match self.last.get(&account) {
                    Some(old) => match weakened(old, &new) {
                        0 => 2.0,
                        1 | 2 => 5.0,
                        _ => 8.0,
                    },
                    None => {
                        let len = new.get("MinimumPasswordLength").and_then(Value::as_f64);
                        if len.is_some_and(|l| l < 8.0) {
                            5.0
                        } else {
                            2.0
                        }
                    }
                };
                let previous = self.last.insert(account, new.clone());
                (
                    severity,
                    "The account password policy was changed",
                    json!({ "previous": previous, "new": new }),
                )
            }
            _ => return,
        };
        let mut d = api_draft(
            FindingType::StealthIamUserPasswordPolicyChange,
            "ct.password-policy-change",
            ev,
            rec,
            ctx,
            what,
        )
        .severity(Severity(severity));
        if !detail.is_null() {
            d = d.info("passwordPolicy", detail);
        }
        out.extend(d.build());
    }

    fn save_state(&self) -> Option<Value> {
        Some(json!({ "lastPolicy": self.last }))
    }

    fn restore_state(&mut self, state: Value) -> Result<(), String> {
        self.last = serde_json::from_value(state.get("lastPolicy").cloned().unwrap_or_default())
            .map_err(|e| format!("lastPolicy: {e}"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::foundational::cloudtrail::testing::{panther, run, stratus, types};

    const LOGGING: &str = "Stealth:IAMUser/CloudTrailLoggingDisabled";

    #[test]
    fn stop_and_delete_trail_from_stratus_raise_logging_disabled_with_evidence() {
        for name in [
            "aws.defense-evasion.cloudtrail-stop",
            "aws.defense-evasion.cloudtrail-delete",
        ] {
            let occ = run(&mut LoggingDisabled::default(), &stratus(name));
            assert_eq!(types(&occ), [LOGGING], "{name}");
            let f = &occ[0].details;
            let call = f
                .service
                .action
                .as_ref()
                .unwrap()
                .aws_api_call_action
                .as_ref()
                .unwrap();
            assert!(matches!(
                call.api.as_deref(),
                Some("StopLogging" | "DeleteTrail")
            ));
            assert!(
                call.user_agent
                    .as_deref()
                    .unwrap()
                    .starts_with("stratus-red-team_")
            );
            assert!(
                call.remote_ip_details
                    .as_ref()
                    .unwrap()
                    .ip_address_v4
                    .is_some()
            );
            let ward = f.service.ward_details().unwrap();
            assert_eq!(ward.log_record.unwrap().object, "test.json");
            assert_eq!(ward.event_ids.len(), 1);
            assert!(
                f.resource
                    .access_key_details
                    .as_ref()
                    .unwrap()
                    .access_key_id
                    .is_some()
            );
        }
    }

    #[test]
    fn failed_stops_and_other_trail_calls_raise_nothing() {
        let neg = [
            panther("AWS.CloudTrail.Stopped", "Error Stopping CloudTrail"),
            panther("AWS.CloudTrail.Stopped", "CloudTrail Was Started"),
            panther(
                "AWS.CloudTrail.SecurityConfigurationChange",
                "Security Configuration Not Changed",
            ),
            panther(
                "AWS.CloudTrail.SecurityConfigurationChange",
                "Security Configuration Not Changed - Error",
            ),
        ];
        assert!(run(&mut LoggingDisabled::default(), &neg).is_empty());
        let pos = [panther("AWS.CloudTrail.Stopped", "CloudTrail Was Stopped")];
        assert_eq!(
            types(&run(&mut LoggingDisabled::default(), &pos)),
            [LOGGING]
        );
    }

    #[test]
    fn event_selectors_without_management_events_are_flagged_under_their_own_rule() {
        let occ = run(
            &mut LoggingDisabled::default(),
            &stratus("aws.defense-evasion.cloudtrail-event-selectors"),
        );
        assert_eq!(types(&occ), [LOGGING]);
        assert_eq!(
            occ[0]
                .details
                .service
                .ward_details()
                .unwrap()
                .rule_id
                .as_deref(),
            Some("ct.logging-disabled.event-selectors")
        );
        let kept = panther(
            "AWS.CloudTrail.EventSelectorsDisabled",
            "Event Selector Enabled",
        );
        assert!(run(&mut LoggingDisabled::default(), &[kept]).is_empty());
    }

    #[test]
    fn deleting_a_trails_bucket_disables_its_logging() {
        let mut create = panther("AWS.CloudTrail.Created", "CloudTrail Was Created");
        create["requestParameters"]["s3BucketName"] = "secrets".into();
        let delete = panther("AWS.S3.BucketDeleted", "An S3 Bucket was deleted");
        let mut d = LoggingDisabled::default();
        assert!(
            run(&mut d, std::slice::from_ref(&delete)).is_empty(),
            "not a known trail bucket"
        );
        let mut restored = LoggingDisabled::default();
        assert!(run(&mut d, &[create]).is_empty());
        restored.restore_state(d.save_state().unwrap()).unwrap();
        let occ = run(&mut restored, &[delete]);
        assert_eq!(types(&occ), [LOGGING]);
        let failed = panther("AWS.S3.BucketDeleted", "S3 Bucket Deletion Failed");
        assert!(run(&mut restored, &[failed]).is_empty());
    }

    #[test]
    fn bedrock_logging_deletion() {
        let pos = panther(
            "AWS.Bedrock.DeleteModelInvocationLoggingConfiguration",
            "Model Invocation Logging Configuration Deleted",
        );
        let neg = panther(
            "AWS.Bedrock.DeleteModelInvocationLoggingConfiguration",
            "List Guardrails",
        );
        assert_eq!(
            types(&run(&mut LoggingDisabled::default(), &[pos, neg])),
            ["DefenseEvasion:IAMUser/BedrockLoggingDisabled"]
        );
    }

    #[test]
    fn password_policy_severity_follows_how_much_it_was_weakened() {
        // A real CloudTrail record shape (from the corpus), with the policy calls substituted.
        let base = stratus("aws.defense-evasion.cloudtrail-stop").remove(0);
        let call = |name: &str, p: Value| {
            let mut r = base.clone();
            r["eventSource"] = "iam.amazonaws.com".into();
            r["eventName"] = name.into();
            r["requestParameters"] = p;
            r
        };
        let strong = json!({"MinimumPasswordLength": 14, "RequireSymbols": true, "RequireNumbers": true,
                            "RequireUppercaseCharacters": true, "MaxPasswordAge": 90});
        let weak = json!({"MinimumPasswordLength": 6});
        let mut d = PasswordPolicy::default();
        let occ = run(
            &mut d,
            &[call("UpdateAccountPasswordPolicy", strong.clone())],
        );
        assert_eq!(
            occ[0].details.severity,
            Severity(2.0),
            "first policy, long enough"
        );
        let occ = run(&mut d, &[call("UpdateAccountPasswordPolicy", weak)]);
        assert_eq!(
            occ[0].details.severity,
            Severity(8.0),
            "five settings weakened"
        );
        let saved = d.save_state().unwrap();
        let mut restored = PasswordPolicy::default();
        restored.restore_state(saved).unwrap();
        let occ = run(
            &mut restored,
            &[call("UpdateAccountPasswordPolicy", strong)],
        );
        assert_eq!(
            occ[0].details.severity,
            Severity(2.0),
            "strengthened after restore"
        );
        let occ = run(
            &mut restored,
            &[call("DeleteAccountPasswordPolicy", Value::Null)],
        );
        assert_eq!(occ[0].details.severity, Severity(8.0));
        assert!(
            run(
                &mut restored,
                &[call("GetAccountPasswordPolicy", Value::Null)]
            )
            .is_empty()
        );
    }
}
