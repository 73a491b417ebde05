//! Resources and evidence of foundational findings, built the way GuardDuty fills them: the access
//! key (IAM findings), the instance (EC2 findings), the bucket (S3 findings), the remote address and
//! the API call.

use std::net::IpAddr;

use crate::event::cloudtrail::{CloudTrailRecord, UserIdentity};
use crate::findings::resource::{S3BucketDetail, resource_type};
use crate::findings::{
    AccessKeyDetails, AwsApiCallAction, DomainDetails, InstanceDetails, RemoteAccountDetails,
    RemoteIpDetails, Resource,
};

/// `resource.accessKeyDetails` of the caller. The user name is the IAM user's, the role's for a
/// role session (GuardDuty shows the role), `Root` for the root user. When the record carries no
/// access key and no principal id (a failed anonymous call), the ARN or the identity type keys the
/// finding instead, so such findings still aggregate per caller.
pub fn access_key(identity: Option<&UserIdentity<'_>>) -> Resource {
    let ui = identity.cloned().unwrap_or_default();
    let user_type = ui.identity_type.as_deref().unwrap_or("Unknown").to_owned();
    let issuer = ui
        .session_context
        .as_ref()
        .and_then(|s| s.session_issuer.as_ref());
    let user_name = match user_type.as_str() {
        "Root" => Some("Root".to_owned()),
        "AssumedRole" | "Role" => issuer
            .and_then(|i| i.user_name.as_deref())
            .map(str::to_owned)
            .or_else(|| {
                ui.arn
                    .as_deref()
                    .and_then(|a| a.split('/').nth(1))
                    .map(str::to_owned)
            }),
        _ => ui.user_name.as_deref().map(str::to_owned),
    };
    let principal_id = ui
        .principal_id
        .as_deref()
        .filter(|p| !p.is_empty())
        .or(ui.arn.as_deref().filter(|a| !a.is_empty()))
        .map(str::to_owned)
        .or_else(|| Some(format!("{user_type}:unidentified")));
    Resource {
        resource_type: Some(resource_type::ACCESS_KEY.to_owned()),
        access_key_details: Some(AccessKeyDetails {
            access_key_id: ui
                .access_key_id
                .as_deref()
                .filter(|k| !k.is_empty())
                .map(str::to_owned),
            principal_id,
            user_name,
            user_type: Some(user_type),
        }),
        ..Resource::default()
    }
}

/// `resource.instanceDetails` naming one instance.
pub fn instance(instance_id: &str) -> Resource {
    Resource {
        resource_type: Some(resource_type::INSTANCE.to_owned()),
        instance_details: Some(InstanceDetails {
            instance_id: Some(instance_id.to_owned()),
            ..InstanceDetails::default()
        }),
        ..Resource::default()
    }
}

/// An access-key resource that also names the bucket acted on (S3 findings carry both).
pub fn with_bucket(mut resource: Resource, bucket: &str, partition: &str) -> Resource {
    resource.resource_type = Some(resource_type::S3_BUCKET.to_owned());
    resource.s3_bucket_details.push(S3BucketDetail {
        arn: Some(format!("arn:{partition}:s3:::{bucket}")),
        name: Some(bucket.to_owned()),
        bucket_type: Some("Destination".to_owned()),
        ..S3BucketDetail::default()
    });
    resource
}

/// `remoteIpDetails` for an address. Ward has no geolocation or ASN database, so only the address
/// is filled; organisation and country stay absent rather than invented.
pub fn remote_ip(ip: IpAddr) -> RemoteIpDetails {
    let mut d = RemoteIpDetails::default();
    match ip {
        IpAddr::V4(v4) => d.ip_address_v4 = Some(v4.to_string()),
        IpAddr::V6(v6) => d.ip_address_v6 = Some(v6.to_string()),
    }
    d
}

/// `awsApiCallAction` for a CloudTrail record: the API and its service, the caller's address (or
/// the service domain when an AWS service called), user agent, error code, the caller's account
/// when it is not the account the event was recorded in, and the resources the record names.
pub fn api_call(rec: &CloudTrailRecord<'_>) -> AwsApiCallAction {
    let mut a = AwsApiCallAction {
        api: rec.event_name.as_deref().map(str::to_owned),
        service_name: rec.event_source.as_deref().map(str::to_owned),
        user_agent: rec.user_agent.as_deref().map(str::to_owned),
        error_code: rec.error_code.as_deref().map(str::to_owned),
        ..AwsApiCallAction::default()
    };
    match rec.source_ip() {
        Some(ip) => {
            a.caller_type = Some("Remote IP".to_owned());
            a.remote_ip_details = Some(remote_ip(ip));
        }
        None => {
            a.caller_type = Some("Domain".to_owned());
            a.domain_details = rec.source_ip_address.as_deref().map(|d| DomainDetails {
                domain: Some(d.to_owned()),
            });
        }
    }
    let caller_account = rec
        .user_identity
        .as_ref()
        .and_then(|u| u.account_id.as_deref());
    let recipient = rec.recipient_account_id.as_deref();
    if let (Some(caller), Some(recipient)) = (caller_account, recipient)
        && caller != recipient
    {
        a.remote_account_details = Some(RemoteAccountDetails {
            account_id: Some(caller.to_owned()),
            affiliated: None,
        });
    }
    for r in rec.resources.iter().flatten() {
        if let (Some(t), Some(arn)) = (r.resource_type.as_deref(), r.arn.as_deref()) {
            a.affected_resources.insert(t.to_owned(), arn.to_owned());
        }
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(json: &str) -> CloudTrailRecord<'_> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn role_sessions_name_the_role_and_remote_accounts_are_kept() {
        let r = record(
            r#"{"eventName":"DescribeInstances","eventSource":"ec2.amazonaws.com","sourceIPAddress":"08.1.250.216",
                "userAgent":"aws-cli/2","recipientAccountId":"111111111111","errorCode":"AccessDenied",
                "userIdentity":{"type":"AssumedRole","principalId":"AROAX:i-0abc","accountId":"222222222222",
                "accessKeyId":"ASIAX","sessionContext":{"sessionIssuer":{"userName":"app-role"}}},
                "resources":[{"type":"AWS::EC2::Instance","ARN":"arn:aws:ec2:x:1:instance/i-0abc"}]}"#,
        );
        let res = access_key(r.user_identity.as_ref());
        let key = res.access_key_details.as_ref().unwrap();
        assert_eq!(key.user_name.as_deref(), Some("app-role"));
        assert_eq!(key.access_key_id.as_deref(), Some("ASIAX"));
        assert_eq!(key.user_type.as_deref(), Some("AssumedRole"));
        let a = api_call(&r);
        assert_eq!(
            a.remote_ip_details.unwrap().ip_address_v4.as_deref(),
            Some("8.1.250.216")
        );
        assert_eq!(a.error_code.as_deref(), Some("AccessDenied"));
        assert_eq!(
            a.remote_account_details.unwrap().account_id.as_deref(),
            Some("222222222222")
        );
        assert_eq!(
            a.affected_resources["AWS::EC2::Instance"],
            "arn:aws:ec2:x:1:instance/i-0abc"
        );
        let svc = api_call(&record(
            r#"{"eventName":"Decrypt","sourceIPAddress":"cloudformation.amazonaws.com"}"#,
        ));
        assert_eq!(svc.caller_type.as_deref(), Some("Domain"));
        assert!(svc.remote_ip_details.is_none());
        let anon = access_key(None);
        assert!(
            anon.identity().is_some(),
            "an unidentified caller still keys a finding"
        );
    }
}
