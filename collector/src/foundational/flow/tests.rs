//! Each flow analysis with a positive and a negative case. Records are real flow-log lines from the
//! corpus (`../shared/corpus/`: the Panther compromised-credentials scenario, the AWS VPC guide
//! examples) repeated with the fields an attack changes (source port, time), or generated in the
//! same format where the corpus has no example; they go through the real line parser.

use std::sync::Arc;

use super::*;
use crate::event::flow::FlowFormat;
use crate::event::{Event, Origin, Record};
use crate::findings::{Finding, FindingType, Scope};
use crate::foundational::{LogContext, LogDetector, Settings};
use crate::intel::classify::ThreatCategory;
use crate::intel::{IntelIndex, IntelList, ListFormat, ListKind, ListRole};
use crate::logs::vpcflow::parse_line;

/// The Panther scenario's inbound SSH record (`attacker_vpc.yml`): attacker 92.55.146.245 to the
/// instance's port 22.
const CORPUS_SSH_IN: &str = "2 493859302102 eni-0b13344793d4fde67 92.55.146.245 172.31.77.31 48316 22 6 19 7119 1604266544 1604266560 ACCEPT OK";
/// The AWS guide's v5 ingress record (an S3 download with tcp-flags and flow-direction).
const CORPUS_V5_INGRESS: &str = "5 52.95.128.179 10.0.0.71 80 34210 6 1616729292 1616729349 IPv4 14 15044 123456789012 vpc-abcdefab012345678 subnet-aaaaaaaa012345678 i-0c50d5961bcb2d47b eni-1235b8ca123456789 ap-southeast-2 apse2-az3 - - ACCEPT 19 52.95.128.179 10.0.0.71 S3 - - ingress OK";
const V5_FORMAT: &str = "version srcaddr dstaddr srcport dstport protocol start end type packets bytes account-id vpc-id subnet-id instance-id interface-id region az-id sublocation-type sublocation-id action tcp-flags pkt-srcaddr pkt-dstaddr pkt-src-aws-service pkt-dst-aws-service traffic-path flow-direction log-status";

/// Replaces whitespace-separated field `i` (0-based) of a v2 line.
fn with_field(line: &str, i: usize, value: impl ToString) -> String {
    let mut f: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
    f[i] = value.to_string();
    f.join(" ")
}

/// A v2 default-format line.
#[allow(clippy::too_many_arguments)]
fn v2(
    eni: &str,
    src: &str,
    dst: &str,
    sport: u16,
    dport: u16,
    proto: u8,
    packets: u64,
    bytes: u64,
    start: u64,
    action: &str,
) -> String {
    format!(
        "2 123456789012 {eni} {src} {dst} {sport} {dport} {proto} {packets} {bytes} {start} {} {action} OK",
        start + 30
    )
}

struct Run {
    detector: FlowDetector,
    intel: IntelIndex,
    scope: Scope,
    settings: Settings,
}

impl Run {
    fn new(settings: Settings) -> Self {
        Self::with(settings, IntelIndex::default())
    }

    fn with(settings: Settings, intel: IntelIndex) -> Self {
        Self {
            detector: FlowDetector::new(FlowConfig::default()),
            intel,
            scope: Scope::new("123456789012", "us-east-1", "ward"),
            settings,
        }
    }

    fn feed_format(&mut self, format: &FlowFormat, lines: &[String]) -> Vec<Finding> {
        let ctx = LogContext {
            intel: &self.intel,
            scope: &self.scope,
            settings: &self.settings,
        };
        let mut out = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            let rec = parse_line(line, format).unwrap_or_else(|e| panic!("{line}: {e}"));
            let event = Event::new(
                Origin {
                    object: "flow.log",
                    line: i as u64 + 1,
                    index: None,
                },
                Record::Flow(&rec),
            );
            self.detector.on_event(&event, &ctx, &mut out);
        }
        out.into_iter().map(|o| o.details).collect()
    }

    fn feed(&mut self, lines: &[String]) -> Vec<Finding> {
        self.feed_format(&FlowFormat::v2_default(), lines)
    }
}

fn types(findings: &[Finding]) -> Vec<&str> {
    findings
        .iter()
        .map(|f| f.finding_type_name.as_str())
        .collect()
}

fn only(findings: &[Finding], t: FindingType) -> &Finding {
    assert_eq!(types(findings), [t.name()], "{findings:#?}");
    &findings[0]
}

fn connection(f: &Finding) -> &crate::findings::NetworkConnectionAction {
    f.service
        .action
        .as_ref()
        .and_then(|a| a.network_connection_action.as_ref())
        .expect("networkConnectionAction")
}

