//! IAM and S3 findings from CloudTrail management events (spec §5.2, §5.3), one file per family:
//!
//! | file | finding types |
//! |---|---|
//! | [`stealth`] | `Stealth:IAMUser/CloudTrailLoggingDisabled`, `Stealth:IAMUser/PasswordPolicyChange`, `DefenseEvasion:IAMUser/BedrockLoggingDisabled` |
//! | [`root`] | `Policy:IAMUser/RootCredentialUsage`, `Policy:IAMUser/ShortTermRootCredentialUsage` |
//! | [`s3`] | `Policy:S3/AccountBlockPublicAccessDisabled`, `Policy:S3/BucketBlockPublicAccessDisabled`, `Policy:S3/BucketAnonymousAccessGranted`, `Policy:S3/BucketPublicAccessGranted`, `Stealth:S3/ServerAccessLoggingDisabled` |
//! | [`caller`] | `…/MaliciousIPCaller(.Custom)`, `…/TorIPCaller` (IAM and, for S3 data events, S3), `PenTest:IAMUser/*`, `PenTest:S3/*` |
//! | [`credentials`] | `UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS` / `.InsideAWS` |
//! | [`resource_credentials`] | `UnauthorizedAccess:IAMUser/ResourceCredentialExfiltration.OutsideAWS` / `.InsideAWS` (Lambda-created credentials) |
//! | [`console`] | `UnauthorizedAccess:IAMUser/ConsoleLoginSuccess.B` |
//! | [`anomaly`] | the eight `…:IAMUser/AnomalousBehavior` types and, for S3 data events, the five `…:S3/AnomalousBehavior` types |

pub mod anomaly;
pub mod caller;
pub mod console;
pub mod credentials;
pub mod pair_set;
pub mod resource_credentials;
pub mod root;
pub mod s3;
pub mod stealth;

use serde_json::Value;

use super::occurrence::Draft;
use super::resource::{access_key, api_call};
use super::{LogContext, LogDetector};
use crate::event::cloudtrail::CloudTrailRecord;
pub use crate::event::cloudtrail::{Api, Call, Identity, Service};
use crate::event::{Event, Record, SourceKind};
use crate::findings::{Action, FindingType};

pub const SOURCES: &[SourceKind] = &[SourceKind::CloudTrail];

/// Every CloudTrail detector.
pub fn detectors() -> Vec<Box<dyn LogDetector>> {
    vec![
        Box::new(stealth::LoggingDisabled::default()),
        Box::new(stealth::PasswordPolicy::default()),
        Box::new(root::RootUsage),
        Box::new(s3::BucketExposure),
        Box::new(caller::CallerIntel),
        Box::new(caller::PenTest::default()),
        Box::new(credentials::InstanceCredentials::default()),
        Box::new(resource_credentials::ResourceCredentials::default()),
        Box::new(console::ConsoleLogins::default()),
        Box::new(anomaly::AnomalousApis::default()),
    ]
}

/// The CloudTrail record of an event, if it is one.
pub fn record<'a>(ev: &Event<'a>) -> Option<&'a CloudTrailRecord<'a>> {
    match ev.record {
        Record::CloudTrail(r) => Some(r),
        _ => None,
    }
}

/// The CloudTrail record of an event with its [`Call`] (classified once per record, shared by
/// every detector), if it is one.
pub fn record_call<'a>(ev: &Event<'a>) -> Option<(&'a CloudTrailRecord<'a>, Call)> {
    Some((record(ev)?, ev.cloudtrail_call()?))
}

/// The call succeeded (no `errorCode`).
pub fn succeeded(rec: &CloudTrailRecord<'_>) -> bool {
    rec.error_code.as_deref().is_none_or(str::is_empty)
}

/// `requestParameters` as a tree (parsed only by the detectors that need it, for the few events
/// they look at).
pub fn params(rec: &CloudTrailRecord<'_>) -> Value {
    rec.request_parameters
        .and_then(|r| serde_json::from_str(r.get()).ok())
        .unwrap_or(Value::Null)
}

