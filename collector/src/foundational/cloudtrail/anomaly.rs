//! The `…:IAMUser/AnomalousBehavior` family (and, for S3 data events, the `…:S3/AnomalousBehavior`
//! types: discovery, exfiltration, delete, permission, write, on the bucket): a principal calls an
//! API it has never called, after a learning period, and the API belongs to a tactic GuardDuty
//! profiles.
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

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};

use foldhash::{HashMap, HashSet, HashSetExt};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::pair_set::PairSet;
use super::{SOURCES, api_draft, caller, pair_hash, params, record_call};
use crate::event::cloudtrail::CloudTrailRecord;
use crate::event::{Event, SourceKind};
use crate::findings::{FindingType, Occurrence};
use crate::foundational::resource::with_bucket;
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

/// The S3 AnomalousBehavior type of an S3 data-event API (spec §5.3: discovery, data collection,
/// delete, permission change, write).
pub fn s3_tactic(name: &str) -> Option<FindingType> {
    use FindingType as T;
    Some(match name {
        "GetObject"
        | "CopyObject"
        | "GetObjectTorrent"
        | "SelectObjectContent"
        | "RestoreObject" => T::ExfiltrationS3AnomalousBehavior,
        "DeleteObject" | "DeleteObjects" | "DeleteObjectVersion" => {
            T::ImpactS3AnomalousBehaviorDelete
        }
        "PutObjectAcl" | "PutBucketAcl" | "PutBucketPolicy" | "DeleteBucketPolicy" => {
            T::ImpactS3AnomalousBehaviorPermission
        }
        "PutObject"
        | "UploadPart"
        | "UploadPartCopy"
        | "CompleteMultipartUpload"
        | "PutObjectTagging"
        | "PutObjectRetention"
        | "PutObjectLegalHold" => T::ImpactS3AnomalousBehaviorWrite,
        n if ["Get", "List", "Head"].iter().any(|v| n.starts_with(v)) => {
            T::DiscoveryS3AnomalousBehavior
        }
        _ => return None,
    })
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Profile {
    first_seen_ms: i64,
    apis: BTreeSet<String>,
}

/// A principal's baseline in memory: keyed for lookups by `&str`, so the per-record path (a known
/// principal calling a known API) allocates nothing.
#[derive(Debug, Default)]
struct Known {
    first_seen_ms: i64,
    apis: HashSet<Box<str>>,
}

/// Most pairs [`AnomalousApis::seen`] remembers before it starts over (8 bytes each).
const MAX_SEEN: usize = 1 << 20;

#[derive(Default)]
pub struct AnomalousApis {
    principals: HashMap<Box<str>, Known>,
    /// A cache of (principal, API) pairs already in `principals`, as 64-bit hashes. Nearly every
    /// record is a known principal calling a known API; that answer is then one probe of one
    /// flat table instead of two string-keyed lookups (whose keys and sets are scattered over
    /// the heap, so cache misses while the reader streams the log through the caches). Two
    /// pairs sharing a 64-bit hash would hide one new API: with at most [`MAX_SEEN`] pairs the
    /// chance is about one in 10^13 per new API.
    seen: PairSet,
    /// Newest event time seen: a record older than it may lower a principal's `first_seen_ms`,
    /// so it takes the exact path.
    newest_ms: i64,
    /// `service:API` of the record being looked at (reused).
    api: String,
    /// The pair hash [`LogDetector::prefetch`] worked out, with the identity of the text it
    /// hashed: `on_event` for the same record takes it instead of hashing again (a tenth of
    /// this detector's time). Taken on every `on_event`, so it never outlives the record.
    prefetched: Cell<Option<(PairText, u64)>>,
}

/// Where the principal, service and API of a [`Pair`] lie (address and length of each): the same
/// for the same text of the same record.
type PairText = [(usize, usize); 3];

fn text_id(s: &str) -> (usize, usize) {
    (s.as_ptr() as usize, s.len())
}

/// The (principal, API) of a record, as the fast path worked it out.
struct Pair<'r> {
    who: &'r str,
    /// `eventSource` without `.amazonaws.com`.
    service: &'r str,
    name: &'r str,
    now: i64,
    /// [`pair_hash`] of the principal and (service, API).
    hash: u64,
    text: PairText,
}

/// The record's (principal, API), for a record the baseline looks at (a call with a name and a
/// time, not made by an AWS service). `known`: a hash worked out before, used if it was of this
/// very text.
fn pair_of<'r>(
    ev: &Event<'r>,
    known: Option<(PairText, u64)>,
) -> Option<(&'r CloudTrailRecord<'r>, super::Call, Pair<'r>)> {
    let (rec, call) = record_call(ev)?;
    let (Some(name), Some(now)) = (rec.event_name.as_deref(), ev.time_ms()) else {
        return None;
    };
    if call.by_aws_service {
        return None;
    }
    let who = caller(rec);
    let source = rec.event_source.as_deref().unwrap_or("");
    let service = source.strip_suffix(".amazonaws.com").unwrap_or(source);
    let text = [text_id(who), text_id(service), text_id(name)];
    let hash = match known {
        Some((of, hash)) if of == text => hash,
        _ => pair_hash(who, (service, name)),
    };
    Some((
        rec,
        call,
        Pair {
            who,
            service,
            name,
            now,
            hash,
            text,
        },
    ))
}

