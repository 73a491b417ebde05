//! `UnauthorizedAccess:IAMUser/ResourceCredentialExfiltration.OutsideAWS` / `.InsideAWS` (High):
//! the temporary credentials AWS Lambda created for a function's execution role, used from
//! somewhere that is not Lambda.
//!
//! The evidence is in CloudTrail: Lambda gets a function's credentials with an `AssumeRole` that
//! Lambda itself makes (`userIdentity.invokedBy` / `sourceIPAddress` `lambda.amazonaws.com`, the
//! session named after the function), and its response names the access key id issued
//! (`responseElements.credentials.accessKeyId`) and when it expires. Ward remembers those keys
//! (until they expire; at most 100 000, persisted) and examines every later call made with one:
//! * through a VPC endpoint owned by another account: `.InsideAWS`;
//! * from a public address outside AWS's published ranges: `.OutsideAWS`.
//!
//! Lambda calls from AWS addresses that change with every execution environment, so unlike an
//! instance's there is no home address to learn: without AWS's ranges (`scan --aws-ip-ranges`)
//! Ward cannot tell Lambda's own calls from a thief's, and this detection stays silent. Calls
//! from AWS addresses are not reported (GuardDuty's `.InsideAWS` for them rests on knowing which
//! account owns an address, which Ward does not).

use foldhash::HashMap;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Api, Call, SOURCES, api_draft, record_call, restore_keyed, save_keyed};
use crate::event::cloudtrail::CloudTrailRecord;
use crate::event::{Event, SourceKind};
use crate::findings::{FindingType, Occurrence};
use crate::foundational::aws_ranges::is_public;
use crate::foundational::{LogContext, LogDetector, StateKey};

const MAX_KEYS: usize = 100_000;
/// Lifetime assumed when the response does not say (Lambda's credentials last at most 12 hours).
const DEFAULT_LIFETIME_MS: i64 = 12 * 3600 * 1000;
const LAMBDA: &str = "lambda.amazonaws.com";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Issued {
    /// The role session (the function's name).
    session: String,
    role_arn: Option<String>,
    expires_ms: i64,
}

#[derive(Default)]
pub struct ResourceCredentials {
    keys: HashMap<StateKey, Issued>,
    /// Event time of the last sweep of expired keys.
    swept_ms: i64,
}

/// `AssumeRole` made by Lambda for a function: the key it issued and what it is for.
fn issued_by_lambda(rec: &CloudTrailRecord<'_>, call: Call, now: i64) -> Option<(String, Issued)> {
    // `Api::AssumeRole` is sts's.
    if call.api != Api::AssumeRole || !call.succeeded {
        return None;
    }
    let by_lambda = rec.source_ip_address.as_deref() == Some(LAMBDA)
        || rec
            .user_identity
            .as_ref()
            .is_some_and(|u| u.invoked_by.as_deref() == Some(LAMBDA));
    if !by_lambda {
        return None;
    }
    let response: Value = serde_json::from_str(rec.response_elements?.get()).ok()?;
    let credentials = response.get("credentials")?;
    let key = credentials.get("accessKeyId")?.as_str()?.to_owned();
    let params = super::params(rec);
    let session = params
        .get("roleSessionName")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let expires_ms = credentials
        .get("expiration")
        .and_then(Value::as_str)
        .and_then(parse_expiration)
        .unwrap_or(now + DEFAULT_LIFETIME_MS);
    let role_arn = params
        .get("roleArn")
        .and_then(Value::as_str)
        .map(str::to_owned);
    Some((
        key,
        Issued {
            session,
            role_arn,
            expires_ms,
        },
    ))
}

/// CloudTrail's credential expiry, `Aug 2, 2024, 8:45:00 AM` (UTC), or an ISO 8601 time.
fn parse_expiration(text: &str) -> Option<i64> {
    if let Some(ms) = crate::findings::time::parse_millis(text) {
        return Some(ms);
    }
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let mut parts = text.split([' ', ',']).filter(|p| !p.is_empty());
    let month_name = parts.next()?;
    let month = MONTHS.iter().position(|m| *m == month_name)? + 1;
    let day: u32 = parts.next()?.parse().ok()?;
    let year: u32 = parts.next()?.parse().ok()?;
    let mut hms = parts.next()?.split(':');
    let mut hour: u32 = hms.next()?.parse().ok()?;
    let minute: u32 = hms.next()?.parse().ok()?;
    let second: u32 = hms.next()?.parse().ok()?;
    match parts.next()? {
        "AM" if hour == 12 => hour = 0,
        "AM" => {}
        "PM" if hour < 12 => hour += 12,
        "PM" => {}
        _ => return None,
    }
    crate::findings::time::parse_millis(&format!(
        "{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}Z"
    ))
}

