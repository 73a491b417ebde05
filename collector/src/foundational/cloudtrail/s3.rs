//! S3 Policy and Stealth findings from successful S3 management calls (spec §5.3, CT-M).
//!
//! | call | finding |
//! |---|---|
//! | `PutBucketLogging` whose `BucketLoggingStatus` has no `LoggingEnabled` | `Stealth:S3/ServerAccessLoggingDisabled` |
//! | `DeleteBucketPublicAccessBlock`, `PutBucketPublicAccessBlock` with any of the four settings false | `Policy:S3/BucketBlockPublicAccessDisabled` |
//! | `DeleteAccountPublicAccessBlock`, `PutAccountPublicAccessBlock` with any setting false | `Policy:S3/AccountBlockPublicAccessDisabled` |
//! | `PutBucketPolicy` with an `Allow` statement for principal `*` and no condition that confines it (source IP/VPC/endpoint, organisation, account, ARN) | `Policy:S3/BucketAnonymousAccessGranted` |
//! | `PutBucketAcl` granting `AllUsers` (grant or canned `public-read[-write]`) | `Policy:S3/BucketAnonymousAccessGranted` |
//! | `PutBucketAcl` granting `AuthenticatedUsers` (grant or canned `authenticated-read`) | `Policy:S3/BucketPublicAccessGranted` |
//!
//! GuardDuty also weighs the Block Public Access settings in force (a public policy on a bucket
//! whose BPA blocks it is not public); CloudTrail alone does not say what they are, so Ward raises
//! on the grant itself.

use serde_json::Value;

use super::{Api, Call, SOURCES, Service, api_draft, params, record_call};
use crate::event::{Event, SourceKind};
use crate::findings::{FindingType, Occurrence};
use crate::foundational::resource::with_bucket;
use crate::foundational::{Calls, LogContext, LogDetector};

pub struct BucketExposure;

/// Condition keys that confine a `Principal: *` statement to known networks or principals.
const CONFINING_KEYS: &[&str] = &[
    "aws:sourceip",
    "aws:sourcevpc",
    "aws:sourcevpce",
    "aws:principalorgid",
    "aws:principalorgpaths",
    "aws:principalaccount",
    "aws:sourceaccount",
    "aws:sourcearn",
    "aws:sourceowner",
    "aws:principalarn",
    "aws:userid",
    "aws:username",
    "aws:calledvia",
    "s3:dataaccesspointaccount",
    "s3:dataaccesspointarn",
];

/// A value that may be a JSON object or a JSON document in a string.
fn as_object(v: &Value) -> Option<Value> {
    match v {
        Value::Object(_) => Some(v.clone()),
        Value::String(s) => serde_json::from_str::<Value>(s)
            .ok()
            .filter(Value::is_object),
        _ => None,
    }
}

fn is_everyone(principal: &Value) -> bool {
    match principal {
        Value::String(s) => s == "*",
        Value::Object(m) => m.get("AWS").is_some_and(|a| match a {
            Value::String(s) => s == "*",
            Value::Array(v) => v.iter().any(|x| x == "*"),
            _ => false,
        }),
        _ => false,
    }
}

fn confined(condition: Option<&Value>) -> bool {
    let Some(Value::Object(ops)) = condition else {
        return false;
    };
    ops.values().any(|keys| {
        keys.as_object().is_some_and(|k| {
            k.keys()
                .any(|key| CONFINING_KEYS.contains(&key.to_ascii_lowercase().as_str()))
        })
    })
}

/// A bucket policy with a statement that allows anyone, unconfined.
pub fn policy_is_anonymous(policy: &Value) -> bool {
    let statements = match policy.get("Statement") {
        Some(Value::Array(s)) => s.clone(),
        Some(s @ Value::Object(_)) => vec![s.clone()],
        _ => return false,
    };
    statements.iter().any(|s| {
        s.get("Effect").and_then(Value::as_str) == Some("Allow")
            && s.get("Principal").is_some_and(is_everyone)
            && !confined(s.get("Condition"))
    })
}

