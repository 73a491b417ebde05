//! CloudTrail record (spec §9.1): every documented field typed, `userIdentity` fully typed,
//! everything else preserved in `extra`. Large free-form objects (`requestParameters`,
//! `responseElements`, ...) stay raw JSON text: detections read the few keys they need and the
//! ingest path does not pay for building trees nobody looks at.

use super::json::{MaybeBool, RawJson, Text, json_record};
use super::net::parse_ip_lenient;
use super::time::parse_iso8601_ms;
use std::net::IpAddr;

json_record! {
    /// One CloudTrail event.
    pub struct CloudTrailRecord<'a> {
        "eventVersion" => event_version: Text<'a>,
        "userIdentity" => user_identity: UserIdentity<'a>,
        "eventTime" => event_time: Text<'a>,
        "eventSource" => event_source: Text<'a>,
        "eventName" => event_name: Text<'a>,
        "awsRegion" => aws_region: Text<'a>,
        "sourceIPAddress" => source_ip_address: Text<'a>,
        "userAgent" => user_agent: Text<'a>,
        "errorCode" => error_code: Text<'a>,
        "errorMessage" => error_message: Text<'a>,
        "requestParameters" => request_parameters: RawJson<'a>,
        "responseElements" => response_elements: RawJson<'a>,
        "additionalEventData" => additional_event_data: RawJson<'a>,
        "requestID" => request_id: Text<'a>,
        "eventID" => event_id: Text<'a>,
        "eventType" => event_type: Text<'a>,
        "apiVersion" => api_version: Text<'a>,
        "readOnly" => read_only: MaybeBool<'a>,
        "resources" => resources: Vec<Resource<'a>>,
        "recipientAccountId" => recipient_account_id: Text<'a>,
        "sharedEventID" => shared_event_id: Text<'a>,
        "vpcEndpointId" => vpc_endpoint_id: Text<'a>,
        "vpcEndpointAccountId" => vpc_endpoint_account_id: Text<'a>,
        "serviceEventDetails" => service_event_details: RawJson<'a>,
        "managementEvent" => management_event: MaybeBool<'a>,
        "eventCategory" => event_category: Text<'a>,
        "addendum" => addendum: Addendum<'a>,
        "sessionCredentialFromConsole" => session_credential_from_console: MaybeBool<'a>,
        "edgeDeviceDetails" => edge_device_details: RawJson<'a>,
        "tlsDetails" => tls_details: TlsDetails<'a>,
        "insightDetails" => insight_details: RawJson<'a>,
    }
}

json_record! {
    /// `userIdentity` (spec §9.1.1).
    pub struct UserIdentity<'a> {
        /// `Root`, `IAMUser`, `AssumedRole`, `Role`, `FederatedUser`, `AWSAccount`, `AWSService`, ...
        "type" => identity_type: Text<'a>,
        "principalId" => principal_id: Text<'a>,
        "arn" => arn: Text<'a>,
        "accountId" => account_id: Text<'a>,
        "accessKeyId" => access_key_id: Text<'a>,
        "userName" => user_name: Text<'a>,
        "invokedBy" => invoked_by: Text<'a>,
        "sessionContext" => session_context: SessionContext<'a>,
        "identityProvider" => identity_provider: Text<'a>,
        "credentialId" => credential_id: Text<'a>,
        "onBehalfOf" => on_behalf_of: OnBehalfOf<'a>,
        "inScopeOf" => in_scope_of: RawJson<'a>,
    }
}

json_record! {
    pub struct SessionContext<'a> {
        "attributes" => attributes: SessionAttributes<'a>,
        "sessionIssuer" => session_issuer: SessionIssuer<'a>,
        "webIdFederationData" => web_id_federation_data: WebIdFederationData<'a>,
        "sourceIdentity" => source_identity: Text<'a>,
        /// `1.0` = IMDSv1, `2.0` = IMDSv2: marks EC2 instance-role credentials.
        "ec2RoleDelivery" => ec2_role_delivery: Text<'a>,
        "ec2IssuedInVPC" => ec2_issued_in_vpc: Text<'a>,
        "assumedRoot" => assumed_root: MaybeBool<'a>,
    }
}

