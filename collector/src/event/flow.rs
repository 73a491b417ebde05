//! VPC Flow Log record (spec §9.2) and the field list ("format") that says how to read a line.

use std::fmt;
use std::net::IpAddr;

macro_rules! flow_fields {
    ($( $variant:ident = $name:literal, )*) => {
        /// A flow-log field, by its AWS name (`${srcaddr}` → [`FlowField::SrcAddr`]).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum FlowField {
            $( $variant, )*
            /// A field this collector does not know yet; its value is still reachable through
            /// [`FlowRecord::field`].
            Unknown,
        }

        impl FlowField {
            pub const KNOWN: &'static [FlowField] = &[$(FlowField::$variant),*];

            pub fn from_name(name: &str) -> FlowField {
                match name {
                    $( $name => FlowField::$variant, )*
                    _ => FlowField::Unknown,
                }
            }

            pub fn name(self) -> &'static str {
                match self {
                    $( FlowField::$variant => $name, )*
                    FlowField::Unknown => "?",
                }
            }
        }
    };
}

flow_fields! {
    Version = "version",
    AccountId = "account-id",
    InterfaceId = "interface-id",
    SrcAddr = "srcaddr",
    DstAddr = "dstaddr",
    SrcPort = "srcport",
    DstPort = "dstport",
    Protocol = "protocol",
    Packets = "packets",
    Bytes = "bytes",
    Start = "start",
    End = "end",
    Action = "action",
    LogStatus = "log-status",
    VpcId = "vpc-id",
    SubnetId = "subnet-id",
    InstanceId = "instance-id",
    TcpFlags = "tcp-flags",
    Type = "type",
    PktSrcAddr = "pkt-srcaddr",
    PktDstAddr = "pkt-dstaddr",
    Region = "region",
    AzId = "az-id",
    SublocationType = "sublocation-type",
    SublocationId = "sublocation-id",
    PktSrcAwsService = "pkt-src-aws-service",
    PktDstAwsService = "pkt-dst-aws-service",
    FlowDirection = "flow-direction",
    TrafficPath = "traffic-path",
    EcsClusterArn = "ecs-cluster-arn",
    EcsClusterName = "ecs-cluster-name",
    EcsContainerInstanceArn = "ecs-container-instance-arn",
    EcsContainerInstanceId = "ecs-container-instance-id",
    EcsContainerId = "ecs-container-id",
    EcsSecondContainerId = "ecs-second-container-id",
    EcsServiceName = "ecs-service-name",
    EcsTaskDefinitionArn = "ecs-task-definition-arn",
    EcsTaskArn = "ecs-task-arn",
    EcsTaskId = "ecs-task-id",
    RejectReason = "reject-reason",
}

/// The ordered field list of a flow log: from the file's header line, from configuration, or the
/// v2 default.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowFormat {
    fields: Vec<FlowField>,
    names: Vec<String>,
}

/// Why a format string was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatError(pub String);

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for FormatError {}

impl FlowFormat {
    pub const V2_DEFAULT: &'static str = "${version} ${account-id} ${interface-id} ${srcaddr} ${dstaddr} ${srcport} ${dstport} ${protocol} ${packets} ${bytes} ${start} ${end} ${action} ${log-status}";

    pub fn v2_default() -> FlowFormat {
        FlowFormat::parse(Self::V2_DEFAULT).expect("default format is valid")
    }

    /// Accepts the AWS `${field} ${field}` syntax as well as bare names (`version srcaddr ...`,
    /// the header line of S3-delivered files). Unknown names are kept (as [`FlowField::Unknown`]);
    /// a name that is not a plausible field name is an error, so a data line is never mistaken for
    /// a header.
    pub fn parse(spec: &str) -> Result<FlowFormat, FormatError> {
        let mut fields = Vec::new();
        let mut names = Vec::new();
        for tok in spec.split_ascii_whitespace() {
            let name = tok
                .strip_prefix("${")
                .and_then(|t| t.strip_suffix('}'))
                .unwrap_or(tok);
            let plausible = !name.is_empty()
                && name.as_bytes()[0].is_ascii_lowercase()
                && name.bytes().all(|c| {
                    c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'_'
                });
            if !plausible {
                return Err(FormatError(format!("not a flow-log field name: {tok:?}")));
            }
            fields.push(FlowField::from_name(name));
            names.push(name.to_owned());
        }
        if fields.is_empty() {
            return Err(FormatError("empty flow-log format".into()));
        }
        Ok(FlowFormat { fields, names })
    }