/// Which public group a `PutBucketAcl` grants to, if any: `AllUsers` wins over
/// `AuthenticatedUsers`.
fn acl_grantee(p: &Value) -> Option<FindingType> {
    let text = p.to_string();
    let canned = p
        .get("x-amz-acl")
        .map(|v| v.to_string())
        .unwrap_or_default();
    if text.contains("acs.amazonaws.com/groups/global/AllUsers") || canned.contains("public-read") {
        Some(FindingType::PolicyS3BucketAnonymousAccessGranted)
    } else if text.contains("acs.amazonaws.com/groups/global/AuthenticatedUsers")
        || canned.contains("authenticated-read")
    {
        Some(FindingType::PolicyS3BucketPublicAccessGranted)
    } else {
        None
    }
}

/// Any of the four Block Public Access settings turned off.
fn bpa_weakened(config: Option<&Value>) -> bool {
    let Some(c) = config else { return false };
    [
        "BlockPublicAcls",
        "IgnorePublicAcls",
        "BlockPublicPolicy",
        "RestrictPublicBuckets",
    ]
    .iter()
    .any(|k| {
        matches!(c.get(*k), Some(Value::Bool(false))) || c.get(*k) == Some(&Value::from("false"))
    })
}

/// An S3 (or S3 Control) call that can change a bucket's exposure or its access logging: the
/// calls [`BucketExposure`] looks into.
pub(super) fn is_exposure_call(call: &Call) -> bool {
    matches!(call.service, Service::S3 | Service::S3Control) && EXPOSURE_APIS.contains(&call.api)
}

/// The APIs [`BucketExposure`] looks at.
const EXPOSURE_APIS: &[Api] = &[
    Api::PutBucketLogging,
    Api::DeleteBucketPublicAccessBlock,
    Api::PutBucketPublicAccessBlock,
    Api::DeleteAccountPublicAccessBlock,
    Api::PutAccountPublicAccessBlock,
    Api::PutBucketPolicy,
    Api::PutBucketAcl,
];

