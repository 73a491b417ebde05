//! Building the occurrence of an EC2 finding from a flow or DNS record: the instance resource,
//! GuardDuty's evidence (`service.action`, threat-list details) and the pointer to the log record
//! (`additionalInfo.ward.logRecord`), through the engine's [`Draft`].

use std::net::IpAddr;

use crate::event::Event;
use crate::findings::finding::resource_role;
use crate::findings::{
    FindingType, InstanceDetails, LocalIpDetails, LogRecordRef, NetworkInterface, Occurrence,
    PortDetails, RemoteIpDetails, Resource, Severity,
};
use crate::foundational::LogContext;
use crate::foundational::occurrence::Draft;

/// The instance a record is about. Flow logs without `instance-id` (the v2 default format) name
/// only the network interface; the finding then carries `instanceDetails.networkInterfaces[0]`
/// and no instance id, and aggregates per interface.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Ec2Target<'a> {
    pub instance_id: Option<&'a str>,
    pub eni: Option<&'a str>,
    pub vpc_id: Option<&'a str>,
    pub subnet_id: Option<&'a str>,
    pub local_ip: Option<IpAddr>,
}

impl Ec2Target<'_> {
    /// The key detectors keep state under: the instance id, else the interface id.
    pub fn key(&self) -> Option<&str> {
        self.instance_id.or(self.eni)
    }

    pub fn resource(&self) -> Resource {
        let interface = (self.eni.is_some() || self.local_ip.is_some()).then(|| NetworkInterface {
            network_interface_id: self.eni.map(str::to_owned),
            private_ip_address: self.local_ip.map(|ip| ip.to_string()),
            subnet_id: self.subnet_id.map(str::to_owned),
            vpc_id: self.vpc_id.map(str::to_owned),
            ..NetworkInterface::default()
        });
        Resource {
            resource_type: Some("Instance".into()),
            instance_details: Some(InstanceDetails {
                instance_id: self.instance_id.map(str::to_owned),
                network_interfaces: interface.into_iter().collect(),
                ..InstanceDetails::default()
            }),
            ..Resource::default()
        }
    }

    /// How findings name the resource in titles.
    pub fn label(&self) -> String {
        match (self.instance_id, self.eni) {
            (Some(id), _) => format!("EC2 instance {id}"),
            (None, Some(eni)) => format!("the EC2 instance with network interface {eni}"),
            (None, None) => "an EC2 instance".into(),
        }
    }
}

/// What a flow or DNS analysis says about one occurrence; [`Ec2Draft::build`] turns it into the
/// engine's [`Draft`] (catalogue defaults, `featureName`, threat-list evidence, record pointer).
pub struct Ec2Draft {
    pub finding_type: FindingType,
    pub severity: Option<Severity>,
    pub title: String,
    pub description: String,
    pub action: Option<crate::findings::Action>,
    /// `TARGET` unless the instance is the actor (brute force it runs, scans, floods).
    pub actor: bool,
    pub facts: Vec<(&'static str, String)>,
    pub threat_lists: Vec<String>,
    pub rule_id: &'static str,
    pub event_time_ms: i64,
    record: LogRecordRef,
    account_id: String,
    region: String,
}

impl Ec2Draft {
    /// A draft about `event`, filed under the scope the engine gave the record.
    pub fn new(
        finding_type: FindingType,
        rule_id: &'static str,
        event: &Event<'_>,
        ctx: &LogContext<'_>,
    ) -> Self {
        Self {
            finding_type,
            severity: None,
            title: String::new(),
            description: String::new(),
            action: None,
            actor: false,
            facts: Vec::new(),
            threat_lists: Vec::new(),
            rule_id,
            event_time_ms: event.time_ms().unwrap_or_default(),
            record: LogRecordRef {
                source: event.source().name().to_owned(),
                object: event.origin.object.to_owned(),
                line: event.origin.line,
                index: event.origin.index,
            },
            account_id: ctx.scope.account_id.clone(),
            region: ctx.scope.region.clone(),
        }
    }

    /// The occurrence, or `None` when the target names no instance or interface (nothing to key
    /// the finding on; the analyses skip such records already, so this is a safety net).
    pub fn build(self, target: &Ec2Target<'_>) -> Option<Occurrence> {
        let mut d = Draft::new(
            self.finding_type,
            target.resource(),
            self.rule_id,
            self.event_time_ms,
        );
        d.facts = self.facts;
        d.severity = self.severity;
        d.title = self.title;
        d.description = self.description;
        d.action = self.action;
        d.resource_role = if self.actor {
            resource_role::ACTOR
        } else {
            resource_role::TARGET
        };
        d.threat_lists = self.threat_lists;
        d.record = Some(self.record);
        d.account_id = self.account_id;
        d.region = self.region;
        d.build()
    }
}

pub fn local_ip_details(ip: IpAddr) -> LocalIpDetails {
    match ip {
        IpAddr::V4(v4) => LocalIpDetails {
            ip_address_v4: Some(v4.to_string()),
            ip_address_v6: None,
        },
        IpAddr::V6(v6) => LocalIpDetails {
            ip_address_v4: None,
            ip_address_v6: Some(v6.to_string()),
        },
    }
}

pub fn remote_ip_details(ip: IpAddr) -> RemoteIpDetails {
    match ip {
        IpAddr::V4(v4) => RemoteIpDetails {
            ip_address_v4: Some(v4.to_string()),
            ..RemoteIpDetails::default()
        },
        IpAddr::V6(v6) => RemoteIpDetails {
            ip_address_v6: Some(v6.to_string()),
            ..RemoteIpDetails::default()
        },
    }
}

/// `portDetails` with GuardDuty's service name for well-known ports (`Unknown` otherwise).
pub fn port_details(port: u16) -> PortDetails {
    let name = match port {
        20 | 21 => "FTP",
        22 => "SSH",
        23 => "Telnet",
        25 => "SMTP",
        53 => "DNS",
        80 => "HTTP",
        110 => "POP3",
        123 => "NTP",
        143 => "IMAP",
        443 => "HTTPS",
        445 => "SMB",
        1433 => "MSSQL",
        3306 => "MYSQL",
        3389 => "RDP",
        5432 => "POSTGRESQL",
        5985 | 5986 => "WinRM",
        6379 => "REDIS",
        8080 => "HTTP-ALT",
        9200 | 9300 => "Elasticsearch",
        _ => "Unknown",
    };
    PortDetails {
        port: Some(port.into()),
        port_name: Some(name.into()),
    }
}

/// IANA protocol number as GuardDuty names it in `networkConnectionAction.protocol`.
pub fn protocol_name(protocol: u8) -> String {
    match protocol {
        1 => "ICMP".into(),
        6 => "TCP".into(),
        17 => "UDP".into(),
        58 => "ICMPV6".into(),
        n => format!("PROTO{n}"),
    }
}