impl LogDetector for ResourceCredentials {
    fn name(&self) -> &'static str {
        "ct.resource-credential-exfiltration"
    }

    fn sources(&self) -> &'static [SourceKind] {
        SOURCES
    }

    fn on_event(&mut self, ev: &Event<'_>, ctx: &LogContext<'_>, out: &mut Vec<Occurrence>) {
        use FindingType as T;
        let Some((rec, call)) = record_call(ev) else {
            return;
        };
        let now = ev.time_ms().unwrap_or_default();
        if let Some((key, issued)) = issued_by_lambda(rec, call, now) {
            if self.keys.len() < MAX_KEYS || self.keys.contains_key(key.as_str()) {
                self.keys.insert(key.into(), issued);
            }
            return;
        }
        if self.keys.is_empty() || call.by_aws_service {
            return;
        }
        let Some(key) = rec
            .user_identity
            .as_ref()
            .and_then(|u| u.access_key_id.as_deref())
        else {
            return;
        };
        let Some(issued) = self.keys.get(key) else {
            return;
        };
        let (t, where_) = if rec.vpc_endpoint_id.is_some() {
            match (
                rec.vpc_endpoint_account_id.as_deref(),
                rec.recipient_account_id.as_deref(),
            ) {
                (Some(e), Some(r)) if e != r => (
                    T::UnauthorizedAccessIamUserResourceCredentialExfiltrationInsideAws,
                    format!("through a VPC endpoint of account {e}"),
                ),
                _ => return,
            }
        } else {
            let ranges = &ctx.settings.aws_ranges;
            let Some(ip) = ev.caller_ip().filter(|ip| is_public(*ip)) else {
                return;
            };
            if !ranges.is_loaded() || ranges.contains(ip) {
                return;
            }
            (
                T::UnauthorizedAccessIamUserResourceCredentialExfiltrationOutsideAws,
                format!("from {ip}, outside AWS"),
            )
        };
        let what = format!(
            "Credentials AWS Lambda created for function {} were used {where_}",
            issued.session
        );
        let info = json!({ "createdBy": LAMBDA, "roleSessionName": issued.session,
                           "roleArn": issued.role_arn, "accessKeyId": key });
        out.extend(
            api_draft(t, self.name(), ev, rec, ctx, &what)
                .info("resourceCredentials", info)
                .build(),
        );
    }

    fn on_time(&mut self, now_ms: i64, _ctx: &LogContext<'_>, _out: &mut Vec<Occurrence>) {
        // Called about every record; expired keys are dropped once a minute of event time.
        if !self.keys.is_empty() && now_ms >= self.swept_ms.saturating_add(60_000) {
            self.swept_ms = now_ms;
            self.keys.retain(|_, i| i.expires_ms >= now_ms);
        }
    }

    fn save_state(&self) -> Option<Value> {
        Some(save_keyed("keys", &self.keys))
    }

    fn restore_state(&mut self, state: Value) -> Result<(), String> {
        self.keys = restore_keyed("keys", &state)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::foundational::cloudtrail::testing::{run_with, stratus, types};
    use crate::foundational::{AwsRanges, Settings};
    use crate::intel::IntelIndex;

    const OUTSIDE: &str = "UnauthorizedAccess:IAMUser/ResourceCredentialExfiltration.OutsideAWS";
    const INSIDE: &str = "UnauthorizedAccess:IAMUser/ResourceCredentialExfiltration.InsideAWS";

    /// A real Stratus `AssumeRole` (its response carries an issued key), made by Lambda for the
    /// function `backdoor-fn` instead of by a user; and a real call by the same account, made
    /// with that key from `ip`.
    fn lambda_session_and_use(ip: &str) -> (Value, Value, String) {
        let logs = stratus("aws.defense-evasion.organizations-leave");
        let mut assume = logs
            .iter()
            .find(|r| r["eventName"] == "AssumeRole" && r["errorCode"].is_null())
            .unwrap()
            .clone();
        let key = assume["responseElements"]["credentials"]["accessKeyId"]
            .as_str()
            .unwrap()
            .to_owned();
        assume["userIdentity"] = json!({ "type": "AWSService", "invokedBy": LAMBDA });
        assume["sourceIPAddress"] = LAMBDA.into();
        assume["requestParameters"]["roleSessionName"] = "backdoor-fn".into();
        let mut call = logs
            .iter()
            .find(|r| r["eventName"] == "LeaveOrganization")
            .unwrap()
            .clone();
        call["userIdentity"]["accessKeyId"] = key.clone().into();
        call["sourceIPAddress"] = ip.into();
        call["eventTime"] = "2024-08-02T08:31:00Z".into();
        (assume, call, key)
    }

    fn settings() -> Settings {
        Settings {
            aws_ranges: AwsRanges::from_json_str(r#"{"prefixes":[{"ip_prefix":"3.0.0.0/8"}]}"#)
                .unwrap(),
            ..Settings::default()
        }
    }

    #[test]
    fn lambda_credentials_used_outside_aws() {
        let (assume, call, key) = lambda_session_and_use("198.51.100.23");
        let intel = IntelIndex::default();
        let occ = run_with(
            &mut ResourceCredentials::default(),
            &[assume.clone(), call.clone()],
            &intel,
            &settings(),
        );
        assert_eq!(types(&occ), [OUTSIDE]);
        let info = occ[0].details.service.additional_info_entries();
        assert_eq!(
            info["resourceCredentials"]["roleSessionName"],
            "backdoor-fn"
        );
        assert_eq!(info["resourceCredentials"]["accessKeyId"], key.as_str());

        // From Lambda's own (AWS) address: nothing; without the ranges Ward cannot tell: nothing.
        let (_, from_aws, _) = lambda_session_and_use("3.91.10.20");
        assert!(
            run_with(
                &mut ResourceCredentials::default(),
                &[assume.clone(), from_aws],
                &intel,
                &settings()
            )
            .is_empty()
        );
        assert!(
            run_with(
                &mut ResourceCredentials::default(),
                &[assume.clone(), call.clone()],
                &intel,
                &Settings::default()
            )
            .is_empty()
        );
        // The original AssumeRole by a user issues no Lambda credentials.
        let (mut by_user, _, _) = lambda_session_and_use("198.51.100.23");
        by_user["userIdentity"] =
            stratus("aws.defense-evasion.organizations-leave")[0]["userIdentity"].clone();
        by_user["sourceIPAddress"] = "252.5.222.230".into();
        assert!(
            run_with(
                &mut ResourceCredentials::default(),
                &[by_user, call.clone()],
                &intel,
                &settings()
            )
            .is_empty()
        );
        // Through another account's VPC endpoint: inside AWS.
        let mut endpoint = call.clone();
        endpoint["vpcEndpointId"] = "vpce-0123456789abcdef0".into();
        endpoint["vpcEndpointAccountId"] = "999999999999".into();
        let occ = run_with(
            &mut ResourceCredentials::default(),
            &[assume.clone(), endpoint],
            &intel,
            &settings(),
        );
        assert_eq!(types(&occ), [INSIDE]);
    }

    #[test]
    fn issued_keys_expire_and_persist() {
        let (assume, call, _) = lambda_session_and_use("198.51.100.23");
        let intel = IntelIndex::default();
        let mut d = ResourceCredentials::default();
        assert!(run_with(&mut d, &[assume], &intel, &settings()).is_empty());
        let mut restored = ResourceCredentials::default();
        restored.restore_state(d.save_state().unwrap()).unwrap();
        assert_eq!(
            types(&run_with(
                &mut restored,
                std::slice::from_ref(&call),
                &intel,
                &settings()
            )),
            [OUTSIDE]
        );
        // "Aug 2, 2024, 8:45:00 AM": a call after that is made with an expired (forgotten) key.
        assert_eq!(
            parse_expiration("Aug 2, 2024, 8:45:00 AM"),
            crate::findings::time::parse_millis("2024-08-02T08:45:00Z")
        );
        assert_eq!(
            parse_expiration("Aug 2, 2024, 12:05:00 PM"),
            crate::findings::time::parse_millis("2024-08-02T12:05:00Z")
        );
        let mut late = call;
        late["eventTime"] = "2024-08-02T09:30:00Z".into();
        let ctx_now = crate::findings::time::parse_millis("2024-08-02T09:00:00Z").unwrap();
        let scope = crate::findings::Scope::new("111111111111", "us-east-1", "ward");
        let s = settings();
        let ctx = LogContext {
            intel: &intel,
            scope: &scope,
            settings: &s,
        };
        restored.on_time(ctx_now, &ctx, &mut Vec::new());
        assert!(run_with(&mut restored, &[late], &intel, &settings()).is_empty());
    }
}
