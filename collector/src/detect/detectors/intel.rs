//! Threat intelligence on DNS names and connection addresses, attributed to the process:
//! * `dns_query` names: GuardDuty's test domains (spec §5.5) raise their Runtime types; Ward's
//!   mining-pool list raises CryptoCurrency:Runtime/BitcoinTool.B!DNS; operator threat lists raise
//!   the type of their category ([`ThreatCategory`]), `.Custom` by default.
//! * `dns_response` answers: a name resolving to the instance metadata address raises
//!   UnauthorizedAccess:Runtime/MetadataDNSRebind.
//! * `net_connect` remote IPv4 addresses: operator threat lists, by category.
//! * `process_exec` executables: their SHA-256 on an operator list raises
//!   Execution:Runtime/MaliciousFileExecuted (`malware` category or any other named one) or its
//!   `.Custom` variant (plain lists), with `context.threatFilePath` and evidence `threatFileSha256`.
//!
//! Trusted lists win over everything (GuardDuty's rule), test domains included.

use std::net::{IpAddr, Ipv4Addr};

use super::{DetectContext, Detector};
use crate::detect::event::{EventType, RuntimeEvent};
use crate::detect::signal::Signal;
use crate::findings::{
    Action, AffectedResource, DnsRequestAction, FindingType, LocalIpDetails,
    NetworkConnectionAction, PortDetails, RemoteIpDetails, RuntimeContext,
};
use crate::intel::Verdict;
use crate::intel::classify::{
    Hit, IndicatorUse, ThreatCategory, classify_domain, classify_ip, metadata_rebind,
};
use crate::intel::indicator::normalise_domain;

pub struct Intel;

fn dns_signal(t: FindingType, domain: &str, ev: &RuntimeEvent, rule: &str) -> Signal {
    let mut signal = Signal::new(t, rule)
        .fact("domain", domain)
        .description(format!("A process queried {domain}."));
    let protocol = ev
        .dns
        .as_ref()
        .map(|d| d.transport.to_ascii_uppercase())
        .filter(|p| !p.is_empty());
    signal.action = Some(Action::dns_request(DnsRequestAction {
        domain: Some(domain.to_owned()),
        protocol,
        blocked: Some(false),
        ..DnsRequestAction::default()
    }));
    signal
}

/// Signals for the classification hits, one per finding type.
fn hit_signals(hits: Vec<Hit>, make: impl Fn(FindingType, &str) -> Signal, out: &mut Vec<Signal>) {
    for hit in hits {
        let rule = format!("detector.intel.{}", hit.rule);
        let mut signal = make(hit.finding_type, &rule);
        signal.threat = hit.threat_list_name().map(|l| (l, Vec::new()));
        out.push(signal);
    }
}

fn category<'c>(ctx: &'c DetectContext<'_>) -> impl Fn(&str) -> Option<ThreatCategory> + 'c {
    |list: &str| ctx.config.threat_categories.get(list).copied()
}

impl Intel {
    fn query(&self, ev: &RuntimeEvent, ctx: &DetectContext<'_>, out: &mut Vec<Signal>) {
        let Some(dns) = &ev.dns else { return };
        for q in &dns.questions {
            let Ok(name) = normalise_domain(&q.name) else {
                continue;
            };
            let mut hits = Vec::new();
            classify_domain(
                &name,
                ctx.intel,
                &category(ctx),
                AffectedResource::Runtime,
                &mut hits,
            );
            hit_signals(hits, |t, rule| dns_signal(t, &name, ev, rule), out);
        }
    }

    fn response(&self, ev: &RuntimeEvent, ctx: &DetectContext<'_>, out: &mut Vec<Signal>) {
        let Some(dns) = &ev.dns else { return };
        let Some(q) = dns.questions.first() else {
            return;
        };
        let Ok(name) = normalise_domain(&q.name) else {
            return;
        };
        let answers = dns.answers.iter().map(|a| a.data.as_str());
        let Some(address) = metadata_rebind(&name, answers, ctx.intel) else {
            return;
        };
        let mut signal = dns_signal(
            FindingType::UnauthorizedAccessRuntimeMetadataDnsRebind,
            &name,
            ev,
            "detector.intel.metadata-rebind",
        );
        signal.description = Some(format!(
            "{name} resolved to the instance metadata address {address}."
        ));
        out.push(signal);
    }

