//! GuardDuty-shaped findings: the finding model (JSON exactly as GuardDuty's EventBridge events
//! carry it), severity, the catalogue of finding types, aggregation and the EventBridge envelope.
//!
//! Ward's own additions to a finding live in `service.additionalInfo.ward` ([`WardDetails`]; the
//! reasons are in [`ward`]).

pub mod action;
pub mod aggregation;
pub mod catalogue;
pub mod envelope;
pub mod finding;
pub mod resource;
pub mod runtime;
pub mod severity;
pub mod time;
pub mod ward;

pub use action::{
    Action, AwsApiCallAction, City, Country, DnsRequestAction, DomainDetails, GeoLocation,
    KubernetesApiCallAction, LocalIpDetails, NetworkConnectionAction, Organization, PortDetails,
    PortProbeAction, PortProbeDetail, RemoteAccountDetails, RemoteIpDetails,
};
pub use aggregation::{
    AggregationError, AggregationFamily, AggregationKey, Aggregator, Occurrence, Outcome, Scope,
};
pub use catalogue::{
    AffectedResource, DataSource, FindingType, FindingTypeInfo, RETIRED_FINDING_TYPES,
    SeverityBasis, ThreatPurpose, UnknownFindingType,
};
pub use envelope::EventBridgeEvent;
pub use finding::{Evidence, Finding, Service, ThreatIntelligenceDetail, finding_arn};
pub use resource::{
    AccessKeyDetails, Container, EcsClusterDetails, EcsTaskDetails, EksClusterDetails,
    InstanceDetails, KubernetesDetails, KubernetesUserDetails, KubernetesWorkloadDetails,
    NetworkInterface, Resource, Tag,
};
pub use runtime::{LineageObject, ProcessDetails, RuntimeContext, RuntimeDetails};
pub use severity::{Severity, SeverityLevel};
pub use ward::{
    LogRecordRef, WardApiCall, WardAttribution, WardContainer, WardDetails, WardProcess,
};
