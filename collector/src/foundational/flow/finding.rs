//! Building the occurrence of an EC2 finding from a flow or DNS record: the instance resource,
//! GuardDuty's evidence (`service.action`, threat-list details) and Ward's pointer to the log record
//! (`additionalInfo.ward.eventIds` = `object:line[ record #index]`).

use std::net::IpAddr;

use crate::event::Origin;
use crate::findings::finding::{feature_name, resource_role};
use crate::findings::{
    AggregationKey, Evidence, Finding, FindingType, InstanceDetails, LocalIpDetails,
    NetworkInterface, Occurrence, PortDetails, RemoteIpDetails, Resource, Severity,
    ThreatIntelligenceDetail, WardDetails,
};

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

/// What a detector says about one occurrence; [`Ec2Draft::build`] turns it into an [`Occurrence`].
pub struct Ec2Draft {
    pub finding_type: FindingType,
    pub severity: Option<Severity>,
    pub title: String,
    pub description: String,
    pub action: Option<crate::findings::Action>,
    /// `TARGET` unless the instance is the actor (brute force it runs, scans, floods).
    pub actor: bool,
    pub facts: Vec<(&'static str, String)>,
    pub threat_list: Option<String>,
    pub rule_id: String,
    pub event_time_ms: i64,
    /// The log records behind this occurrence, newest last (`object:line[ record #index]`).
    pub records: Vec<String>,
}

impl Ec2Draft {
    pub fn new(finding_type: FindingType, rule_id: impl Into<String>, origin: &Origin<'_>) -> Self {
        Self {
            finding_type,
            severity: None,
            title: String::new(),
            description: String::new(),
            action: None,
            actor: false,
            facts: Vec::new(),
            threat_list: None,
            rule_id: rule_id.into(),
            event_time_ms: 0,
            records: vec![origin.to_string()],
        }
    }

    pub fn fact(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.facts.push((name, value.into()));
        self
    }

    /// The occurrence, or `None` when the target names no instance or interface (nothing to key
    /// the finding on; the caller skipped such records already, so this is a safety net).
    pub fn build(self, target: &Ec2Target<'_>) -> Option<Occurrence> {
        let resource = target.resource();
        let key = AggregationKey::new(
            self.finding_type,
            &resource,
            self.facts.iter().map(|(k, v)| (*k, v.as_str())),
        )
        .ok()?;
        let mut finding = Finding::draft(self.finding_type, resource);
        if let Some(severity) = self.severity {
            finding.severity = severity;
        }
        finding.title = self.title;
        finding.description = if self.description.is_empty() {
            finding.title.clone()
        } else {
            self.description
        };
        let service = &mut finding.service;
        service.action = self.action;
        service.resource_role = Some(
            if self.actor {
                resource_role::ACTOR
            } else {
                resource_role::TARGET
            }
            .to_owned(),
        );
        service.feature_name = Some(
            if self.finding_type.source() == crate::findings::DataSource::DnsLogs {
                feature_name::DNS_LOGS
            } else {
                feature_name::FLOW_LOGS
            }
            .to_owned(),
        );
        if let Some(list) = self.threat_list {
            service.set_additional_info("threatListName", list.clone().into());
            service.evidence = Some(Evidence {
                threat_intelligence_details: vec![ThreatIntelligenceDetail {
                    threat_list_name: Some(list),
                    ..ThreatIntelligenceDetail::default()
                }],
            });
        }
        service.set_ward_details(&WardDetails {
            event_ids: self.records,
            rule_id: Some(self.rule_id),
            ..WardDetails::default()
        });
        Some(Occurrence {
            key,
            event_time: self.event_time_ms,
            details: finding,
        })
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