json_record! {
    pub struct SessionAttributes<'a> {
        "mfaAuthenticated" => mfa_authenticated: MaybeBool<'a>,
        "creationDate" => creation_date: Text<'a>,
    }
}

json_record! {
    pub struct SessionIssuer<'a> {
        "type" => issuer_type: Text<'a>,
        "principalId" => principal_id: Text<'a>,
        "arn" => arn: Text<'a>,
        "accountId" => account_id: Text<'a>,
        "userName" => user_name: Text<'a>,
    }
}

json_record! {
    pub struct WebIdFederationData<'a> {
        "federatedProvider" => federated_provider: Text<'a>,
        "attributes" => attributes: RawJson<'a>,
    }
}

json_record! {
    pub struct OnBehalfOf<'a> {
        "userId" => user_id: Text<'a>,
        "identityStoreArn" => identity_store_arn: Text<'a>,
    }
}

json_record! {
    pub struct Resource<'a> {
        "ARN" => arn: Text<'a>,
        "accountId" => account_id: Text<'a>,
        "type" => resource_type: Text<'a>,
    }
}

json_record! {
    pub struct TlsDetails<'a> {
        "tlsVersion" => tls_version: Text<'a>,
        "cipherSuite" => cipher_suite: Text<'a>,
        "clientProvidedHostHeader" => client_provided_host_header: Text<'a>,
    }
}

json_record! {
    pub struct Addendum<'a> {
        "reason" => reason: Text<'a>,
        "updatedFields" => updated_fields: Text<'a>,
        "originalRequestID" => original_request_id: Text<'a>,
        "originalEventID" => original_event_id: Text<'a>,
    }
}

impl CloudTrailRecord<'_> {
    /// `eventTime` as Unix milliseconds.
    pub fn time_ms(&self) -> Option<i64> {
        self.event_time.as_deref().and_then(parse_iso8601_ms)
    }

    /// `sourceIPAddress` when it is an IP address (it may also be a service DNS name or
    /// `AWS Internal`). Leading-zero dotted quads (`08.1.250.216`) are accepted as decimal.
    pub fn source_ip(&self) -> Option<IpAddr> {
        self.source_ip_address.as_deref().and_then(parse_ip_lenient)
    }

    /// True when the record looks like a CloudTrail event at all (used to tell events from
    /// wrappers and digest files).
    pub fn looks_like_event(&self) -> bool {
        self.event_name.is_some() || self.event_version.is_some() || self.event_source.is_some()
    }

    /// Made by an AWS service on the caller's behalf (`invokedBy`) or recorded as a service
    /// event: not something the principal's credentials did from an address. The console's own
    /// `invokedBy` values (`signin.amazonaws.com`, `console.amazonaws.com`) are the principal
    /// acting through the browser, so they do not count.
    pub fn by_aws_service(&self) -> bool {
        self.user_identity.as_ref().is_some_and(|u| {
            u.invoked_by
                .as_deref()
                .is_some_and(|by| !matches!(by, "signin.amazonaws.com" | "console.amazonaws.com"))
                || u.identity_type.as_deref() == Some("AWSService")
        }) || self.event_type.as_deref() == Some("AwsServiceEvent")
    }

    /// `ec2RoleDelivery` of the session, set when the credentials are an EC2 instance role's.
    pub fn ec2_role_delivery(&self) -> Option<&str> {
        self.user_identity
            .as_ref()?
            .session_context
            .as_ref()?
            .ec2_role_delivery
            .as_deref()
    }
}

/// The AWS service of a call (`eventSource`), for the services Ward's detections key on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    CloudTrail,
    S3,
    S3Control,
    Iam,
    Sts,
    Ssm,
    SsmMessages,
    Ec2Messages,
    Bedrock,
    /// Any other source, or none.
    Other,
}

