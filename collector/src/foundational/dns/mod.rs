//! EC2 findings from Route 53 Resolver query logs (spec §5.1, §5.5, §9.3).
//!
//! | Finding | Trigger (defaults) |
//! |---|---|
//! | `Backdoor:EC2/C&CActivity.B!DNS`, `CryptoCurrency:EC2/BitcoinTool.B!DNS`, `Trojan:EC2/BlackholeTraffic!DNS`, `DropPoint!DNS`, `DGADomainRequest.C!DNS`, `DriveBySourceTraffic!DNS`, `PhishingDomainRequest!DNS`, `Impact:EC2/*DomainRequest.Reputation`, `Impact:EC2/MaliciousDomainRequest.Custom` | the queried name is a GuardDuty test domain, on Ward's mining-pool list, or on an operator threat list; the type follows the list's category, `.Custom` without one (classification shared with the runtime detector: `intel::classify`) |
//! | `Trojan:EC2/BlackholeTraffic!DNS` (also) | an answer address is on a threat list of the `blackhole` category |
//! | `UnauthorizedAccess:EC2/MetadataDNSRebind` | an answer is 169.254.169.254 (or fd00:ec2::254) for a name other than the metadata service's own |
//! | `Trojan:EC2/DNSDataExfiltration` | ≥ 20 distinct names under one registrable domain in 10 min whose subdomain part looks encoded: ≥ 40 characters and ≥ 4.0 bits of entropy per character |
//! | `Trojan:EC2/DGADomainRequest.B` | ≥ 10 distinct registrable domains that did not resolve (NXDOMAIN) and look machine-generated, from one instance in 10 min; raised for the domain that reached the count |
//!
//! "Reputation": GuardDuty grades domains with its own models (age, popularity, abuse reports).
//! Ward has no such model: the `.Reputation` types come from the GuardDuty test domains and from
//! operator lists given a reputation category (`abused-rep`, `crypto-rep`, `malicious-rep`,
//! `suspicious-rep`).
//!
//! Resource: the querying instance (`srcids.instance`); queries without one (from a Resolver
//! inbound endpoint) name no instance and are not analysed. `dnsRequestAction.blocked` is true
//! when DNS Firewall blocked the query.

pub mod name;
mod recent;

use std::net::IpAddr;

use foldhash::{HashMap, HashMapExt};
use serde::{Deserialize, Serialize};

use self::recent::{NameFacts, RecentNames};
use crate::event::net::parse_ip_lenient;
use crate::event::{DnsQuery, Event, Record, SourceKind};
use crate::findings::{Action, AffectedResource, DnsRequestAction, FindingType, Occurrence};
use crate::foundational::flow::finding::{Ec2Draft, Ec2Target};
use crate::foundational::{LogContext, LogDetector, StateKey};
use crate::intel::classify::{
    Hit, IndicatorUse, ThreatCategory, classify_domain, classify_ip, metadata_rebind,
};

/// Thresholds of the DNS analyses (see the module table).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DnsConfig {
    pub window_secs: u64,
    pub exfil_names: usize,
    pub exfil_min_len: usize,
    pub exfil_min_entropy: f64,
    pub dga_domains: usize,
}

impl Default for DnsConfig {
    fn default() -> Self {
        Self {
            window_secs: 600,
            exfil_names: 20,
            exfil_min_len: 40,
            exfil_min_entropy: 4.0,
            dga_domains: 10,
        }
    }
}

/// Distinct encoded names under one registrable domain in the current window.
#[derive(Debug, Default)]
struct ExfilWindow {
    window: u64,
    names: Vec<u64>,
    fired: bool,
}

/// Distinct unresolved generated-looking domains of one instance in the current window.
#[derive(Debug, Default)]
struct DgaWindow {
    window: u64,
    domains: Vec<Box<str>>,
}

pub struct DnsDetector {
    config: DnsConfig,
    /// Keyed by `instance \0 registrable domain`.
    exfil: HashMap<Box<str>, ExfilWindow>,
    dga: HashMap<StateKey, DgaWindow>,
    recent: RecentNames,
    hits: Vec<Hit>,
    newest: u64,
    since_sweep: u32,
    /// Event time (Unix seconds) of the last sweep.
    swept_at: u64,
}

impl Default for DnsDetector {
    fn default() -> Self {
        Self::new(DnsConfig::default())
    }
}

impl DnsDetector {
    pub fn new(config: DnsConfig) -> Self {
        Self {
            config,
            exfil: HashMap::new(),
            dga: HashMap::new(),
            recent: RecentNames::default(),
            hits: Vec::new(),
            newest: 0,
            since_sweep: 0,
            swept_at: 0,
        }
    }