/// See [`CloudTrailRecord::by_aws_service`] (detectors read it from the record's [`Call`]).
pub fn by_aws_service(rec: &CloudTrailRecord<'_>) -> bool {
    rec.by_aws_service()
}

/// Who made the call, for titles: the ARN, else principal id, else the identity type.
pub fn caller_name(rec: &CloudTrailRecord<'_>) -> String {
    caller(rec).to_owned()
}

/// [`caller_name`] borrowed from the record (what per-record lookups key on).
pub fn caller<'r>(rec: &'r CloudTrailRecord<'_>) -> &'r str {
    let u = rec.user_identity.as_ref();
    u.and_then(|u| u.arn.as_deref().filter(|s| !s.is_empty()))
        .or_else(|| u.and_then(|u| u.principal_id.as_deref()))
        .or_else(|| u.and_then(|u| u.identity_type.as_deref()))
        .unwrap_or("an unidentified caller")
}

/// The usual IAM finding about one API call: the caller's access key as the resource, the call as
/// `awsApiCallAction`, the user agent in `additionalInfo.userAgent`, and a title naming the API and
/// the caller.
pub fn api_draft(
    finding_type: FindingType,
    rule_id: &'static str,
    ev: &Event<'_>,
    rec: &CloudTrailRecord<'_>,
    ctx: &LogContext<'_>,
    what: &str,
) -> Draft {
    let api = rec.event_name.as_deref().unwrap_or("an API");
    let who = caller(rec);
    let from = rec
        .source_ip_address
        .as_deref()
        .unwrap_or("an unknown address");
    let mut d = Draft::from_event(
        finding_type,
        access_key(rec.user_identity.as_ref()),
        rule_id,
        ev,
        ctx,
    )
    .action(Action::aws_api_call(api_call(rec)))
    .text(
        format!("{what}: {api} by {who}."),
        format!("{what}. The API {api} was called by {who} from {from}."),
    );
    if let Some(ua) = rec.user_agent.as_deref() {
        d = d.info(
            "userAgent",
            serde_json::json!({ "fullUserAgent": ua, "userAgentCategory": user_agent_category(ua) }),
        );
    }
    d
}

/// A 64-bit hash of a pair of keys, for the flat "seen before" sets that answer a detector's
/// usual record with one probe (fixed seed: the same pair hashes the same in every run).
pub fn pair_hash(key: &str, with: impl std::hash::Hash) -> u64 {
    use std::hash::BuildHasher;
    foldhash::fast::FixedState::with_seed(0x414e_4f4d).hash_one((key, with))
}

/// A detector's map keyed by principal, instance or key id, as saved state: a JSON object under
/// `name`, sorted so saved state compares equal across runs.
pub fn save_keyed<V: serde::Serialize>(
    name: &str,
    map: &foldhash::HashMap<crate::foundational::StateKey, V>,
) -> Value {
    let sorted: std::collections::BTreeMap<&str, &V> = map.iter().map(|(k, v)| (&**k, v)).collect();
    let mut saved = serde_json::Map::new();
    saved.insert(name.to_owned(), serde_json::json!(sorted));
    Value::Object(saved)
}

/// The inverse of [`save_keyed`]: an absent entry is an empty map; a malformed one names `name`.
pub fn restore_keyed<V: serde::de::DeserializeOwned>(
    name: &str,
    state: &Value,
) -> Result<foldhash::HashMap<crate::foundational::StateKey, V>, String> {
    let saved: std::collections::BTreeMap<String, V> =
        serde_json::from_value(state.get(name).cloned().unwrap_or_default())
            .map_err(|e| format!("{name}: {e}"))?;
    Ok(saved.into_iter().map(|(k, v)| (k.into(), v)).collect())
}