/// The API of a call (`eventName`), for the APIs Ward's detections key on. Each is recognised
/// under the service it belongs to ([`Api::of`]); `ConsoleLogin` under any service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Api {
    // cloudtrail
    CreateTrail,
    UpdateTrail,
    StopLogging,
    DeleteTrail,
    PutEventSelectors,
    // s3, s3-control
    DeleteBucket,
    PutBucketLogging,
    DeleteBucketPublicAccessBlock,
    PutBucketPublicAccessBlock,
    DeleteAccountPublicAccessBlock,
    PutAccountPublicAccessBlock,
    PutBucketPolicy,
    PutBucketAcl,
    // bedrock
    DeleteModelInvocationLoggingConfiguration,
    // iam
    DeleteAccountPasswordPolicy,
    UpdateAccountPasswordPolicy,
    // sts
    AssumeRole,
    /// An ssm API the SSM agent calls from the instance it runs on (`UpdateInstanceInformation`,
    /// `RegisterManagedInstance`, `UpdateInstanceAssociationStatus`, `PutInventory`,
    /// `ListInstanceAssociations`, `PutComplianceItems`).
    SsmAgent,
    ConsoleLogin,
    /// Any other API, or an API above under another service. Last: [`Api::COUNT`] counts on it.
    Other,
}

impl Service {
    pub fn of(source: Option<&str>) -> Service {
        // The common suffix once, then short names the compiler compares inline.
        let Some(name) = source.and_then(|s| s.strip_suffix(".amazonaws.com")) else {
            return Service::Other;
        };
        match name {
            "cloudtrail" => Service::CloudTrail,
            "s3" => Service::S3,
            "s3-control" => Service::S3Control,
            "iam" => Service::Iam,
            "sts" => Service::Sts,
            "ssm" => Service::Ssm,
            "ssmmessages" => Service::SsmMessages,
            "ec2messages" => Service::Ec2Messages,
            "bedrock" => Service::Bedrock,
            _ => Service::Other,
        }
    }
}

impl Api {
    /// Number of variants (`Other` is the last).
    pub const COUNT: usize = Api::Other as usize + 1;

    /// The API `name` of `service`: only that service's APIs are compared, so the usual record
    /// (an API no detection keys on) costs a few length comparisons.
    pub fn of(service: Service, name: Option<&str>) -> Api {
        let Some(name) = name else {
            return Api::Other;
        };
        let api = match service {
            Service::CloudTrail => match name {
                "CreateTrail" => Api::CreateTrail,
                "UpdateTrail" => Api::UpdateTrail,
                "StopLogging" => Api::StopLogging,
                "DeleteTrail" => Api::DeleteTrail,
                "PutEventSelectors" => Api::PutEventSelectors,
                _ => Api::Other,
            },
            Service::S3 | Service::S3Control => match name {
                "DeleteBucket" => Api::DeleteBucket,
                "PutBucketLogging" => Api::PutBucketLogging,
                "DeleteBucketPublicAccessBlock" => Api::DeleteBucketPublicAccessBlock,
                "PutBucketPublicAccessBlock" => Api::PutBucketPublicAccessBlock,
                "DeleteAccountPublicAccessBlock" => Api::DeleteAccountPublicAccessBlock,
                "PutAccountPublicAccessBlock" => Api::PutAccountPublicAccessBlock,
                "PutBucketPolicy" => Api::PutBucketPolicy,
                "PutBucketAcl" => Api::PutBucketAcl,
                _ => Api::Other,
            },
            Service::Bedrock => match name {
                "DeleteModelInvocationLoggingConfiguration" => {
                    Api::DeleteModelInvocationLoggingConfiguration
                }
                _ => Api::Other,
            },
            Service::Iam => match name {
                "DeleteAccountPasswordPolicy" => Api::DeleteAccountPasswordPolicy,
                "UpdateAccountPasswordPolicy" => Api::UpdateAccountPasswordPolicy,
                _ => Api::Other,
            },
            Service::Sts => match name {
                "AssumeRole" => Api::AssumeRole,
                _ => Api::Other,
            },
            Service::Ssm => match name {
                "UpdateInstanceInformation"
                | "RegisterManagedInstance"
                | "UpdateInstanceAssociationStatus"
                | "PutInventory"
                | "ListInstanceAssociations"
                | "PutComplianceItems" => Api::SsmAgent,
                _ => Api::Other,
            },
            Service::SsmMessages | Service::Ec2Messages | Service::Other => Api::Other,
        };
        if api == Api::Other && name == "ConsoleLogin" {
            Api::ConsoleLogin
        } else {
            api
        }
    }
}