/// `n` SSH connection attempts from the corpus attacker, one per source port, `gap` seconds apart.
fn ssh_attempts(n: u16, gap: u64) -> Vec<String> {
    (0..n)
        .map(|i| {
            let line = with_field(CORPUS_SSH_IN, 5, 48316 + i);
            let line = with_field(&line, 8, 3); // three packets: a failed login
            with_field(&line, 10, 1_604_266_200 + u64::from(i) * gap)
        })
        .collect()
}

#[test]
fn ssh_brute_force_against_the_instance_is_low_target() {
    let findings = Run::new(Settings::default()).feed(&ssh_attempts(25, 5));
    let f = only(&findings, FindingType::UnauthorizedAccessEc2SshBruteForce);
    assert_eq!(f.service.resource_role.as_deref(), Some("TARGET"));
    assert_eq!(f.severity.level(), crate::findings::SeverityLevel::Low);
    let c = connection(f);
    assert_eq!(c.connection_direction.as_deref(), Some("INBOUND"));
    assert_eq!(
        c.remote_ip_details
            .as_ref()
            .unwrap()
            .ip_address_v4
            .as_deref(),
        Some("92.55.146.245")
    );
    let local = c.local_port_details.as_ref().unwrap();
    assert_eq!(
        (local.port, local.port_name.as_deref()),
        (Some(22), Some("SSH"))
    );
    assert_eq!(c.protocol.as_deref(), Some("TCP"));
    assert_eq!(c.blocked, Some(false));
    let instance = f.resource.instance_details.as_ref().unwrap();
    assert_eq!(instance.instance_id, None, "v2 lines name no instance");
    assert_eq!(
        instance.network_interfaces[0]
            .network_interface_id
            .as_deref(),
        Some("eni-0b13344793d4fde67")
    );
    let record = f.service.ward_details().unwrap().log_record.unwrap();
    assert_eq!(
        (record.source.as_str(), record.object.as_str(), record.line),
        ("vpc-flow", "flow.log", 20),
        "the record that crossed 20"
    );
    assert_eq!(f.account_id, "123456789012");
    assert_eq!(f.service.feature_name.as_deref(), Some("FlowLogs"));
}

#[test]
fn a_real_ssh_session_or_a_slow_trickle_is_not_brute_force() {
    let mut run = Run::new(Settings::default());
    // The corpus record itself and its response: one session.
    let session = [
        CORPUS_SSH_IN.to_owned(),
        "2 493859302102 eni-0b13344793d4fde67 172.31.77.31 92.55.146.245 22 48316 6 19 7119 1604266545 1604266560 ACCEPT OK".to_owned(),
    ];
    assert!(run.feed(&session).is_empty());
    // 19 attempts in a window: under the threshold.
    assert!(
        Run::new(Settings::default())
            .feed(&ssh_attempts(19, 5))
            .is_empty()
    );
    // 40 attempts, one every 2 minutes: never 20 in one 10-minute window.
    assert!(
        Run::new(Settings::default())
            .feed(&ssh_attempts(40, 120))
            .is_empty()
    );
}

#[test]
fn the_instance_brute_forcing_others_is_high_actor_and_a_separate_finding() {
    let mut lines: Vec<String> = (0..20)
        .map(|i| {
            v2(
                "eni-0b13344793d4fde67",
                "172.31.77.31",
                "203.0.113.50",
                40000 + i,
                3389,
                6,
                3,
                180,
                1_604_266_200 + u64::from(i),
                "ACCEPT",
            )
        })
        .collect();
    lines.extend(ssh_attempts(20, 1));
    let findings = Run::new(Settings::default()).feed(&lines);
    assert_eq!(
        types(&findings),
        [
            FindingType::UnauthorizedAccessEc2RdpBruteForce.name(),
            FindingType::UnauthorizedAccessEc2SshBruteForce.name()
        ]
    );
    let rdp = &findings[0];
    assert_eq!(rdp.service.resource_role.as_deref(), Some("ACTOR"));
    assert_eq!(rdp.severity.level(), crate::findings::SeverityLevel::High);
    assert_eq!(
        connection(rdp).connection_direction.as_deref(),
        Some("OUTBOUND")
    );
    assert_eq!(findings[1].service.resource_role.as_deref(), Some("TARGET"));
}