    fn exec(&self, ev: &RuntimeEvent, ctx: &DetectContext<'_>, out: &mut Vec<Signal>) {
        let Some(p) = &ev.process else { return };
        let Some(sha256) = p.sha256.get() else {
            return;
        };
        let Verdict::Threat { lists } = ctx.intel.check_sha256(sha256) else {
            return;
        };
        let make = |t: FindingType| {
            let mut signal = Signal::new(t, "detector.intel.file-hash")
                .context(RuntimeContext {
                    threat_file_path: Some(p.executable.clone()),
                    ..RuntimeContext::default()
                })
                .description(format!(
                    "{} (SHA-256 {sha256}) is on a threat list.",
                    p.executable
                ));
            signal.threat_file_sha256 = Some(sha256.to_ascii_lowercase());
            signal
        };
        // One finding per type: several lists of one category fold into one.
        let mut by_type: Vec<(FindingType, Vec<&str>)> = Vec::new();
        for list in lists {
            let t = category(ctx)(list)
                .unwrap_or(ThreatCategory::Custom)
                .file_finding_type();
            match by_type.iter_mut().find(|(x, _)| *x == t) {
                Some((_, names)) => names.push(list),
                None => by_type.push((t, vec![list])),
            }
        }
        for (t, names) in by_type {
            let mut signal = make(t);
            signal.threat = Some((names.join(","), Vec::new()));
            out.push(signal);
        }
    }

    fn connect(&self, ev: &RuntimeEvent, ctx: &DetectContext<'_>, out: &mut Vec<Signal>) {
        let Some(sock) = &ev.socket else { return };
        let Some(remote) = &sock.remote else { return };
        let ip = match remote.ip.parse::<IpAddr>() {
            Ok(IpAddr::V4(v4)) => v4,
            Ok(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
                Some(v4) => v4,
                None => return, // GuardDuty lists hold IPv4 only
            },
            Err(_) => return,
        };
        let mut hits = Vec::new();
        classify_ip(
            ip,
            IndicatorUse::Outbound,
            ctx.intel,
            &category(ctx),
            AffectedResource::Runtime,
            &mut hits,
        );
        hit_signals(hits, |t, rule| connect_signal(t, ip, ev, rule), out);
    }
}

fn connect_signal(t: FindingType, ip: Ipv4Addr, ev: &RuntimeEvent, rule: &str) -> Signal {
    let sock = ev.socket.as_ref().expect("checked by the caller");
    let mut signal = Signal::new(t, rule)
        .fact("remoteIp", ip.to_string())
        .description(format!(
            "A process connected to {ip}, which is on a threat list."
        ));
    signal.action = Some(Action::network_connection(NetworkConnectionAction {
        blocked: Some(false),
        connection_direction: Some("OUTBOUND".into()),
        protocol: Some(sock.protocol.to_ascii_uppercase()),
        local_ip_details: sock.local.as_ref().map(|l| LocalIpDetails {
            ip_address_v4: Some(l.ip.clone()),
            ip_address_v6: None,
        }),
        local_port_details: sock.local.as_ref().map(|l| PortDetails {
            port: Some(l.port.into()),
            port_name: None,
        }),
        remote_ip_details: Some(RemoteIpDetails {
            ip_address_v4: Some(ip.to_string()),
            ..RemoteIpDetails::default()
        }),
        remote_port_details: sock.remote.as_ref().map(|r| PortDetails {
            port: Some(r.port.into()),
            port_name: None,
        }),
        ..NetworkConnectionAction::default()
    }));
    signal
}