    pub fn fields(&self) -> &[FlowField] {
        &self.fields
    }

    /// Field names as written (including unknown ones).
    pub fn names(&self) -> &[String] {
        &self.names
    }

    pub fn position(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }
}

/// `ACCEPT` / `REJECT`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlowAction {
    Accept,
    Reject,
}

/// `OK` (data), `NODATA` (no traffic in the interval), `SKIPDATA` (records were dropped by AWS).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogStatus {
    Ok,
    NoData,
    SkipData,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlowDirection {
    Ingress,
    Egress,
}

/// One flow-log line. `None` = the field is not in the format or its value was `-`.
/// Strings borrow from the line.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FlowRecord<'a> {
    pub version: Option<u8>,
    pub account_id: Option<&'a str>,
    pub interface_id: Option<&'a str>,
    pub srcaddr: Option<IpAddr>,
    pub dstaddr: Option<IpAddr>,
    pub srcport: Option<u16>,
    pub dstport: Option<u16>,
    pub protocol: Option<u8>,
    pub packets: Option<u64>,
    pub bytes: Option<u64>,
    /// Unix seconds.
    pub start: Option<u64>,
    pub end: Option<u64>,
    pub action: Option<FlowAction>,
    pub log_status: Option<LogStatus>,
    pub vpc_id: Option<&'a str>,
    pub subnet_id: Option<&'a str>,
    pub instance_id: Option<&'a str>,
    /// OR of FIN 1, SYN 2, RST 4, SYN-ACK 18 over the interval.
    pub tcp_flags: Option<u16>,
    /// `IPv4` / `IPv6` / `EFA`.
    pub traffic_type: Option<&'a str>,
    pub pkt_srcaddr: Option<IpAddr>,
    pub pkt_dstaddr: Option<IpAddr>,
    pub region: Option<&'a str>,
    pub az_id: Option<&'a str>,
    pub sublocation_type: Option<&'a str>,
    pub sublocation_id: Option<&'a str>,
    pub pkt_src_aws_service: Option<&'a str>,
    pub pkt_dst_aws_service: Option<&'a str>,
    pub flow_direction: Option<FlowDirection>,
    pub traffic_path: Option<u8>,
    pub ecs_cluster_arn: Option<&'a str>,
    pub ecs_cluster_name: Option<&'a str>,
    pub ecs_container_instance_arn: Option<&'a str>,
    pub ecs_container_instance_id: Option<&'a str>,
    pub ecs_container_id: Option<&'a str>,
    pub ecs_second_container_id: Option<&'a str>,
    pub ecs_service_name: Option<&'a str>,
    pub ecs_task_definition_arn: Option<&'a str>,
    pub ecs_task_arn: Option<&'a str>,
    pub ecs_task_id: Option<&'a str>,
    pub reject_reason: Option<&'a str>,
    /// The whole line, so fields unknown to this version stay reachable via [`FlowRecord::field`].
    pub line: &'a str,
}

impl FlowRecord<'_> {
    /// Raw value of any field by name (`None` if absent from `format` or `-`).
    pub fn field<'s>(&'s self, format: &FlowFormat, name: &str) -> Option<&'s str> {
        let pos = format.position(name)?;
        self.line
            .split_ascii_whitespace()
            .nth(pos)
            .filter(|v| *v != "-")
    }

    /// Source address of the original packet (`pkt-srcaddr`), else `srcaddr`.
    pub fn packet_src(&self) -> Option<IpAddr> {
        self.pkt_srcaddr.or(self.srcaddr)
    }

    pub fn packet_dst(&self) -> Option<IpAddr> {
        self.pkt_dstaddr.or(self.dstaddr)
    }
}