#[test]
fn outbound_port_scan() {
    let scan: Vec<String> = (1..=30)
        .map(|port| {
            v2(
                "eni-0b13344793d4fde67",
                "172.31.77.31",
                "172.31.77.1",
                50000,
                port,
                6,
                1,
                44,
                1_604_266_590,
                "REJECT",
            )
        })
        .collect();
    // Internal only: the interface's address is learned from the corpus SSH record first.
    let mut lines = vec![CORPUS_SSH_IN.to_owned()];
    lines.extend(scan.iter().cloned());
    let findings = Run::new(Settings::default()).feed(&lines);
    let f = only(&findings, FindingType::ReconEc2Portscan);
    assert_eq!(f.service.resource_role.as_deref(), Some("ACTOR"));
    assert_eq!(
        connection(f)
            .remote_ip_details
            .as_ref()
            .unwrap()
            .ip_address_v4
            .as_deref(),
        Some("172.31.77.1")
    );
    assert_eq!(connection(f).blocked, Some(true));
    // Without the learned address the internal records are not attributed.
    assert!(Run::new(Settings::default()).feed(&scan).is_empty());
    // Many full connections to a service's ports (data, not probes) are not a scan.
    let busy: Vec<String> = (1..=30)
        .map(|port| with_field(&with_field(&scan[port - 1], 8, 40), 9, 40_000))
        .collect();
    let mut lines = vec![CORPUS_SSH_IN.to_owned()];
    lines.extend(busy);
    assert!(Run::new(Settings::default()).feed(&lines).is_empty());
}

fn probes(port: u16, remotes: usize) -> Vec<String> {
    (0..remotes)
        .map(|i| {
            v2(
                "eni-0aa",
                &format!("198.51.100.{}", 10 + i),
                "10.0.0.8",
                40000 + i as u16,
                port,
                6,
                2,
                88,
                1_700_000_000 + i as u64 * 60,
                "ACCEPT",
            )
        })
        .collect()
}

#[test]
fn unprotected_port_probes_and_the_emr_and_elasticsearch_variants() {
    let f = Run::new(Settings::default()).feed(&probes(5432, 5));
    let f = only(&f, FindingType::ReconEc2PortProbeUnprotectedPort);
    assert_eq!(f.severity.level(), crate::findings::SeverityLevel::Low);
    let action = f.service.action.as_ref().unwrap();
    assert_eq!(action.action_type.as_deref(), Some("PORT_PROBE"));
    let probe = action.port_probe_action.as_ref().unwrap();
    assert_eq!(probe.port_probe_details.len(), 5);
    assert_eq!(
        probe.port_probe_details[4]
            .remote_ip_details
            .as_ref()
            .unwrap()
            .ip_address_v4
            .as_deref(),
        Some("198.51.100.14")
    );

    let f = Run::new(Settings::default()).feed(&probes(9200, 5));
    let f = only(&f, FindingType::ReconEc2PortProbeUnprotectedPort);
    assert_eq!(f.severity.level(), crate::findings::SeverityLevel::High);

    let f = Run::new(Settings::default()).feed(&probes(8088, 6));
    only(&f, FindingType::ReconEc2PortProbeEmrUnprotectedPort);

    // Four prober addresses, rejected probes, or a port whose probes go to different ports:
    // nothing.
    assert!(
        Run::new(Settings::default())
            .feed(&probes(5432, 4))
            .is_empty()
    );
    let rejected: Vec<String> = probes(5432, 8)
        .iter()
        .map(|l| l.replace("ACCEPT", "REJECT"))
        .collect();
    assert!(Run::new(Settings::default()).feed(&rejected).is_empty());
}

#[test]
fn denial_of_service_variants() {
    let flood = |dport: u16, proto: u8, packets: u64, bytes: u64| -> Vec<String> {
        (0..4)
            .map(|i| {
                v2(
                    "eni-0bb",
                    "10.0.0.9",
                    "198.51.100.99",
                    50000 + i,
                    dport,
                    proto,
                    packets,
                    bytes,
                    1_700_000_000 + u64::from(i) * 10,
                    "ACCEPT",
                )
            })
            .collect()
    };
    let cases = [
        (80, 17, FindingType::BackdoorEc2DenialOfServiceUdp),
        (53, 17, FindingType::BackdoorEc2DenialOfServiceDns),
        (22, 17, FindingType::BackdoorEc2DenialOfServiceUdpOnTcpPorts),
        (80, 6, FindingType::BackdoorEc2DenialOfServiceTcp),
    ];
    for (port, proto, t) in cases {
        let f = Run::new(Settings::default()).feed(&flood(port, proto, 30_000, 30_000 * 60));
        let f = only(&f, t);
        assert_eq!(f.service.resource_role.as_deref(), Some("ACTOR"));
    }
    let igmp: Vec<String> = (0..4)
        .map(|i| {
            v2(
                "eni-0bb",
                "10.0.0.9",
                "198.51.100.99",
                0,
                0,
                2,
                30_000,
                1_000_000,
                1_700_000_000 + i * 10,
                "ACCEPT",
            )
        })
        .collect();
    only(
        &Run::new(Settings::default()).feed(&igmp),
        FindingType::BackdoorEc2DenialOfServiceUnusualProtocol,
    );
    // A large upload (big packets), or a flood under the threshold: nothing.
    assert!(
        Run::new(Settings::default())
            .feed(&flood(443, 6, 30_000, 30_000 * 1400))
            .is_empty()
    );
    assert!(
        Run::new(Settings::default())
            .feed(&flood(80, 17, 20_000, 20_000 * 60))
            .is_empty()
    );
}