impl Detector for Intel {
    fn name(&self) -> &'static str {
        "intel"
    }

    fn event_types(&self) -> &'static [EventType] {
        &[
            EventType::DnsQuery,
            EventType::DnsResponse,
            EventType::NetConnect,
            EventType::ProcessExec,
        ]
    }

    fn on_event(&mut self, ev: &RuntimeEvent, ctx: &DetectContext<'_>, out: &mut Vec<Signal>) {
        match ev.kind {
            EventType::DnsQuery => self.query(ev, ctx, out),
            EventType::DnsResponse => self.response(ev, ctx, out),
            EventType::NetConnect => self.connect(ev, ctx, out),
            EventType::ProcessExec => self.exec(ev, ctx, out),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::test_support::*;
    use super::*;
    use crate::detect::config::EngineConfig;
    use crate::intel::{IntelIndex, IntelList, ListFormat, ListKind, ListRole};

    fn query(name: &str) -> RuntimeEvent {
        event(&format!(
            r#"{{"type":"dns_query","time":"2026-01-01T00:00:01Z","process":{},"dns":{{"id":1,"questions":[{{"name":"{name}","type":"A","class":"IN"}}],"transport":"udp"}}}}"#,
            process(80, "curl", "/usr/bin/curl", "")
        ))
    }

    fn connect(ip: &str) -> RuntimeEvent {
        event(&format!(
            r#"{{"type":"net_connect","time":"2026-01-01T00:00:01Z","result":-115,"process":{},"socket":{{"family":"inet","protocol":"tcp","remote":{{"ip":"{ip}","port":8009}}}}}}"#,
            process(81, "curl", "/usr/bin/curl", "")
        ))
    }

    fn list(name: &str, role: ListRole, text: &str) -> Arc<IntelList> {
        Arc::new(IntelList::parse(
            name,
            role,
            ListKind::EntityList,
            ListFormat::Txt,
            text,
        ))
    }

    fn detect(
        config: &EngineConfig,
        intel: &IntelIndex,
        events: &[RuntimeEvent],
    ) -> Vec<FindingType> {
        run(&mut Intel, config, intel, events)
    }

    #[test]
    fn every_test_domain_raises_its_runtime_type() {
        use FindingType as T;
        let cases = [
            (
                "guarddutyc2activityb.com",
                T::BackdoorRuntimeCncActivityBDns,
            ),
            (
                "c2.guarddutyc2activityb.com.",
                T::BackdoorRuntimeCncActivityBDns,
            ),
            (
                "crypto.guarddutyc2activityb.com",
                T::CryptoCurrencyRuntimeBitcoinToolBDns,
            ),
            (
                "abused-rep.guarddutyc2activityb.com",
                T::ImpactRuntimeAbusedDomainRequestReputation,
            ),
            (
                "crypto-rep.guarddutyc2activityb.com",
                T::ImpactRuntimeBitcoinDomainRequestReputation,
            ),
            (
                "malicious-rep.guarddutyc2activityb.com",
                T::ImpactRuntimeMaliciousDomainRequestReputation,
            ),
            (
                "suspicious-rep.guarddutyc2activityb.com",
                T::ImpactRuntimeSuspiciousDomainRequestReputation,
            ),
            (
                "guarddutydroppointactivity.com",
                T::TrojanRuntimeDropPointDns,
            ),
            (
                "guarddutyblackholeactivity.com",
                T::TrojanRuntimeBlackholeTrafficDns,
            ),
            (
                "GuardDutyPhishingActivity.com",
                T::TrojanRuntimePhishingDomainRequestDns,
            ),
            (
                "guarddutydrivebyactivity.com",
                T::TrojanRuntimeDriveBySourceTrafficDns,
            ),
            (
                "guarddutydgaactivity.com",
                T::TrojanRuntimeDgaDomainRequestCDns,
            ),
            (
                "pool.supportxmr.com",
                T::CryptoCurrencyRuntimeBitcoinToolBDns,
            ),
        ];
        let (config, intel) = (EngineConfig::default(), IntelIndex::default());
        for (name, t) in cases {
            assert_eq!(detect(&config, &intel, &[query(name)]), [t], "{name}");
        }
        assert!(
            detect(
                &config,
                &intel,
                &[
                    query("other.guarddutyc2activityb.com"),
                    query("example.com")
                ]
            )
            .is_empty()
        );
    }

    #[test]
    fn operator_lists_by_category_and_trusted_lists_win() {
        let mut config = EngineConfig::default();
        config
            .threat_categories
            .insert("c2".into(), ThreatCategory::CommandAndControl);
        let intel = IntelIndex::new([
            list("c2", ListRole::Threat, "evil.example.org\n198.51.100.7\n"),
            list("mine", ListRole::Threat, "bad.example.net\n203.0.113.9\n"),
            list("ok", ListRole::Trusted, "pool.supportxmr.com\n"),
        ]);
        assert_eq!(
            detect(&config, &intel, &[query("evil.example.org")]),
            [FindingType::BackdoorRuntimeCncActivityBDns]
        );
        assert_eq!(
            detect(&config, &intel, &[query("bad.example.net")]),
            [FindingType::ImpactEc2MaliciousDomainRequestCustom]
        );
        assert_eq!(
            detect(&config, &intel, &[connect("198.51.100.7")]),
            [FindingType::BackdoorRuntimeCncActivityB]
        );
        assert_eq!(
            detect(&config, &intel, &[connect("::ffff:203.0.113.9")]),
            [FindingType::UnauthorizedAccessEc2MaliciousIpCallerCustom]
        );
        assert!(
            detect(&config, &intel, &[query("pool.supportxmr.com")]).is_empty(),
            "trusted"
        );
        assert!(
            detect(
                &config,
                &intel,
                &[connect("198.51.100.8"), connect("10.0.0.1")]
            )
            .is_empty()
        );
    }

    #[test]
    fn executables_on_hash_lists() {
        const EVIL: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
        const GOLDEN: &str = "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752";
        let exec = |sha: &str| {
            event(&format!(
                r#"{{"type":"process_exec","time":"2026-01-01T00:00:01Z","process":{},"exec":{{}}}}"#,
                process(
                    83,
                    "kworker",
                    "/tmp/.x/kworker",
                    &format!(r#""sha256":"{sha}""#)
                )
            ))
        };
        let mut config = EngineConfig::default();
        config
            .threat_categories
            .insert("malware".into(), ThreatCategory::Malware);
        let plain = IntelIndex::new([list("ops", ListRole::Threat, &format!("{EVIL}\n"))]);
        let categorised = IntelIndex::new([
            list("malware", ListRole::Threat, &format!("{EVIL}\n{GOLDEN}\n")),
            list("golden", ListRole::Trusted, &format!("{GOLDEN}\n")),
        ]);
        assert_eq!(
            detect(&config, &plain, &[exec(EVIL)]),
            [FindingType::ExecutionRuntimeMaliciousFileExecutedCustom]
        );
        assert_eq!(
            detect(&config, &categorised, &[exec(&EVIL.to_ascii_uppercase())]),
            [FindingType::ExecutionRuntimeMaliciousFileExecuted]
        );
        assert!(
            detect(&config, &categorised, &[exec(GOLDEN)]).is_empty(),
            "trusted wins"
        );
        assert!(detect(&config, &plain, &[exec(GOLDEN)]).is_empty());
        let ctx = DetectContext {
            config: &config,
            intel: &categorised,
        };
        let mut out = Vec::new();
        Intel.on_event(&exec(EVIL), &ctx, &mut out);
        let signal = &out[0];
        assert_eq!(signal.threat_file_sha256.as_deref(), Some(EVIL));
        assert_eq!(signal.threat.as_ref().unwrap().0, "malware");
        assert_eq!(
            signal.context.threat_file_path.as_deref(),
            Some("/tmp/.x/kworker")
        );
    }

    #[test]
    fn metadata_rebinding() {
        let response = |name: &str, data: &str| {
            event(&format!(
                r#"{{"type":"dns_response","time":"2026-01-01T00:00:01Z","process":{},"dns":{{"id":1,"response":true,"questions":[{{"name":"{name}","type":"A","class":"IN"}}],"answers":[{{"name":"{name}","type":"A","ttl":1,"data":"{data}"}}],"transport":"udp"}}}}"#,
                process(82, "curl", "/usr/bin/curl", "")
            ))
        };
        let (config, intel) = (EngineConfig::default(), IntelIndex::default());
        assert_eq!(
            detect(
                &config,
                &intel,
                &[response("rebind.example.com", "169.254.169.254")]
            ),
            [FindingType::UnauthorizedAccessRuntimeMetadataDnsRebind]
        );
        assert!(
            detect(
                &config,
                &intel,
                &[
                    response("rebind.example.com", "93.184.216.34"),
                    response("instance-data.ec2.internal", "169.254.169.254")
                ]
            )
            .is_empty()
        );
    }
}