impl AnomalousApis {
    /// A pair not known to [`AnomalousApis::seen`] (a new API, or one the cache forgot): the
    /// exact baseline decides. Kept out of [`LogDetector::on_event`] so the usual record runs
    /// in a small stack frame.
    #[inline(never)]
    fn learn_or_raise(
        &mut self,
        ev: &Event<'_>,
        rec: &CloudTrailRecord<'_>,
        call: super::Call,
        ctx: &LogContext<'_>,
        pair: Pair<'_>,
        out: &mut Vec<Occurrence>,
    ) {
        let Pair {
            who,
            service,
            name,
            now,
            hash: pair,
            ..
        } = pair;
        // `service:API` is spelled out only off the fast path.
        self.api.clear();
        self.api.push_str(service);
        self.api.push(':');
        self.api.push_str(name);
        let api = self.api.as_str();
        if self.principals.len() >= MAX_PRINCIPALS && !self.principals.contains_key(who) {
            return;
        }
        let profile = match self.principals.get_mut(who) {
            Some(p) => p,
            None => self.principals.entry(who.into()).or_insert_with(|| Known {
                first_seen_ms: now,
                apis: HashSet::new(),
            }),
        };
        profile.first_seen_ms = profile.first_seen_ms.min(now);
        if self.seen.len() >= MAX_SEEN {
            self.seen.clear();
        }
        if profile.apis.contains(api) {
            self.seen.insert(pair);
            return;
        }
        let learned_until = profile.first_seen_ms + ctx.settings.learning_period_ms;
        let known = profile.apis.len();
        if profile.apis.len() < MAX_APIS {
            profile.apis.insert(api.into());
            self.seen.insert(pair);
        }
        if now < learned_until {
            return;
        }
        let s3 = call.s3_data_event;
        let Some(t) = (if s3 { s3_tactic(name) } else { tactic(name) }) else {
            return;
        };
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
        if s3 && let Some(bucket) = params(rec).get("bucketName").and_then(Value::as_str) {
            d.resource = with_bucket(d.resource, bucket, &ctx.scope.partition);
        }
        out.extend(d.build());
    }
}

