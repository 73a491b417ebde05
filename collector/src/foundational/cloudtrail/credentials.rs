//! `UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS` / `.InsideAWS` (High):
//! an EC2 instance role's session credentials used from somewhere that is not that instance.
//!
//! Instance-role credentials are recognised by the role-session name EC2 gives them, the
//! instance id (`assumed-role/<role>/i-…`, `principalId` `AROA…:i-…`; IMDS-delivered sessions
//! also carry `sessionContext.ec2RoleDelivery`). A call with them is **not** examined when it
//! was made by an AWS service (`invokedBy`, service events), when `sourceIPAddress` is not an
//! address (`AWS Internal`, a service name), when the address is private or otherwise not
//! publicly routable (the call came from inside a VPC), or when it came through a VPC endpoint of
//! the same account.
//!
//! Otherwise, where is the caller?
//! * Through a VPC endpoint owned by another account: `.InsideAWS`.
//! * A public address outside AWS's published ranges (`scan --aws-ip-ranges`; see
//!   [`crate::foundational::aws_ranges`]): `.OutsideAWS`. Without the ranges every public address
//!   counts as outside AWS.
//! * A public address inside AWS's ranges: the instance's own public or NAT address, or another
//!   AWS customer's. GuardDuty knows which account owns an AWS address; Ward learns the
//!   instance's addresses instead: an address the instance's SSM agent calls from (`ssm`,
//!   `ssmmessages`, `ec2messages` agent APIs: the agent runs on the instance), and any AWS
//!   address its credentials use within the learning period after the instance's first call, is
//!   the instance's. Later calls from any other AWS address raise `.InsideAWS`.
//!
//! Learned addresses (at most 8 per instance, 50 000 instances) are persisted.

use foldhash::HashMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::pair_set::PairSet;
use super::{
    Api, Call, Identity, SOURCES, Service, api_draft, pair_hash, record_call, restore_keyed,
    save_keyed,
};
use crate::event::cloudtrail::{CloudTrailRecord, UserIdentity};
use crate::event::{Event, SourceKind};
use crate::findings::{FindingType, Occurrence};
use crate::foundational::aws_ranges::is_public;
use crate::foundational::{LogContext, LogDetector, StateKey};

const MAX_INSTANCES: usize = 50_000;
const MAX_HOMES: usize = 8;

/// The instance id an EC2 role session is named after, if this is one.
pub fn instance_session<'r>(rec: &'r CloudTrailRecord<'_>) -> Option<&'r str> {
    let ui = rec.user_identity.as_ref()?;
    if ui.identity_type.as_deref() != Some("AssumedRole") {
        return None;
    }
    session_instance(ui)
}

/// [`instance_session`] once the identity is known to be an `AssumedRole`.
fn session_instance<'r>(ui: &'r UserIdentity<'_>) -> Option<&'r str> {
    let session = match ui.arn.as_deref() {
        Some(arn) => short_session(arn)?,
        None => ui
            .principal_id
            .as_deref()
            .and_then(|p| p.rsplit(':').next())?,
    };
    let id = session.strip_prefix("i-")?;
    // Real ids are 8 or 17 lower-case hex digits; anonymised logs mix in upper case. Checked
    // without an early exit: on random hex digits, a branch per byte mispredicts half the time.
    let not_alphanumeric = id
        .bytes()
        .fold(0u8, |n, b| n | u8::from(!b.is_ascii_alphanumeric()));
    ((8..=17).contains(&id.len()) && not_alphanumeric == 0).then_some(session)
}

/// The session part of an ARN (after its last `/`, all of it without one) when it is short
/// enough to be an instance's. Only the last [`LONGEST_SESSION`] + 1 bytes are searched (with
/// `memrchr`, a 16-byte step, rather than a byte loop: every role session's ARN comes here).
fn short_session(arn: &str) -> Option<&str> {
    let b = arn.as_bytes();
    let from = b.len().saturating_sub(LONGEST_SESSION + 1);
    match memchr::memrchr(b'/', &b[from..]) {
        // Just after a `/`: a character boundary.
        Some(i) => Some(&arn[from + i + 1..]),
        None if from == 0 => Some(arn),
        // The session is longer than any instance's.
        None => None,
    }
}

/// `i-` and the longest instance id (17 characters).
const LONGEST_SESSION: usize = 19;