#[test]
fn a_peer_known_to_be_unlisted_is_checked_again_when_the_lists_change() {
    let c2 = |text: &str| {
        Arc::new(IntelList::parse(
            "c2",
            ListRole::Threat,
            ListKind::IpList,
            ListFormat::Txt,
            text,
        ))
    };
    let settings = Settings {
        threat_categories: [("c2".to_owned(), ThreatCategory::CommandAndControl)].into(),
        ..Settings::default()
    };
    let mut run = Run::with(settings, IntelIndex::new([c2("192.0.2.1\n")]));
    // Uploads to one peer: each record looks its peer up (volume), and the first finds its
    // address on no list.
    let upload = |start: u64| {
        v2(
            "eni-0ee",
            "10.0.0.4",
            "92.55.146.245",
            50000,
            443,
            6,
            10,
            9000,
            start,
            "ACCEPT",
        )
    };
    let t0 = 1_700_000_000;
    assert!(run.feed(&[upload(t0), upload(t0 + 60)]).is_empty());
    // Same lists: still nothing.
    assert!(run.feed(&[upload(t0 + 120)]).is_empty());
    // The list is reloaded with the peer on it: its next record is checked and raises.
    run.intel.replace(c2("192.0.2.1\n92.55.146.245\n"));
    let f = run.feed(&[upload(t0 + 180)]);
    let f = only(&f, FindingType::BackdoorEc2CncActivityB);
    assert_eq!(f.service.threat_list_name().as_deref(), Some("c2"));
    // And the peer is not taken for unlisted once it is listed: the next window raises again.
    let f = run.feed(&[upload(t0 + 900)]);
    only(&f, FindingType::BackdoorEc2CncActivityB);
}

#[test]
fn threat_lists_by_category_and_tor() {
    let lists = IntelIndex::new([
        Arc::new(IntelList::parse(
            "c2",
            ListRole::Threat,
            ListKind::IpList,
            ListFormat::Txt,
            "92.55.146.245\n",
        )),
        Arc::new(IntelList::parse(
            "tor-nodes",
            ListRole::Threat,
            ListKind::IpList,
            ListFormat::Txt,
            "198.51.100.20\n",
        )),
        Arc::new(IntelList::parse(
            "corp",
            ListRole::Threat,
            ListKind::IpList,
            ListFormat::Txt,
            "203.0.113.66\n",
        )),
    ]);
    let settings = Settings {
        threat_categories: [
            ("c2".to_owned(), ThreatCategory::CommandAndControl),
            ("tor-nodes".to_owned(), ThreatCategory::TorNode),
        ]
        .into(),
        ..Settings::default()
    };
    let mut run = Run::with(settings, lists);
    // The corpus's exfiltration records to the attacker: one finding per window, not per record.
    let exfil = [
        "2 493859302102 eni-0b13344793d4fde67 172.31.77.31 92.55.146.245 38316 22 6 19 1048576 1604271600 1604271660 ACCEPT OK".to_owned(),
        "2 493859302102 eni-0b13344793d4fde67 172.31.77.31 92.55.146.245 38316 22 6 19 1048576 1604271660 1604271690 ACCEPT OK".to_owned(),
    ];
    let f = run.feed(&exfil);
    let f = only(&f, FindingType::BackdoorEc2CncActivityB);
    assert_eq!(f.service.threat_list_name().as_deref(), Some("c2"));
    assert_eq!(
        connection(f).connection_direction.as_deref(),
        Some("OUTBOUND")
    );

    let tor_out = v2(
        "eni-0cc",
        "10.0.0.4",
        "198.51.100.20",
        50000,
        9001,
        6,
        10,
        900,
        1_700_000_000,
        "ACCEPT",
    );
    let tor_in = v2(
        "eni-0dd",
        "198.51.100.20",
        "10.0.0.5",
        50000,
        9001,
        6,
        10,
        900,
        1_700_000_000,
        "ACCEPT",
    );
    let custom = v2(
        "eni-0ee",
        "10.0.0.6",
        "203.0.113.66",
        50000,
        8009,
        6,
        3,
        200,
        1_700_000_000,
        "REJECT",
    );
    let f = run.feed(&[tor_out, tor_in, custom]);
    assert_eq!(
        types(&f),
        [
            FindingType::UnauthorizedAccessEc2TorClient.name(),
            FindingType::UnauthorizedAccessEc2TorRelay.name(),
            FindingType::UnauthorizedAccessEc2MaliciousIpCallerCustom.name()
        ]
    );
    assert_eq!(connection(&f[2]).blocked, Some(true));
    assert_eq!(f[2].service.threat_list_name().as_deref(), Some("corp"));
    // Unlisted addresses (the corpus S3 download) raise nothing.
    let s3 = "2 493859302102 eni-0b13344793d4fde67 52.216.229.53 172.31.77.31 58316 443 6 19 3048576 1604271590 1604271595 ACCEPT OK".to_owned();
    assert!(run.feed(&[s3]).is_empty());
}