/// `userIdentity.type`, for the types detections key on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Identity {
    Root,
    AssumedRole,
    AwsService,
    /// Any other type, or no identity. Last: [`Identity::COUNT`] counts on it.
    Other,
}

impl Identity {
    /// Number of variants (`Other` is the last).
    pub const COUNT: usize = Identity::Other as usize + 1;
}

/// Which CloudTrail records a detector can act on, told by their [`Call`]. The engine asks each
/// detector once and then shows a record only to the detectors its call concerns: most detectors
/// act on a few APIs, and most records are calls none of those few detectors wants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Calls {
    All,
    /// Calls of these APIs.
    Apis(&'static [Api]),
    /// Calls made with this identity type.
    Identity(Identity),
}

impl Calls {
    /// Whether a call of `api` made with `identity` is one of these.
    pub fn admits(self, api: Api, identity: Identity) -> bool {
        match self {
            Calls::All => true,
            Calls::Apis(apis) => apis.contains(&api),
            Calls::Identity(i) => i == identity,
        }
    }

    /// Where a call's detectors are listed in a table indexed by API and identity (see
    /// [`Calls::route_count`]).
    pub fn route(call: &Call) -> usize {
        call.api as usize * Identity::COUNT + call.identity as usize
    }

    /// Entries of a table indexed by [`Calls::route`].
    pub const fn route_count() -> usize {
        Api::COUNT * Identity::COUNT
    }
}

/// What Ward's CloudTrail detections ask of every record before anything else, worked out once
/// per record ([`crate::event::Event::cloudtrail_call`]) instead of by each detector: most
/// detectors act on a few services and APIs, and every record is shown to all of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Call {
    pub service: Service,
    pub api: Api,
    pub identity: Identity,
    /// [`CloudTrailRecord::by_aws_service`].
    pub by_aws_service: bool,
    /// No `errorCode` (or an empty one).
    pub succeeded: bool,
    /// An S3 data event (object-level API): `eventSource` S3 and `eventCategory` `Data` or
    /// `managementEvent` false.
    pub s3_data_event: bool,
}

impl Call {
    pub fn of(rec: &CloudTrailRecord<'_>) -> Call {
        let service = Service::of(rec.event_source.as_deref());
        let identity = match rec
            .user_identity
            .as_ref()
            .and_then(|u| u.identity_type.as_deref())
        {
            Some("Root") => Identity::Root,
            Some("AssumedRole") => Identity::AssumedRole,
            Some("AWSService") => Identity::AwsService,
            _ => Identity::Other,
        };
        // [`CloudTrailRecord::by_aws_service`], with the identity type already read.
        let by_aws_service = identity == Identity::AwsService
            || rec.user_identity.as_ref().is_some_and(|u| {
                u.invoked_by.as_deref().is_some_and(|by| {
                    !matches!(by, "signin.amazonaws.com" | "console.amazonaws.com")
                })
            })
            || rec.event_type.as_deref() == Some("AwsServiceEvent");
        Call {
            service,
            api: Api::of(service, rec.event_name.as_deref()),
            identity,
            by_aws_service,
            succeeded: rec.error_code.as_deref().is_none_or(str::is_empty),
            s3_data_event: service == Service::S3
                && (rec.event_category.as_deref() == Some("Data")
                    || rec.management_event.as_ref().and_then(|b| b.as_bool()) == Some(false)),
        }
    }
}