    fn query(
        &mut self,
        q: &DnsQuery<'_>,
        event: &Event<'_>,
        ctx: &LogContext<'_>,
        out: &mut Vec<Occurrence>,
    ) {
        let Some(instance) = q.instance_id() else {
            return;
        };
        let Some(raw) = q.domain() else { return };
        if raw.is_empty() {
            return;
        }
        let lowered;
        let name = if crate::intel::has_ascii_uppercase(raw) {
            lowered = raw.to_ascii_lowercase();
            lowered.as_str()
        } else {
            raw
        };
        let time_ms = event.time_ms().unwrap_or(0);
        let secs = (time_ms.max(0) / 1000) as u64;
        self.newest = self.newest.max(secs);
        self.since_sweep += 1;
        if self.since_sweep >= 1 << 16 {
            self.sweep(self.newest.saturating_sub(self.config.window_secs));
        }
        let target = Ec2Target {
            instance_id: Some(instance),
            vpc_id: q.vpc_id.as_deref(),
            // The source address is parsed only for a finding (see `DnsEmitter::target`).
            local_ip: None,
            ..Ec2Target::default()
        };
        let em = DnsEmitter {
            q,
            name,
            event,
            ctx,
            target,
            time_ms,
        };
        let categories = &ctx.settings.threat_categories;
        let category = |list: &str| categories.get(list).copied();

        self.hits.clear();
        let generation = ctx.intel.generation();
        let classify = |hits: &mut Vec<Hit>| {
            classify_domain(name, ctx.intel, &category, AffectedResource::Ec2, hits);
        };
        let slot = self.recent.slot(name);
        let facts = match self.recent.get(slot, name, generation) {
            Some(facts) => {
                if !facts.unlisted {
                    classify(&mut self.hits);
                }
                facts
            }
            None => {
                classify(&mut self.hits);
                let registrable = name::registrable(name);
                let facts = NameFacts {
                    // A threat-list verdict always gives a hit (`.Custom` without a category),
                    // so no hits means none for any categories.
                    unlisted: self.hits.is_empty(),
                    registrable: name.len() - registrable.len(),
                    encoded: name::looks_encoded(
                        name::subdomain(name, registrable),
                        self.config.exfil_min_len,
                        self.config.exfil_min_entropy,
                    ),
                };
                self.recent.put(slot, name, generation, facts);
                facts
            }
        };
        for hit in self.hits.drain(..) {
            let rule = match hit.rule {
                "test-domain" => "dns.intel.test-domain",
                "mining-pool" => "dns.intel.mining-pool",
                _ => "dns.intel.threat-list",
            };
            em.emit(hit.finding_type, rule, hit.lists, None, out);
        }

        let answers = || {
            q.answers
                .iter()
                .flat_map(|a| a.0.iter())
                .filter_map(|a| a.rdata.as_deref())
        };
        if let Some(address) = metadata_rebind(name, answers(), ctx.intel) {
            let note = format!("{name} resolved to the instance metadata address {address}.");
            em.emit(
                FindingType::UnauthorizedAccessEc2MetadataDnsRebind,
                "dns.metadata-rebind",
                Vec::new(),
                Some(note),
                out,
            );
        }
        // Only a list categorised `blackhole` can make an answer a finding: without one, the
        // answers are not parsed at all.
        let blackhole_lists = categories.values().any(|c| *c == ThreatCategory::Blackhole);
        if blackhole_lists && !ctx.intel.lists().is_empty() {
            for answer in answers() {
                let Some(IpAddr::V4(ip)) = parse_ip_lenient(answer.trim()) else {
                    continue;
                };
                let mut hits = Vec::new();
                classify_ip(
                    ip,
                    IndicatorUse::Outbound,
                    ctx.intel,
                    &category,
                    AffectedResource::Ec2,
                    &mut hits,
                );
                for hit in hits {
                    if hit
                        .lists
                        .iter()
                        .any(|l| category(l) == Some(ThreatCategory::Blackhole))
                    {
                        let note = format!("{name} resolved to the black-hole address {ip}.");
                        em.emit(
                            FindingType::TrojanEc2BlackholeTrafficDns,
                            "dns.intel.blackhole-answer",
                            hit.lists,
                            Some(note),
                            out,
                        );
                    }
                }
            }
        }

        let window = secs / self.config.window_secs;
        let registrable = &name[facts.registrable..];
        if facts.encoded {
            let key = format!("{instance}\0{registrable}");
            let w = self.exfil.entry(key.into_boxed_str()).or_default();
            if window > w.window {
                *w = ExfilWindow {
                    window,
                    ..ExfilWindow::default()
                };
            }
            let h = hash(name);
            if window == w.window && !w.fired && !w.names.contains(&h) {
                w.names.push(h);
                if w.names.len() >= self.config.exfil_names {
                    w.fired = true;
                    let note = format!(
                        "{} distinct encoded-looking names under {registrable} in {} seconds, the latest {name}.",
                        w.names.len(),
                        self.config.window_secs
                    );
                    em.exfiltration(registrable, note, out);
                }
            }
        }

        if q.rcode.as_deref() == Some("NXDOMAIN") && name::looks_generated(registrable) {
            let w = match self.dga.get_mut(instance) {
                Some(w) => w,
                None => self.dga.entry(instance.into()).or_default(),
            };
            if window > w.window {
                *w = DgaWindow {
                    window,
                    ..DgaWindow::default()
                };
            }
            if window == w.window && !w.domains.iter().any(|d| &**d == registrable) {
                w.domains.push(registrable.into());
                if w.domains.len() == self.config.dga_domains {
                    let note = format!(
                        "{} unresolved machine-generated-looking domains in {} seconds, the latest {registrable}.",
                        w.domains.len(),
                        self.config.window_secs
                    );
                    em.emit(
                        FindingType::TrojanEc2DgaDomainRequestB,
                        "dns.dga",
                        Vec::new(),
                        Some(note),
                        out,
                    );
                }
            }
        }
    }