fn learning_config() -> Settings {
    Settings {
        learning_period_ms: 3_600_000,
        ..Settings::default()
    }
}

/// The AWS guide's v5 ingress record at `start`, with the given remote port.
fn v5_download(start: u64, remote_port: u16) -> String {
    let line =
        CORPUS_V5_INGRESS.replace("1616729292 1616729349", &format!("{start} {}", start + 57));
    line.replacen(" 80 34210 ", &format!(" {remote_port} 34210 "), 1)
}

#[test]
fn unusual_ports_after_the_learning_period_with_persisted_baselines() {
    let v5 = FlowFormat::parse(V5_FORMAT).unwrap();
    let t0 = 1_616_729_292;
    let mut run = Run::new(learning_config());
    // Learning: port 80 is the instance's normal remote port.
    assert!(run.feed_format(&v5, &[v5_download(t0, 80)]).is_empty());
    // After learning: 80 again is fine, 4444 is new.
    let f = run.feed_format(
        &v5,
        &[v5_download(t0 + 7200, 80), v5_download(t0 + 7260, 4444)],
    );
    let f = only(&f, FindingType::BehaviorEc2NetworkPortUnusual);
    assert_eq!(
        f.resource
            .instance_details
            .as_ref()
            .unwrap()
            .instance_id
            .as_deref(),
        Some("i-0c50d5961bcb2d47b"),
        "v5 lines name the instance"
    );
    assert_eq!(
        connection(f).connection_direction.as_deref(),
        Some("OUTBOUND")
    );
    assert_eq!(
        connection(f).remote_port_details.as_ref().unwrap().port,
        Some(4444)
    );
    // Once reported, the port is part of the baseline.
    assert!(
        run.feed_format(&v5, &[v5_download(t0 + 7300, 4444)])
            .is_empty()
    );

    // A restart keeps the baseline: a fresh detector restored from the saved state knows 80 and
    // 4444 and is past its learning period.
    let state = run.detector.save_state().unwrap();
    let mut restarted = Run::new(learning_config());
    restarted.detector.restore_state(state).unwrap();
    let f = restarted.feed_format(
        &v5,
        &[
            v5_download(t0 + 9000, 80),
            v5_download(t0 + 9000, 4444),
            v5_download(t0 + 9060, 6667),
        ],
    );
    assert_eq!(
        types(&f),
        [FindingType::BehaviorEc2NetworkPortUnusual.name()]
    );
    // Without the state, the restarted detector would be learning again: nothing.
    assert!(
        Run::new(learning_config())
            .feed_format(&v5, &[v5_download(t0 + 9060, 6667)])
            .is_empty()
    );
    assert!(
        restarted
            .detector
            .restore_state(serde_json::json!({"version": 9, "instances": {}}))
            .unwrap_err()
            .contains("version 9")
    );
}

#[test]
fn unusual_traffic_volume_to_one_host() {
    let upload = |start: u64, bytes: u64| {
        v2(
            "eni-0ff",
            "10.0.0.7",
            "198.51.100.77",
            50000,
            443,
            6,
            bytes / 1400,
            bytes,
            start,
            "ACCEPT",
        )
    };
    let t0 = 1_700_000_000 - 1_700_000_000 % 3600;
    let mut run = Run::new(learning_config());
    // Learning hour: 20 MB to the host.
    assert!(run.feed(&[upload(t0, 20 << 20)]).is_empty());
    // Two hours later: 150 MB (under 10 × 20 MB), then 250 MB in the next hour (over it).
    assert!(run.feed(&[upload(t0 + 7200, 150 << 20)]).is_empty());
    let f = run.feed(&[
        upload(t0 + 10_800, 150 << 20),
        upload(t0 + 10_900, 100 << 20),
    ]);
    let f = only(&f, FindingType::BehaviorEc2TrafficVolumeUnusual);
    assert!(
        f.description.contains("262144000 bytes"),
        "{}",
        f.description
    );
}