impl LogDetector for AnomalousApis {
    fn name(&self) -> &'static str {
        "ct.anomalous-behavior"
    }

    fn sources(&self) -> &'static [SourceKind] {
        SOURCES
    }

    fn prefetches(&self) -> bool {
        true
    }

    /// The record's pair is most likely in `seen`, whose slot is most likely not in cache.
    fn prefetch(&self, ev: &Event<'_>, _ctx: &LogContext<'_>) {
        if let Some((_, _, pair)) = pair_of(ev, None) {
            self.seen.prefetch(pair.hash);
            self.prefetched.set(Some((pair.text, pair.hash)));
        }
    }

    fn on_event(&mut self, ev: &Event<'_>, ctx: &LogContext<'_>, out: &mut Vec<Occurrence>) {
        let Some((rec, call, pair)) = pair_of(ev, self.prefetched.take()) else {
            return;
        };
        let in_order = pair.now >= self.newest_ms;
        self.newest_ms = self.newest_ms.max(pair.now);
        if in_order && self.seen.contains(pair.hash) {
            return;
        }
        self.learn_or_raise(ev, rec, call, ctx, pair, out);
    }

    /// Sorted (principals and their APIs), so the saved state is the same for the same input.
    fn save_state(&self) -> Option<Value> {
        let principals: BTreeMap<&str, Profile> = self
            .principals
            .iter()
            .map(|(who, k)| {
                let profile = Profile {
                    first_seen_ms: k.first_seen_ms,
                    apis: k.apis.iter().map(|a| a.to_string()).collect(),
                };
                (&**who, profile)
            })
            .collect();
        Some(json!({ "principals": principals }))
    }

    fn restore_state(&mut self, state: Value) -> Result<(), String> {
        let saved: BTreeMap<String, Profile> =
            serde_json::from_value(state.get("principals").cloned().unwrap_or_default())
                .map_err(|e| format!("principals: {e}"))?;
        self.principals = saved
            .into_iter()
            .map(|(who, p)| {
                let known = Known {
                    first_seen_ms: p.first_seen_ms,
                    apis: p.apis.into_iter().map(String::into_boxed_str).collect(),
                };
                (who.into_boxed_str(), known)
            })
            .collect();
        self.seen.clear();
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
    fn s3_data_events_raise_the_s3_types_on_the_bucket() {
        use crate::foundational::cloudtrail::testing::panther;
        let settings = Settings {
            learning_period_ms: 24 * 3600 * 1000,
            ..Settings::default()
        };
        let intel = IntelIndex::default();
        // Alice's real S3 data events (Panther): a copy while learning, a delete eight days on.
        let copy = panther(
            "AWS.S3.CopyObjectWithClientSideEncryption",
            "CopyObject with client-side encryption",
        );
        let mut delete = panther("AWS.S3.DeleteObject", "DeleteObject");
        assert_eq!(copy["userIdentity"]["arn"], delete["userIdentity"]["arn"]);
        delete["eventTime"] = "2023-10-09T12:34:56Z".into();
        let mut d = AnomalousApis::default();
        assert!(run_with(&mut d, std::slice::from_ref(&copy), &intel, &settings).is_empty());
        let occ = run_with(&mut d, std::slice::from_ref(&delete), &intel, &settings);
        assert_eq!(types(&occ), ["Impact:S3/AnomalousBehavior.Delete"]);
        let bucket = &occ[0].details.resource.s3_bucket_details[0];
        assert_eq!(
            bucket.name.as_deref(),
            delete["requestParameters"]["bucketName"].as_str()
        );
        // Known now; and a copy (learned) eight days on is not new.
        let mut later_copy = copy;
        later_copy["eventTime"] = "2023-10-09T13:00:00Z".into();
        assert!(run_with(&mut d, &[delete, later_copy], &intel, &settings).is_empty());
        assert_eq!(
            s3_tactic("GetObject"),
            Some(FindingType::ExfiltrationS3AnomalousBehavior)
        );
        assert_eq!(
            s3_tactic("ListObjects"),
            Some(FindingType::DiscoveryS3AnomalousBehavior)
        );
        assert_eq!(
            s3_tactic("PutObjectAcl"),
            Some(FindingType::ImpactS3AnomalousBehaviorPermission)
        );
        assert_eq!(
            s3_tactic("PutObject"),
            Some(FindingType::ImpactS3AnomalousBehaviorWrite)
        );
        assert_eq!(s3_tactic("AbortMultipartUpload"), None);
    }

    /// A detector with a one-day learning period that learned a principal's real calls
    /// (Stratus) on day one, with those calls.
    fn learned_day_one() -> (AnomalousApis, Vec<Value>, IntelIndex, Settings) {
        let settings = Settings {
            learning_period_ms: 24 * 3600 * 1000,
            ..Settings::default()
        };
        let intel = IntelIndex::default();
        let day1 = stratus("aws.credential-access.secretsmanager-retrieve-secrets");
        let mut d = AnomalousApis::default();
        assert!(
            run_with(&mut d, &day1, &intel, &settings).is_empty(),
            "learning"
        );
        (d, day1, intel, settings)
    }

    #[test]
    fn new_apis_after_learning_raise_once_and_the_baseline_persists() {
        let (mut d, day1, intel, settings) = learned_day_one();
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

    /// The hash `prefetch` keeps is used only for the record it was worked out for: asked to
    /// prefetch a known call and then shown another record, the detector still sees the other
    /// record's new API.
    #[test]
    fn a_prefetched_hash_serves_only_its_own_record() {
        let (mut d, day1, intel, settings) = learned_day_one();
        let later = |name: &str| {
            let known = day1
                .iter()
                .find(|r| r["eventName"] == "GetSecretValue")
                .unwrap();
            let mut r = known.clone();
            r["eventTime"] = "2030-01-01T00:00:00Z".into();
            r["eventName"] = name.into();
            r.to_string()
        };
        let (known_text, new_text) = (later("GetSecretValue"), later("DeleteSecurityGroup"));
        let known: CloudTrailRecord<'_> = serde_json::from_str(&known_text).unwrap();
        let new: CloudTrailRecord<'_> = serde_json::from_str(&new_text).unwrap();
        let event = |rec| {
            Event::new(
                crate::event::Origin {
                    object: "t.json",
                    line: 1,
                    index: None,
                },
                crate::event::Record::CloudTrail(rec),
            )
        };
        let scope = crate::findings::Scope::new("111111111111", "us-east-1", "ward");
        let ctx = LogContext {
            intel: &intel,
            scope: &scope,
            settings: &settings,
        };
        let mut out = Vec::new();
        d.prefetch(&event(&known), &ctx);
        d.on_event(&event(&new), &ctx, &mut out);
        assert_eq!(types(&out), ["Impact:IAMUser/AnomalousBehavior"]);
        // And the record it was for uses it: known, nothing raised.
        out.clear();
        let known_event = event(&known);
        d.prefetch(&known_event, &ctx);
        assert!(d.prefetched.get().is_some());
        d.on_event(&known_event, &ctx, &mut out);
        assert!(out.is_empty());
        assert!(d.prefetched.get().is_none(), "taken by on_event");
    }
}