    /// Drops windows that ended before `now` (Unix seconds).
    pub fn sweep(&mut self, now: u64) {
        self.since_sweep = 0;
        self.swept_at = now;
        let secs = self.config.window_secs;
        self.exfil.retain(|_, w| (w.window + 1) * secs >= now);
        self.dga.retain(|_, w| (w.window + 1) * secs >= now);
    }
}

fn hash(name: &str) -> u64 {
    use std::hash::BuildHasher;
    foldhash::fast::FixedState::with_seed(0x5741_5244).hash_one(name)
}

struct DnsEmitter<'a> {
    q: &'a DnsQuery<'a>,
    name: &'a str,
    event: &'a Event<'a>,
    ctx: &'a LogContext<'a>,
    target: Ec2Target<'a>,
    time_ms: i64,
}

impl DnsEmitter<'_> {
    /// The instance, with the query's source address.
    fn target(&self) -> Ec2Target<'_> {
        Ec2Target {
            local_ip: self.q.src_ip(),
            ..self.target
        }
    }

    fn action(&self) -> Action {
        let q = self.q;
        Action::dns_request(DnsRequestAction {
            domain: Some(self.name.to_owned()),
            protocol: q.transport.as_deref().map(str::to_ascii_uppercase),
            blocked: Some(q.firewall_rule_action.as_deref() == Some("BLOCK")),
            domain_with_suffix: Some(name::registrable(self.name).to_owned()),
            vpc_owner_account_id: q.account_id.as_deref().map(str::to_owned),
        })
    }

    fn emit(
        &self,
        t: FindingType,
        rule: &'static str,
        threat_lists: Vec<String>,
        note: Option<String>,
        out: &mut Vec<Occurrence>,
    ) {
        let mut d = Ec2Draft::new(t, rule, self.event, self.ctx);
        d.event_time_ms = self.time_ms;
        d.facts.push(("domain", self.name.to_owned()));
        d.title = format!("{} is querying {}.", self.target.label(), self.name);
        d.description = match note {
            Some(note) => format!("{} {note}", d.title),
            None => d.title.clone(),
        };
        d.action = Some(self.action());
        d.threat_lists = threat_lists;
        if let Some(o) = d.build(&self.target()) {
            out.push(o);
        }
    }

    fn exfiltration(&self, registrable: &str, note: String, out: &mut Vec<Occurrence>) {
        let mut d = Ec2Draft::new(
            FindingType::TrojanEc2DnsDataExfiltration,
            "dns.exfiltration",
            self.event,
            self.ctx,
        );
        d.event_time_ms = self.time_ms;
        d.actor = true;
        d.facts.push(("domainWithSuffix", registrable.to_owned()));
        d.title = format!(
            "{} is attempting to exfiltrate data through DNS queries to {registrable}.",
            self.target.label()
        );
        d.description = format!("{} {note}", d.title);
        d.action = Some(self.action());
        if let Some(o) = d.build(&self.target()) {
            out.push(o);
        }
    }
}

impl LogDetector for DnsDetector {
    fn name(&self) -> &'static str {
        "dns"
    }

    fn sources(&self) -> &'static [SourceKind] {
        &[SourceKind::Dns]
    }

    fn on_event(&mut self, event: &Event<'_>, ctx: &LogContext<'_>, out: &mut Vec<Occurrence>) {
        if let Record::Dns(q) = event.record {
            self.query(q, event, ctx, out);
        }
    }

    fn on_time(&mut self, now_ms: i64, _ctx: &LogContext<'_>, _out: &mut Vec<Occurrence>) {
        // The engine calls this whenever event time moves (about every record); windows are
        // compared by index, so sweeping once a minute only delays freeing closed ones.
        let now = (now_ms.max(0) / 1000) as u64;
        if now >= self.swept_at + 60 {
            self.sweep(now);
        }
    }
}

#[cfg(test)]
mod tests;