#[test]
fn through_the_engine_with_every_builtin_detector() {
    use crate::foundational::builtin;
    use crate::foundational::engine::{EngineOptions, FoundationalEngine};
    use crate::suppression::RuleSet;

    let settings = learning_config();
    let engine = || {
        FoundationalEngine::new(
            EngineOptions::default(),
            settings.clone(),
            builtin(),
            IntelIndex::default(),
            RuleSet::default(),
        )
    };
    let run = |engine: &mut FoundationalEngine, lines: &[String]| -> Vec<Finding> {
        let format = FlowFormat::v2_default();
        let mut found = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            let rec = parse_line(line, &format).unwrap();
            let event = Event::new(
                Origin {
                    object: "s3://logs/flow.log.gz",
                    line: i as u64 + 2,
                    index: None,
                },
                Record::Flow(&rec),
            );
            found.extend(engine.process(&event).into_iter().map(|e| e.finding));
        }
        found.extend(engine.finish().into_iter().map(|e| e.finding));
        found
    };

    // Brute force and, from the same interface an hour later, a never-seen port.
    let mut e = engine();
    let mut lines = ssh_attempts(25, 5);
    let first = run(&mut e, &lines);
    let f = only(&first, FindingType::UnauthorizedAccessEc2SshBruteForce);
    assert_eq!(
        f.account_id, "493859302102",
        "filed under the record's account"
    );
    assert_eq!(f.service.count, 1);
    let record = f.service.ward_details().unwrap().log_record.unwrap();
    assert_eq!(
        (record.object.as_str(), record.line),
        ("s3://logs/flow.log.gz", 21)
    );

    // The engine's saved state carries the flow baselines: a new engine restored from it is past
    // the learning period for this interface and reports a new port at once.
    let state = e.save_state();
    let mut restored = engine();
    restored.restore_state(state).unwrap();
    lines = vec![v2(
        "eni-0b13344793d4fde67",
        "172.31.77.31",
        "198.51.100.9",
        51000,
        6667,
        6,
        10,
        900,
        1_604_266_200 + 7200,
        "ACCEPT",
    )];
    let f = run(&mut restored, &lines);
    assert_eq!(
        types(&f),
        [FindingType::BehaviorEc2NetworkPortUnusual.name()]
    );
    let mut fresh = engine();
    assert!(
        run(&mut fresh, &lines).is_empty(),
        "a fresh engine is learning"
    );
}

/// The types raised, without `NetworkPortUnusual` (which a new port also raises).
fn without_port_unusual(findings: &[Finding]) -> Vec<&str> {
    types(findings)
        .into_iter()
        .filter(|t| *t != FindingType::BehaviorEc2NetworkPortUnusual.name())
        .collect()
}

/// An outbound TCP connection from the instance 10.0.0.8 (interface `eni-0aa`) to `remote:port`.
fn outbound(remote: &str, sport: u16, port: u16, packets: u64, start: u64) -> String {
    v2(
        "eni-0aa",
        "10.0.0.8",
        remote,
        sport,
        port,
        6,
        packets,
        packets * 80,
        start,
        "ACCEPT",
    )
}

const T0: u64 = 1_700_000_000;

#[test]
fn spambot_needs_mail_to_several_servers_without_mail_history() {
    // Learning (first hour): ordinary HTTPS. Then mail to three servers within the hour.
    let mail = |n: usize, start: u64| -> Vec<String> {
        (0..n)
            .map(|i| {
                outbound(
                    &format!("203.0.113.{}", 20 + i),
                    41000 + i as u16,
                    25,
                    12,
                    start + i as u64 * 60,
                )
            })
            .collect()
    };
    let mut lines = vec![outbound("198.51.100.80", 40000, 443, 20, T0)];
    lines.extend(mail(4, T0 + 7200));
    let found = Run::new(learning_config()).feed(&lines);
    assert_eq!(
        without_port_unusual(&found),
        [FindingType::BackdoorEc2Spambot.name()],
        "one finding, at the third server"
    );
    let f = found
        .iter()
        .find(|f| f.finding_type_name == FindingType::BackdoorEc2Spambot.name())
        .unwrap();
    assert_eq!(f.service.resource_role.as_deref(), Some("ACTOR"));
    assert_eq!(
        connection(f).remote_port_details.as_ref().unwrap().port,
        Some(25)
    );
    assert_eq!(
        connection(f)
            .remote_ip_details
            .as_ref()
            .unwrap()
            .ip_address_v4
            .as_deref(),
        Some("203.0.113.22")
    );

    // Two servers are not enough.
    let mut lines = vec![outbound("198.51.100.80", 40000, 443, 20, T0)];
    lines.extend(mail(2, T0 + 7200));
    assert!(without_port_unusual(&Run::new(learning_config()).feed(&lines)).is_empty());

    // An instance that sent mail while learning is a mail sender, not a spambot; the fact that
    // it does survives a restart.
    let mut run = Run::new(learning_config());
    assert!(
        run.feed(&[outbound("203.0.113.99", 40000, 25, 12, T0)])
            .is_empty()
    );
    let mut restarted = Run::new(learning_config());
    restarted
        .detector
        .restore_state(run.detector.save_state().unwrap())
        .unwrap();
    assert!(restarted.feed(&mail(10, T0 + 7200)).is_empty());
}

