//! `service.action`: the network connection, DNS request, port probe or API call behind a finding.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `service.action.actionType` values.
pub mod action_type {
    pub const NETWORK_CONNECTION: &str = "NETWORK_CONNECTION";
    pub const PORT_PROBE: &str = "PORT_PROBE";
    pub const DNS_REQUEST: &str = "DNS_REQUEST";
    pub const AWS_API_CALL: &str = "AWS_API_CALL";
    /// Not printed in the user guide; inferred from the `kubernetesApiCallAction` member name.
    pub const KUBERNETES_API_CALL: &str = "KUBERNETES_API_CALL";
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Action {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws_api_call_action: Option<AwsApiCallAction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_request_action: Option<DnsRequestAction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_connection_action: Option<NetworkConnectionAction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_probe_action: Option<PortProbeAction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes_api_call_action: Option<KubernetesApiCallAction>,
}

impl Action {
    pub fn network_connection(action: NetworkConnectionAction) -> Self {
        Self {
            action_type: Some(action_type::NETWORK_CONNECTION.into()),
            network_connection_action: Some(action),
            ..Self::default()
        }
    }

    pub fn dns_request(action: DnsRequestAction) -> Self {
        Self {
            action_type: Some(action_type::DNS_REQUEST.into()),
            dns_request_action: Some(action),
            ..Self::default()
        }
    }

    pub fn port_probe(action: PortProbeAction) -> Self {
        Self {
            action_type: Some(action_type::PORT_PROBE.into()),
            port_probe_action: Some(action),
            ..Self::default()
        }
    }

    pub fn aws_api_call(action: AwsApiCallAction) -> Self {
        Self {
            action_type: Some(action_type::AWS_API_CALL.into()),
            aws_api_call_action: Some(action),
            ..Self::default()
        }
    }

    pub fn kubernetes_api_call(action: KubernetesApiCallAction) -> Self {
        Self {
            action_type: Some(action_type::KUBERNETES_API_CALL.into()),
            kubernetes_api_call_action: Some(action),
            ..Self::default()
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AwsApiCallAction {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain_details: Option<DomainDetails>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_ip_details: Option<RemoteIpDetails>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_account_details: Option<RemoteAccountDetails>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub affected_resources: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DomainDetails {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RemoteAccountDetails {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affiliated: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DnsRequestAction {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked: Option<bool>,
    /// Registrable part of `domain` (second-level domain plus public suffix).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain_with_suffix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpc_owner_account_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkConnectionAction {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked: Option<bool>,
    /// `INBOUND`, `OUTBOUND` or `UNKNOWN`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_direction: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_port_details: Option<PortDetails>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_ip_details: Option<LocalIpDetails>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_network_interface: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_ip_details: Option<RemoteIpDetails>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_port_details: Option<PortDetails>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortProbeAction {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub port_probe_details: Vec<PortProbeDetail>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortProbeDetail {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_port_details: Option<PortDetails>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_ip_details: Option<LocalIpDetails>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_ip_details: Option<RemoteIpDetails>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KubernetesApiCallAction {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verb: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subresource: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_name: Option<String>,
    // The API spells it `sourceIPs`.
    #[serde(default, skip_serializing_if = "Vec::is_empty", rename = "sourceIPs")]
    pub source_ips: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_ip_details: Option<RemoteIpDetails>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<String>,
}

/// `localPortDetails` / `remotePortDetails`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortDetails {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i64>,
    /// Service name of the port (`SSH`, `HTTP`, …) or `Unknown`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LocalIpDetails {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_address_v4: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_address_v6: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RemoteIpDetails {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<City>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<Country>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub geo_location: Option<GeoLocation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_address_v4: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_address_v6: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<Organization>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct City {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Country {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GeoLocation {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lat: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lon: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Organization {
    /// A string on the wire (`"209"`), not a number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asn_org: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
}