impl LogDetector for BucketExposure {
    fn name(&self) -> &'static str {
        "ct.s3-exposure"
    }

    fn sources(&self) -> &'static [SourceKind] {
        SOURCES
    }

    fn calls(&self) -> Calls {
        Calls::Apis(EXPOSURE_APIS)
    }

    fn on_event(&mut self, ev: &Event<'_>, ctx: &LogContext<'_>, out: &mut Vec<Occurrence>) {
        use FindingType as T;
        let Some((rec, call)) = record_call(ev) else {
            return;
        };
        if !is_exposure_call(&call) || !call.succeeded {
            return;
        }
        let name = rec.event_name.as_deref().unwrap_or("");
        let p = params(rec);
        let (t, what, bucket_level) = match name {
            "PutBucketLogging" => {
                let Some(status) = p.get("BucketLoggingStatus") else {
                    return;
                };
                if status.get("LoggingEnabled").is_some() {
                    return;
                }
                (
                    T::StealthS3ServerAccessLoggingDisabled,
                    "S3 server access logging was disabled",
                    true,
                )
            }
            "DeleteBucketPublicAccessBlock" => (
                T::PolicyS3BucketBlockPublicAccessDisabled,
                "S3 Block Public Access was removed from a bucket",
                true,
            ),
            "PutBucketPublicAccessBlock"
                if bpa_weakened(p.get("PublicAccessBlockConfiguration")) =>
            {
                (
                    T::PolicyS3BucketBlockPublicAccessDisabled,
                    "S3 Block Public Access was turned off for a bucket",
                    true,
                )
            }
            "DeleteAccountPublicAccessBlock" => (
                T::PolicyS3AccountBlockPublicAccessDisabled,
                "S3 Block Public Access was removed from the account",
                false,
            ),
            "PutAccountPublicAccessBlock"
                if bpa_weakened(p.get("PublicAccessBlockConfiguration")) =>
            {
                (
                    T::PolicyS3AccountBlockPublicAccessDisabled,
                    "S3 Block Public Access was turned off for the account",
                    false,
                )
            }
            "PutBucketPolicy"
                if p.get("bucketPolicy")
                    .and_then(as_object)
                    .is_some_and(|pol| policy_is_anonymous(&pol)) =>
            {
                (
                    T::PolicyS3BucketAnonymousAccessGranted,
                    "A bucket policy now allows anyone",
                    true,
                )
            }
            "PutBucketAcl" => match acl_grantee(&p) {
                Some(t @ T::PolicyS3BucketAnonymousAccessGranted) => {
                    (t, "A bucket ACL now grants access to everyone", true)
                }
                Some(t) => (t, "A bucket ACL now grants access to all AWS users", true),
                None => return,
            },
            _ => return,
        };
        let mut d = api_draft(t, self.name(), ev, rec, ctx, what);
        if bucket_level {
            let Some(bucket) = p.get("bucketName").and_then(Value::as_str) else {
                return;
            };
            d.resource = with_bucket(d.resource, bucket, &ctx.scope.partition);
        }
        out.extend(d.build());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::foundational::cloudtrail::testing::{panther, run, types};

    #[test]
    fn logging_disabled_only_when_the_status_drops_logging() {
        let pos = panther(
            "AWS.S3.DisableBucketLogging",
            "Bucket Logging Disabled Successfully",
        );
        let occ = run(&mut BucketExposure, &[pos]);
        assert_eq!(types(&occ), ["Stealth:S3/ServerAccessLoggingDisabled"]);
        let b = &occ[0].details.resource.s3_bucket_details[0];
        assert_eq!(b.name.as_deref(), Some("critical-data-bucket"));
        assert_eq!(
            occ[0].details.resource.resource_type.as_deref(),
            Some("S3Bucket")
        );
        for neg in [
            "Bucket Logging Disabled - Failed",
            "Bucket Logging Enabled",
            "Logging Field Missing",
        ] {
            assert!(
                run(
                    &mut BucketExposure,
                    &[panther("AWS.S3.DisableBucketLogging", neg)]
                )
                .is_empty(),
                "{neg}"
            );
        }
    }

    #[test]
    fn public_access_block_removal() {
        let pos = panther(
            "AWS.S3.DeletePublicAccessBlock",
            "Public Access Block Deleted Successfully",
        );
        assert_eq!(
            types(&run(&mut BucketExposure, std::slice::from_ref(&pos))),
            ["Policy:S3/BucketBlockPublicAccessDisabled"]
        );
        let neg = panther(
            "AWS.S3.DeletePublicAccessBlock",
            "Public Access Block Deletion Failed",
        );
        assert!(run(&mut BucketExposure, &[neg]).is_empty());
        let mut account = pos;
        account["eventName"] = "PutAccountPublicAccessBlock".into();
        account["requestParameters"] = serde_json::json!({"PublicAccessBlockConfiguration":
            {"BlockPublicAcls": false, "IgnorePublicAcls": true, "BlockPublicPolicy": true, "RestrictPublicBuckets": true}});
        assert_eq!(
            types(&run(&mut BucketExposure, &[account.clone()])),
            ["Policy:S3/AccountBlockPublicAccessDisabled"]
        );
        account["requestParameters"]["PublicAccessBlockConfiguration"]["BlockPublicAcls"] =
            true.into();
        assert!(
            run(&mut BucketExposure, &[account]).is_empty(),
            "all four on"
        );
    }

    #[test]
    fn anonymous_policies_and_acls() {
        let pos = panther(
            "AWS.CloudTrail.ResourceMadePublic",
            "S3 Made Publicly Accessible",
        );
        let occ = run(&mut BucketExposure, std::slice::from_ref(&pos));
        assert_eq!(types(&occ), ["Policy:S3/BucketAnonymousAccessGranted"]);
        assert_eq!(occ[0].details.severity.label(), "High");
        for neg in [
            "S3 Not Made Publicly Accessible",
            "S3 Failed to make Publicly Accessible",
            "Null Request Parameters",
            "Invalid JSON Policy (Should Not Alert)",
            "All Restrictive Conditions Types (Should Not Alert)",
        ] {
            let log = panther("AWS.CloudTrail.ResourceMadePublic", neg);
            assert!(run(&mut BucketExposure, &[log]).is_empty(), "{neg}");
        }
        let private = panther("AWS.S3.BucketPolicyModified", "S3 Bucket Policy Modified");
        assert!(
            run(&mut BucketExposure, std::slice::from_ref(&private)).is_empty(),
            "canned private ACL"
        );
        let mut public = private.clone();
        public["requestParameters"]["x-amz-acl"] = serde_json::json!(["public-read"]);
        assert_eq!(
            types(&run(&mut BucketExposure, &[public])),
            ["Policy:S3/BucketAnonymousAccessGranted"]
        );
        let mut authenticated = private;
        authenticated["requestParameters"]["x-amz-acl"] = serde_json::json!(["authenticated-read"]);
        assert_eq!(
            types(&run(&mut BucketExposure, &[authenticated])),
            ["Policy:S3/BucketPublicAccessGranted"]
        );
    }
}