/// A coarse user-agent category, as GuardDuty prints one (`AWS CLI`, `SDK`, `Console`, ...).
fn user_agent_category(ua: &str) -> &'static str {
    let l = ua.to_ascii_lowercase();
    if l.starts_with("aws-cli") {
        "AWS CLI"
    } else if l.contains("console.amazonaws.com") || l.starts_with("mozilla") {
        "Browser"
    } else if l.ends_with(".amazonaws.com") || l == "aws internal" {
        "AWS Service"
    } else if l.contains("sdk") || l.starts_with("boto") || l.starts_with("aws-") {
        "SDK"
    } else {
        "Other"
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! Runs records (real corpus records, or small variations of them) through detectors.
    use super::*;
    use crate::event::Origin;
    use crate::findings::{Occurrence, Scope};
    use crate::intel::IntelIndex;

    pub const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/corpus");

    /// The corpus directory: `WARD_CORPUS`, else `shared/corpus` beside the checkout (CI copies it
    /// there) or beside a worktree's parent.
    pub fn corpus(rel: &str) -> std::path::PathBuf {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let candidates = [
            std::env::var_os("WARD_CORPUS").map(std::path::PathBuf::from),
            std::env::var_os("WARD_CORPUS_DIR").map(std::path::PathBuf::from),
            Some(root.join("../shared/corpus")),
            Some(root.join("../../shared/corpus")),
        ];
        let dir = candidates
            .into_iter()
            .flatten()
            .find(|p| p.is_dir())
            .unwrap_or_else(|| panic!("corpus not found (set WARD_CORPUS); tried beside {CORPUS}"));
        dir.join(rel)
    }

    /// Every CloudTrail record of a Stratus detonation file (a JSON array).
    pub fn stratus(name: &str) -> Vec<Value> {
        let path = corpus(&format!("stratus-red-team/detonation-logs/{name}.json"));
        let text = std::fs::read_to_string(&path).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    /// The `log` of the Panther test `rule_id` / `test_name`.
    pub fn panther(rule_id: &str, test_name: &str) -> Value {
        let path = corpus("panther-analysis/panther_rule_tests_cloudtrail.jsonl");
        let text = std::fs::read_to_string(&path).unwrap();
        text.lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .find(|t| t["rule_id"] == rule_id && t["test_name"] == test_name)
            .unwrap_or_else(|| panic!("no panther test {rule_id} / {test_name}"))["log"]
            .clone()
    }

    /// Feeds records through one detector (closing windows at the end) and returns what it raised.
    pub fn run_with(
        det: &mut dyn LogDetector,
        records: &[Value],
        intel: &IntelIndex,
        settings: &crate::foundational::Settings,
    ) -> Vec<Occurrence> {
        let scope = Scope::new("111111111111", "us-east-1", "ward");
        let ctx = LogContext {
            intel,
            scope: &scope,
            settings,
        };
        let mut out = Vec::new();
        let mut newest = i64::MIN;
        for (i, v) in records.iter().enumerate() {
            let text = v.to_string();
            let rec: CloudTrailRecord<'_> = serde_json::from_str(&text).unwrap();
            let ev = Event::new(
                Origin {
                    object: "test.json",
                    line: 1,
                    index: Some(i as u64),
                },
                Record::CloudTrail(&rec),
            );
            newest = newest.max(ev.time_ms().unwrap_or(newest));
            // As the engine does: only the calls the detector asked for, and prefetch (which
            // may leave work for on_event) first.
            if ev
                .cloudtrail_call()
                .is_some_and(|c| !det.calls().admits(c.api, c.identity))
            {
                continue;
            }
            if det.prefetches() {
                det.prefetch(&ev, &ctx);
            }
            det.on_event(&ev, &ctx, &mut out);
        }
        det.on_time(newest.saturating_add(1), &ctx, &mut out);
        out
    }

    pub fn run(det: &mut dyn LogDetector, records: &[Value]) -> Vec<Occurrence> {
        run_with(
            det,
            records,
            &IntelIndex::default(),
            &crate::foundational::Settings::default(),
        )
    }

    /// The finding type names raised.
    pub fn types(occ: &[Occurrence]) -> Vec<String> {
        occ.iter()
            .map(|o| o.details.finding_type_name.clone())
            .collect()
    }
}

#[cfg(test)]
mod call_tests {
    //! [`Call`] against the string comparisons each detector made before the classification
    //! was shared: for every source and API a detector keys on (and near misses), the answer is
    //! the same.
    use super::*;

    const SOURCES_SEEN: &[&str] = &[
        "cloudtrail.amazonaws.com",
        "s3.amazonaws.com",
        "s3-control.amazonaws.com",
        "iam.amazonaws.com",
        "sts.amazonaws.com",
        "ssm.amazonaws.com",
        "ssmmessages.amazonaws.com",
        "ec2messages.amazonaws.com",
        "bedrock.amazonaws.com",
        "signin.amazonaws.com",
        "ec2.amazonaws.com",
        "S3.amazonaws.com",
        ".amazonaws.com",
        "amazonaws.com",
        "",
    ];

    /// Every API some detector keys on, and near misses.
    const NAMES: &[&str] = &[
        "CreateTrail",
        "UpdateTrail",
        "StopLogging",
        "DeleteTrail",
        "PutEventSelectors",
        "DeleteBucket",
        "PutBucketLogging",
        "DeleteBucketPublicAccessBlock",
        "PutBucketPublicAccessBlock",
        "DeleteAccountPublicAccessBlock",
        "PutAccountPublicAccessBlock",
        "PutBucketPolicy",
        "PutBucketAcl",
        "DeleteModelInvocationLoggingConfiguration",
        "DeleteAccountPasswordPolicy",
        "UpdateAccountPasswordPolicy",
        "AssumeRole",
        "UpdateInstanceInformation",
        "RegisterManagedInstance",
        "UpdateInstanceAssociationStatus",
        "PutInventory",
        "ListInstanceAssociations",
        "PutComplianceItems",
        "ConsoleLogin",
        "consolelogin",
        "AssumeRoleWithSAML",
        "GetObject",
        "DescribeInstances",
        "CreateControlChannel",
        "",
    ];

    fn record(source: &str, name: &str, extra: &str) -> String {
        let mut fields = Vec::new();
        if !source.is_empty() {
            fields.push(format!(r#""eventSource":"{source}""#));
        }
        if !name.is_empty() {
            fields.push(format!(r#""eventName":"{name}""#));
        }
        if !extra.is_empty() {
            fields.push(extra.to_owned());
        }
        format!("{{{}}}", fields.join(","))
    }

    #[test]
    fn services_and_apis_are_classified_as_each_detector_compared_them() {
        for &source in SOURCES_SEEN {
            for &name in NAMES {
                let text = record(source, name, "");
                let rec: CloudTrailRecord<'_> = serde_json::from_str(&text).unwrap();
                let c = Call::of(&rec);
                let case = format!("{source} {name}");
                // stealth::LoggingDisabled
                let trail = source == "cloudtrail.amazonaws.com";
                assert_eq!(
                    trail
                        && matches!(
                            name,
                            "CreateTrail"
                                | "UpdateTrail"
                                | "StopLogging"
                                | "DeleteTrail"
                                | "PutEventSelectors"
                        ),
                    matches!(
                        c.api,
                        Api::CreateTrail
                            | Api::UpdateTrail
                            | Api::StopLogging
                            | Api::DeleteTrail
                            | Api::PutEventSelectors
                    ),
                    "{case}"
                );
                assert_eq!(
                    source == "bedrock.amazonaws.com"
                        && name == "DeleteModelInvocationLoggingConfiguration",
                    c.api == Api::DeleteModelInvocationLoggingConfiguration,
                    "{case}"
                );
                // s3::BucketExposure (and LoggingDisabled's DeleteBucket, an s3 API)
                let s3 = matches!(source, "s3.amazonaws.com" | "s3-control.amazonaws.com");
                assert_eq!(
                    s3 && matches!(
                        name,
                        "PutBucketLogging"
                            | "DeleteBucketPublicAccessBlock"
                            | "PutBucketPublicAccessBlock"
                            | "DeleteAccountPublicAccessBlock"
                            | "PutAccountPublicAccessBlock"
                            | "PutBucketPolicy"
                            | "PutBucketAcl"
                    ),
                    s3::is_exposure_call(&c),
                    "{case}"
                );
                assert_eq!(
                    s3 && name == "DeleteBucket",
                    c.api == Api::DeleteBucket,
                    "{case}"
                );
                assert_eq!(
                    source == "s3.amazonaws.com",
                    c.service == Service::S3,
                    "{case}"
                );
                // stealth::PasswordPolicy
                assert_eq!(
                    source == "iam.amazonaws.com"
                        && matches!(
                            name,
                            "DeleteAccountPasswordPolicy" | "UpdateAccountPasswordPolicy"
                        ),
                    matches!(
                        c.api,
                        Api::DeleteAccountPasswordPolicy | Api::UpdateAccountPasswordPolicy
                    ),
                    "{case}"
                );
                // resource_credentials: Lambda's AssumeRole
                assert_eq!(
                    source == "sts.amazonaws.com" && name == "AssumeRole",
                    c.api == Api::AssumeRole,
                    "{case}"
                );
                // credentials: the SSM agent's calls
                let agent = matches!(
                    source,
                    "ssmmessages.amazonaws.com" | "ec2messages.amazonaws.com"
                ) || (source == "ssm.amazonaws.com"
                    && matches!(
                        name,
                        "UpdateInstanceInformation"
                            | "RegisterManagedInstance"
                            | "UpdateInstanceAssociationStatus"
                            | "PutInventory"
                            | "ListInstanceAssociations"
                            | "PutComplianceItems"
                    ));
                assert_eq!(
                    agent,
                    matches!(c.service, Service::SsmMessages | Service::Ec2Messages)
                        || c.api == Api::SsmAgent,
                    "{case}"
                );
                // console: by name, whatever the source
                assert_eq!(name == "ConsoleLogin", c.api == Api::ConsoleLogin, "{case}");
            }
        }
    }

    #[test]
    fn identity_service_calls_outcome_and_data_events_are_read_once() {
        let call = |extra: &str| {
            let text = record("s3.amazonaws.com", "GetObject", extra);
            let rec: CloudTrailRecord<'_> = serde_json::from_str(&text).unwrap();
            let c = Call::of(&rec);
            assert_eq!(c.by_aws_service, by_aws_service(&rec), "{extra}");
            assert_eq!(c.succeeded, succeeded(&rec), "{extra}");
            c
        };
        assert_eq!(
            call(r#""userIdentity":{"type":"Root"}"#).identity,
            Identity::Root
        );
        let role = call(r#""userIdentity":{"type":"AssumedRole"}"#);
        assert_eq!(role.identity, Identity::AssumedRole);
        assert!(!role.by_aws_service);
        let service = call(r#""userIdentity":{"type":"AWSService"}"#);
        assert_eq!(service.identity, Identity::AwsService);
        assert!(service.by_aws_service);
        assert_eq!(
            call(r#""userIdentity":{"type":"IAMUser"}"#).identity,
            Identity::Other
        );
        assert_eq!(call("").identity, Identity::Other);
        assert!(call(r#""userIdentity":{"invokedBy":"lambda.amazonaws.com"}"#).by_aws_service);
        assert!(!call(r#""userIdentity":{"invokedBy":"signin.amazonaws.com"}"#).by_aws_service);
        assert!(
            call(r#""userIdentity":{"type":"AWSService","invokedBy":"console.amazonaws.com"}"#)
                .by_aws_service
        );
        assert!(call(r#""eventType":"AwsServiceEvent""#).by_aws_service);
        assert!(call("").succeeded);
        assert!(call(r#""errorCode":"""#).succeeded);
        assert!(!call(r#""errorCode":"AccessDenied""#).succeeded);
        assert!(call(r#""eventCategory":"Data""#).s3_data_event);
        assert!(call(r#""managementEvent":false"#).s3_data_event);
        assert!(call(r#""managementEvent":"false""#).s3_data_event);
        assert!(!call(r#""managementEvent":true"#).s3_data_event);
        assert!(!call("").s3_data_event);
        let text = record(
            "ec2.amazonaws.com",
            "GetObject",
            r#""eventCategory":"Data""#,
        );
        let rec: CloudTrailRecord<'_> = serde_json::from_str(&text).unwrap();
        assert!(!Call::of(&rec).s3_data_event, "S3's only");
    }
}