#[test]
fn port_sweep_of_one_port_across_many_public_hosts() {
    let sweep = |hosts: usize, port: u16, packets: u64| -> Vec<String> {
        (0..hosts)
            .map(|i| {
                outbound(
                    &format!("198.51.{}.{}", 100 + i / 200, 1 + i % 200),
                    50000 + i as u16,
                    port,
                    packets,
                    T0 + i as u64,
                )
            })
            .collect()
    };
    let found = Run::new(Settings::default()).feed(&sweep(40, 3389, 1));
    let f = only(&found, FindingType::ImpactEc2PortSweep);
    assert_eq!(f.service.resource_role.as_deref(), Some("ACTOR"));
    assert_eq!(f.severity.level(), crate::findings::SeverityLevel::High);
    assert_eq!(
        connection(f).remote_port_details.as_ref().unwrap().port,
        Some(3389)
    );
    assert!(f.description.contains("25 distinct public addresses"));
    // Below the threshold, or real connections (a crawler fetching pages from many sites).
    assert!(
        Run::new(Settings::default())
            .feed(&sweep(24, 3389, 1))
            .is_empty()
    );
    assert!(
        Run::new(Settings::default())
            .feed(&sweep(40, 443, 30))
            .is_empty()
    );
}

#[test]
fn public_resolvers_the_instance_has_not_used_recently() {
    use super::resolvers::DnsKind;
    let udp = |remote: &str, port: u16, start: u64| {
        v2(
            "eni-0aa", "10.0.0.8", remote, 45000, port, 17, 1, 70, start, "ACCEPT",
        )
    };
    let mut run = Run::new(learning_config());
    // Learning: the instance uses Google's resolver and browses the web.
    assert!(
        run.feed(&[
            udp("8.8.8.8", 53, T0),
            outbound("198.51.100.80", 40000, 443, 20, T0 + 10),
            outbound("198.51.100.81", 40001, 853, 20, T0 + 20),
        ])
        .is_empty()
    );
    let later = T0 + 7200;
    let found = run.feed(&[
        // Known resolver, ordinary web server: nothing.
        udp("8.8.8.8", 53, later),
        outbound("198.51.100.90", 40002, 443, 20, later),
        // New resolver, DoT server, DoH endpoint.
        udp("1.1.1.1", 53, later + 1),
        outbound("9.9.9.9", 40003, 853, 20, later + 2),
        outbound("1.0.0.1", 40004, 443, 20, later + 3),
        // Each once.
        udp("1.1.1.1", 53, later + 4),
    ]);
    assert_eq!(
        without_port_unusual(&found),
        [
            DnsKind::Dns.finding_type().name(),
            DnsKind::Dot.finding_type().name(),
            DnsKind::Doh.finding_type().name(),
        ]
    );
    let f = &found[0];
    assert_eq!(
        connection(f)
            .remote_ip_details
            .as_ref()
            .unwrap()
            .ip_address_v4
            .as_deref(),
        Some("1.1.1.1")
    );
    // The baseline survives a restart; a resolver unused for more than 30 days is unusual again.
    let mut restarted = Run::new(learning_config());
    restarted
        .detector
        .restore_state(run.detector.save_state().unwrap())
        .unwrap();
    assert!(
        restarted
            .feed(&[udp("1.1.1.1", 53, later + 86_400)])
            .is_empty()
    );
    let month = later + 86_400 + 31 * 86_400;
    assert_eq!(
        without_port_unusual(&restarted.feed(&[udp("1.1.1.1", 53, month)])),
        [DnsKind::Dns.finding_type().name()]
    );
    // While learning nothing is raised.
    assert!(
        Run::new(learning_config())
            .feed(&[
                udp("1.1.1.1", 53, T0),
                outbound("9.9.9.9", 40003, 853, 20, T0)
            ])
            .is_empty()
    );
}

/// The ports saved in the baselines of each state key.
fn saved_ports(run: &Run) -> Vec<(String, Vec<u64>)> {
    let state = run.detector.save_state().unwrap();
    state["instances"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(key, b)| {
            let ports = b["ports"].as_array().unwrap();
            (
                key.clone(),
                ports.iter().map(|p| p.as_u64().unwrap() & 0xffff).collect(),
            )
        })
        .collect()
}

