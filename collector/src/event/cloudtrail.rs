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