/// Calls the SSM agent on the instance makes (any `ssmmessages` or `ec2messages` API, the
/// agent's `ssm` APIs): their address is the instance's.
fn from_instance_agent(call: Call) -> bool {
    matches!(call.service, Service::SsmMessages | Service::Ec2Messages) || call.api == Api::SsmAgent
}

/// Where instance credentials were used from, when that raises a finding.
enum Elsewhere<'r> {
    /// Through a VPC endpoint of this other account.
    Endpoint(&'r str),
    /// An AWS address that is not the instance's.
    InsideAws(IpAddr),
    OutsideAws(IpAddr),
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Instance {
    first_seen_ms: i64,
    homes: Vec<IpAddr>,
}

/// Keyed for lookups by `&str`: a call with instance credentials from a known place allocates
/// nothing. Saved sorted.
#[derive(Default)]
pub struct InstanceCredentials {
    instances: HashMap<StateKey, Instance>,
    /// [`pair_hash`] of every (instance, home) pair in `instances`: the usual call (an instance's
    /// credentials used from its own address) is one probe of this small flat set, instead of
    /// the instance's entry and then its list of homes, both cold while logs stream through the
    /// caches. A stranger's address sharing a 64-bit hash with a known pair would be taken for a
    /// home: with at most 400,000 pairs, about one chance in 10^13 per call.
    home_pairs: PairSet,
}

impl InstanceCredentials {
    fn learn(&mut self, instance: &str, ip: IpAddr, now: i64) {
        if !self.instances.contains_key(instance) && self.instances.len() >= MAX_INSTANCES {
            return;
        }
        let i = self
            .instances
            .entry(instance.into())
            .or_insert_with(|| Instance {
                first_seen_ms: now,
                homes: Vec::new(),
            });
        if !i.homes.contains(&ip) && i.homes.len() < MAX_HOMES {
            i.homes.push(ip);
            self.home_pairs.insert(pair_hash(instance, ip));
        }
    }
}

impl InstanceCredentials {
    /// The finding (kept out of [`LogDetector::on_event`], whose usual call raises nothing).
    #[cold]
    #[inline(never)]
    fn raise(
        &self,
        elsewhere: Elsewhere<'_>,
        instance: &str,
        ev: &Event<'_>,
        rec: &CloudTrailRecord<'_>,
        ctx: &LogContext<'_>,
        out: &mut Vec<Occurrence>,
    ) {
        use FindingType as T;
        let (t, where_) = match elsewhere {
            Elsewhere::Endpoint(e) => (
                T::UnauthorizedAccessIamUserInstanceCredentialExfiltrationInsideAws,
                format!("through a VPC endpoint of account {e}"),
            ),
            Elsewhere::InsideAws(ip) => (
                T::UnauthorizedAccessIamUserInstanceCredentialExfiltrationInsideAws,
                format!("from {ip}, an AWS address that is not the instance's"),
            ),
            Elsewhere::OutsideAws(ip) => (
                T::UnauthorizedAccessIamUserInstanceCredentialExfiltrationOutsideAws,
                format!("from {ip}, outside AWS"),
            ),
        };
        let what = format!("Credentials of instance {instance} were used {where_}");
        let homes = self
            .instances
            .get(instance)
            .map(|i| i.homes.iter().map(|h| h.to_string()).collect::<Vec<_>>())
            .unwrap_or_default();
        out.extend(
            api_draft(t, self.name(), ev, rec, ctx, &what)
                .info(
                    "instanceCredentials",
                    json!({ "instanceId": instance, "knownInstanceAddresses": homes,
                            "ec2RoleDelivery": rec.ec2_role_delivery() }),
                )
                .build(),
        );
    }
}

impl LogDetector for InstanceCredentials {
    fn name(&self) -> &'static str {
        "ct.instance-credential-exfiltration"
    }

    fn sources(&self) -> &'static [SourceKind] {
        SOURCES
    }

    fn on_event(&mut self, ev: &Event<'_>, ctx: &LogContext<'_>, out: &mut Vec<Occurrence>) {
        let Some((rec, call)) = record_call(ev) else {
            return;
        };
        if call.identity != Identity::AssumedRole || call.by_aws_service {
            return;
        }
        let Some(instance) = rec.user_identity.as_ref().and_then(session_instance) else {
            return;
        };
        let now = ev.time_ms().unwrap_or_default();
        let elsewhere = if rec.vpc_endpoint_id.is_some() {
            match (
                rec.vpc_endpoint_account_id.as_deref(),
                rec.recipient_account_id.as_deref(),
            ) {
                (Some(e), Some(r)) if e != r => Elsewhere::Endpoint(e),
                _ => return,
            }
        } else {
            let Some(ip) = ev.caller_ip().filter(|ip| is_public(*ip)) else {
                return;
            };
            if from_instance_agent(call) {
                self.learn(instance, ip, now);
                return;
            }
            let ranges = &ctx.settings.aws_ranges;
            // The usual call is the instance's own address: its slot starts loading while the
            // ranges are searched.
            let home = pair_hash(instance, ip);
            self.home_pairs.prefetch(home);
            if ranges.is_loaded() && ranges.contains(ip) {
                if self.home_pairs.contains(home) {
                    return;
                }
                let known = self.instances.get(instance);
                let learning =
                    known.is_none_or(|i| now < i.first_seen_ms + ctx.settings.learning_period_ms);
                if learning {
                    self.learn(instance, ip, now);
                    return;
                }
                Elsewhere::InsideAws(ip)
            } else {
                Elsewhere::OutsideAws(ip)
            }
        };
        self.raise(elsewhere, instance, ev, rec, ctx, out);
    }

    fn save_state(&self) -> Option<Value> {
        Some(save_keyed("instances", &self.instances))
    }

    fn restore_state(&mut self, state: Value) -> Result<(), String> {
        self.instances = restore_keyed("instances", &state)?;
        self.home_pairs = self
            .instances
            .iter()
            .flat_map(|(id, i)| i.homes.iter().map(|ip| pair_hash(id.as_str(), *ip)))
            .collect();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::foundational::cloudtrail::testing::{panther, run, run_with, stratus, types};
    use crate::foundational::{AwsRanges, Settings};
    use crate::intel::IntelIndex;

    const OUTSIDE: &str = "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS";
    const INSIDE: &str = "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.InsideAWS";
    const RULE: &str = "AWS.CloudTrail.IMDSCredentialExfiltration";

    #[test]
    fn stolen_stratus_credentials_are_used_outside_aws() {
        let occ = run(
            &mut InstanceCredentials::default(),
            &stratus("aws.credential-access.ec2-steal-instance-credentials"),
        );
        // GetCallerIdentity and DescribeInstances by the instance's session; the IAM user's
        // SendCommand / polling calls are not instance credentials.
        assert_eq!(types(&occ), [OUTSIDE, OUTSIDE]);
        let info = occ[0].details.service.additional_info_entries();
        assert_eq!(
            info["instanceCredentials"]["instanceId"],
            "i-786a3A8B5C0d92eF4"
        );
        assert_eq!(info["instanceCredentials"]["ec2RoleDelivery"], "1.0");
    }

    #[test]
    fn instance_sessions_are_named_after_an_instance_id() {
        let session = |arn: &str, principal: &str| {
            let text = format!(
                r#"{{"userIdentity":{{"type":"AssumedRole","arn":"{arn}","principalId":"{principal}"}}}}"#
            );
            let rec: CloudTrailRecord<'_> = serde_json::from_str(&text).unwrap();
            instance_session(&rec).map(str::to_owned)
        };
        let role = "arn:aws:sts::123456789012:assumed-role/app";
        for id in ["i-0123456789abcdef0", "i-12345678", "i-786a3A8B5C0d92eF4"] {
            assert_eq!(session(&format!("{role}/{id}"), "").as_deref(), Some(id));
        }
        assert_eq!(session("i-12345678", "").as_deref(), Some("i-12345678"));
        assert_eq!(
            session("arn:aws:sts::1:assumed-role/Rôle/i-0123456789abcdef0", "").as_deref(),
            Some("i-0123456789abcdef0")
        );
        assert_eq!(session(&format!("{role}/{}", "é".repeat(15)), ""), None);
        assert_eq!(session(&format!("{role}/i-0123456789abcdef0x"), ""), None);
        assert_eq!(
            session(&format!("{role}/i-0123456789abcdef0"), "AROA:i-99999999").as_deref(),
            Some("i-0123456789abcdef0"),
            "the ARN's session, not the principal id's"
        );
        assert_eq!(
            session(&format!("{role}/app-session"), "AROA:i-99999999"),
            None,
            "no fallback to the principal id when the ARN names another session"
        );
        for not in [
            "i-1234567",
            "i-0123456789abcdef01",
            "i-0123456789abcde-0",
            "i-01234567.9abcdef0",
            "i-",
            "botocore-session-1",
        ] {
            assert_eq!(session(&format!("{role}/{not}"), ""), None, "{not}");
        }
        // Without an ARN, the principal id's session part.
        let text = r#"{"userIdentity":{"type":"AssumedRole","principalId":"AROAEXAMPLE:i-0123456789abcdef0"}}"#;
        let rec: CloudTrailRecord<'_> = serde_json::from_str(text).unwrap();
        assert_eq!(instance_session(&rec), Some("i-0123456789abcdef0"));
        let text = r#"{"userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::1:user/i-0123456789abcdef0"}}"#;
        let rec: CloudTrailRecord<'_> = serde_json::from_str(text).unwrap();
        assert_eq!(instance_session(&rec), None, "only role sessions");
    }

    #[test]
    fn panther_positives_and_negatives() {
        for pos in [
            "IMDS Credentials Used From Public IP",
            "IMDS Credentials Used From Amazon.com ASN Source IP",
        ] {
            let occ = run(&mut InstanceCredentials::default(), &[panther(RULE, pos)]);
            assert_eq!(types(&occ), [OUTSIDE], "{pos}");
        }
        for neg in [
            "Normal EC2 Workload From Private IP",
            "AWS Service Hostname as Source IP",
            "Legitimate SSM Activity",
            "AWS Internal Source IP",
            "AWS Service InvokedBy on behalf of instance",
            "SSM Messages Service Source",
            "RegisterManagedInstance Event",
            "Non-Instance Role",
        ] {
            let occ = run(&mut InstanceCredentials::default(), &[panther(RULE, neg)]);
            assert!(occ.is_empty(), "{neg}: {:?}", types(&occ));
        }
    }

    #[test]
    fn with_aws_ranges_the_instances_own_addresses_are_learned_and_others_are_inside_aws() {
        let settings = Settings {
            aws_ranges: AwsRanges::from_json_str(
                r#"{"prefixes":[{"ip_prefix":"52.42.0.0/16"},{"ip_prefix":"18.236.0.0/15"}]}"#,
            )
            .unwrap(),
            learning_period_ms: 3600 * 1000,
            ..Settings::default()
        };
        let intel = IntelIndex::default();
        let base = panther(RULE, "IMDS Credentials Used From Amazon.com ASN Source IP");
        let call = |time: &str, ip: &str, source: &str, name: &str| {
            let mut r = base.clone();
            r["eventTime"] = time.into();
            r["sourceIPAddress"] = ip.into();
            r["eventSource"] = source.into();
            r["eventName"] = name.into();
            r
        };
        let mut d = InstanceCredentials::default();
        let records = [
            // The SSM agent on the instance calls from its public address.
            call(
                "2024-01-01T00:00:00Z",
                "52.42.146.205",
                "ssmmessages.amazonaws.com",
                "CreateControlChannel",
            ),
            call(
                "2024-01-01T05:00:00Z",
                "52.42.146.205",
                "ec2.amazonaws.com",
                "DescribeInstances",
            ),
            // Another AWS address, after the learning period.
            call(
                "2024-01-01T06:00:00Z",
                "18.236.253.47",
                "ec2.amazonaws.com",
                "DescribeInstances",
            ),
            // Not an AWS address.
            call(
                "2024-01-01T06:01:00Z",
                "45.33.32.156",
                "ec2.amazonaws.com",
                "DescribeInstances",
            ),
        ];
        let occ = run_with(&mut d, &records, &intel, &settings);
        assert_eq!(types(&occ), [INSIDE, OUTSIDE]);
        let saved = d.save_state().unwrap();
        let mut restored = InstanceCredentials::default();
        restored.restore_state(saved).unwrap();
        assert!(
            run_with(&mut restored, &records[1..2], &intel, &settings).is_empty(),
            "home survives a restart"
        );
        let mut other_account = records[1].clone();
        other_account["vpcEndpointId"] = "vpce-1".into();
        other_account["vpcEndpointAccountId"] = "999999999999".into();
        assert_eq!(
            types(&run_with(
                &mut restored,
                &[other_account.clone()],
                &intel,
                &settings
            )),
            [INSIDE]
        );
        other_account["vpcEndpointAccountId"] = base["recipientAccountId"].clone();
        other_account["recipientAccountId"] = "123456789012".into();
        other_account["vpcEndpointAccountId"] = "123456789012".into();
        assert!(run_with(&mut restored, &[other_account], &intel, &settings).is_empty());
    }
}