#[test]
fn state_follows_the_instance_when_an_interface_moves() {
    let v5 = FlowFormat::parse(V5_FORMAT).unwrap();
    let t0 = 1_616_729_292;
    let on = |instance: &str, start: u64, port: u16| {
        v5_download(start, port).replace("i-0c50d5961bcb2d47b", instance)
    };
    let eni = "eni-1235b8ca123456789";
    let mut run = Run::new(learning_config());
    // While learning, the interface is on instance A (port 80), then B (443), then A again; a v2
    // record names the interface alone (port 8080): its state is kept under the interface.
    let learning = [
        on("i-aaaa", t0, 80),
        on("i-bbbb", t0 + 60, 443),
        on("i-aaaa", t0 + 120, 80),
    ];
    assert!(run.feed_format(&v5, &learning).is_empty());
    let own = v2(
        eni,
        "10.0.0.71",
        "52.95.128.179",
        34210,
        8080,
        6,
        10,
        1000,
        t0 + 180,
        "ACCEPT",
    );
    assert!(run.feed(&[own]).is_empty());
    assert_eq!(
        saved_ports(&run),
        [
            (eni.to_owned(), vec![8080]),
            ("i-aaaa".to_owned(), vec![80]),
            ("i-bbbb".to_owned(), vec![443])
        ]
    );
    // After learning, each instance judges by its own baseline.
    let f = run.feed_format(
        &v5,
        &[
            on("i-aaaa", t0 + 7200, 80),
            on("i-aaaa", t0 + 7210, 443),
            on("i-bbbb", t0 + 7260, 443),
            on("i-bbbb", t0 + 7270, 80),
        ],
    );
    let unusual: Vec<_> = f
        .iter()
        .map(|f| {
            let instance = f.resource.instance_details.as_ref().unwrap();
            (
                instance.instance_id.clone().unwrap(),
                connection(f).remote_port_details.as_ref().unwrap().port,
            )
        })
        .collect();
    assert_eq!(
        unusual,
        [("i-aaaa".into(), Some(443)), ("i-bbbb".into(), Some(80))]
    );

    // Restoring replaces the state kept under a key in place: the interface's cached place for
    // instance A now holds the restored baseline (6667 known, learning long over).
    let mut state = run.detector.save_state().unwrap();
    state["instances"]["i-aaaa"]["ports"] = serde_json::json!([1 << 24 | 6 << 16 | 6667]);
    run.detector.restore_state(state).unwrap();
    let f = run.feed_format(
        &v5,
        &[on("i-aaaa", t0 + 7400, 6667), on("i-aaaa", t0 + 7410, 80)],
    );
    assert_eq!(
        f.iter()
            .map(|f| connection(f).remote_port_details.as_ref().unwrap().port)
            .collect::<Vec<_>>(),
        [Some(80)]
    );
}

/// Uploads from one instance to `n` public addresses (numbered from `first`) at `start`.
fn uploads(first: u32, n: u32, start: u64) -> Vec<String> {
    (first..first + n)
        .map(|i| {
            let remote = std::net::Ipv4Addr::from(0x3400_0000 | i).to_string();
            v2(
                "eni-a", "10.0.0.5", &remote, 50000, 443, 6, 10, 5000, start, "ACCEPT",
            )
        })
        .collect()
}

#[test]
fn peers_of_ended_windows_are_dropped_when_their_map_needs_room() {
    let mut run = Run::new(Settings::default());
    let t0 = 1_700_000_000 / 3600 * 3600;
    run.feed(&uploads(0, 2_000, t0));
    let (kept, room) = run.detector.peers_kept();
    assert_eq!(kept, 2_000);
    // Two hours on, a sweep: the old peers' windows and hour ended; they are dropped only when
    // the map is full again, and then it does not grow.
    run.detector.sweep(t0 + 2 * 3600);
    assert_eq!(
        run.detector.peers_kept().0,
        2_000,
        "not dropped by the sweep"
    );
    run.feed(&uploads(10_000, 2_000, t0 + 2 * 3600));
    let (kept_after, room_after) = run.detector.peers_kept();
    assert_eq!(kept_after, 2_000, "only the new peers are kept");
    // (Room left by removed entries is not counted until the map is next rehashed.)
    assert!(
        room_after <= room,
        "the map did not grow: {room_after} > {room}"
    );
    // Without a sweep that ended their windows, peers are kept and the map grows.
    run.feed(&uploads(20_000, 2_000, t0 + 2 * 3600 + 60));
    let (kept_now, room_now) = run.detector.peers_kept();
    assert_eq!(kept_now, kept_after + 2_000);
    assert!(room_now > room);
}

#[test]
fn a_peer_kept_past_its_window_starts_over_in_the_next() {
    // 15 attempts, then (after the window ended and a sweep) 15 more: no brute force, whether or
    // not the peer's state was dropped in between.
    let mut run = Run::new(Settings::default());
    let first = ssh_attempts(15, 5);
    assert!(run.feed(&first).is_empty());
    run.detector.sweep(1_604_266_200 + 3 * 3600);
    let later: Vec<String> = ssh_attempts(15, 5)
        .iter()
        .map(|l| {
            let t: u64 = l.split(' ').nth(10).unwrap().parse().unwrap();
            with_field(l, 10, t + 3 * 3600)
        })
        .collect();
    assert!(run.feed(&later).is_empty(), "the counts started over");
    let more: Vec<String> = later
        .iter()
        .take(5)
        .map(|l| with_field(l, 5, 60000))
        .collect();
    let found = run.feed(&more);
    assert_eq!(types(&found), ["UnauthorizedAccess:EC2/SSHBruteForce"]);
}
