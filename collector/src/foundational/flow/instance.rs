//! The flow analyses and the per-instance state they share (see the parent module for the table of
//! triggers and thresholds).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use foldhash::fast::RandomState;
use foldhash::{HashMap, HashMapExt};
use serde::{Deserialize, Serialize};

use super::conn::{Conn, Interfaces, NO_SLOT, Opener};
use super::finding::{Ec2Draft, local_ip_details, port_details, protocol_name, remote_ip_details};
use super::peers::PeerMap;
use super::resolvers::{self, DnsKind};
use super::{EMR_PORTS, FlowConfig, TCP_ONLY_PORTS};
use crate::event::{Event, FlowRecord};
use crate::findings::{
    Action, AffectedResource, FindingType, NetworkConnectionAction, Occurrence, PortProbeAction,
    PortProbeDetail, SeverityLevel,
};
use crate::flat_set::U32Set;
use crate::foundational::{LogContext, StateKey};
use crate::intel::classify::{Hit, IndicatorUse, classify_ip};

/// Brute-force services: port range, finding type, name in titles.
const BRUTE_FORCE: [(u16, u16, FindingType, &str); 3] = [
    (
        22,
        22,
        FindingType::UnauthorizedAccessEc2SshBruteForce,
        "SSH",
    ),
    (
        3389,
        3389,
        FindingType::UnauthorizedAccessEc2RdpBruteForce,
        "RDP",
    ),
    (5985, 5986, FindingType::ImpactEc2WinRmBruteForce, "WinRM"),
];

/// Denial-of-service classes, in [`super::peers::Peer::add_dos`] order.
const DOS_TYPES: [FindingType; 5] = [
    FindingType::BackdoorEc2DenialOfServiceTcp,
    FindingType::BackdoorEc2DenialOfServiceUdp,
    FindingType::BackdoorEc2DenialOfServiceUdpOnTcpPorts,
    FindingType::BackdoorEc2DenialOfServiceDns,
    FindingType::BackdoorEc2DenialOfServiceUnusualProtocol,
];

/// Probes of one local port in the current probe window.
#[derive(Debug, Default)]
struct Probe {
    window: u64,
    remotes: Vec<Ipv4Addr>,
    fired: bool,
}

/// Distinct public addresses seen for one purpose in the current window (mail servers contacted,
/// hosts probed on one port).
#[derive(Debug, Default)]
struct Spread {
    window: u64,
    remotes: Vec<u32>,
    fired: bool,
}

impl Spread {
    /// Counts `remote` in `window` (a newer window starts over; an older record is too late);
    /// the count when it first reaches `threshold`.
    fn add(&mut self, window: u64, remote: u32, threshold: usize) -> Option<usize> {
        if window > self.window {
            self.window = window;
            self.remotes.clear();
            self.fired = false;
        }
        if window != self.window || self.fired || self.remotes.contains(&remote) {
            return None;
        }
        self.remotes.push(remote);
        self.fired = self.remotes.len() >= threshold;
        self.fired.then_some(self.remotes.len())
    }
}

/// A public resolver the instance used, and when it last did.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResolverUse {
    kind: DnsKind,
    address: Ipv4Addr,
    last_seen: u64,
}

/// All state of one instance. The fields most records touch come first, in the first cache line.
#[derive(Debug)]
#[repr(C, align(64))]
struct Instance {
    /// Start (Unix seconds) of the learning period: the instance's first record.
    first_seen: u64,
    peak_hour_bytes: u64,
    /// Learned ports: direction (1 out, 2 in) << 24 | protocol << 16 | port.
    ports: U32Set,
    peers: PeerMap,
    /// The key the instance's state is kept under (instance id, else interface id).
    key: StateKey,
    probes: HashMap<u32, Probe>,
    /// Public resolvers (plain, DoT, DoH) the instance used.
    resolvers: Vec<ResolverUse>,
    /// The instance sent mail (TCP 25) during its learning period, or its first mail was reported:
    /// more mail is not a spambot's first.
    smtp_history: bool,
    /// Mail servers contacted in the current window by an instance without SMTP history.
    smtp: Option<Box<Spread>>,
    /// Probe-shaped connections to one remote TCP port, by port.
    sweeps: HashMap<u16, Spread>,
}

impl Instance {
    fn new(key: StateKey, first_seen: u64) -> Self {
        Self {
            first_seen,
            peak_hour_bytes: 0,
            ports: U32Set::default(),
            peers: PeerMap::default(),
            key,
            probes: HashMap::new(),
            resolvers: Vec::new(),
            smtp_history: false,
            smtp: None,
            sweeps: HashMap::new(),
        }
    }
}

/// Persisted baseline of one instance.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SavedBaseline {
    first_seen: u64,
    ports: Vec<u32>,
    peak_hour_bytes: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    resolvers: Vec<ResolverUse>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    smtp_history: bool,
}

#[derive(Debug, Serialize, Deserialize)]
struct SavedState {
    version: u32,
    instances: BTreeMap<String, SavedBaseline>,
}

/// Every VPC-flow analysis; see the parent module.
pub struct FlowDetector {
    config: FlowConfig,
    interfaces: Interfaces,
    /// Every instance's state; an index into it (a slot) is what `interfaces` caches, so the
    /// common record costs one keyed lookup.
    instances: Vec<Instance>,
    /// Slot of each instance's state by its key.
    slots: HashMap<StateKey, u32>,
    /// Seeds the port sets' hashing.
    hasher: RandomState,
    newest: u64,
    since_sweep: u32,
    /// Event time (Unix seconds) of the last sweep.
    swept_at: u64,
    hits: Vec<Hit>,
}

impl Default for FlowDetector {
    fn default() -> Self {
        Self::new(FlowConfig::default())
    }
}

/// Records between two sweeps of expired windows when the engine does not call `on_time`.
const SWEEP_EVERY: u32 = 1 << 16;

impl FlowDetector {
    pub fn new(config: FlowConfig) -> Self {
        Self {
            config,
            interfaces: Interfaces::default(),
            instances: Vec::new(),
            slots: HashMap::new(),
            hasher: RandomState::default(),
            newest: 0,
            since_sweep: 0,
            swept_at: 0,
            hits: Vec::new(),
        }
    }

    pub fn config(&self) -> &FlowConfig {
        &self.config
    }

    /// Peers kept, all instances, and the room their maps have.
    #[cfg(test)]
    pub(super) fn peers_kept(&self) -> (usize, usize) {
        self.instances.iter().fold((0, 0), |(n, room), i| {
            let (kept, more) = i.peers.kept();
            (n + kept, room + more)
        })
    }

    pub(super) fn swept_at(&self) -> u64 {
        self.swept_at
    }

    pub(super) fn record(
        &mut self,
        record: &FlowRecord<'_>,
        event: &Event<'_>,
        ctx: &LogContext<'_>,
        out: &mut Vec<Occurrence>,
    ) {
        let Some((c, iface)) = self.interfaces.view(record) else {
            return;
        };
        let Some(key) = c.target.key() else { return };
        // The instance's slot as cached on the interface, checked when the record names an
        // instance other than the interface's own key; else looked up (and cached).
        let own_key = c.target.instance_id.is_none() || c.target.eni.is_none();
        let cached = iface.map(|i| {
            if own_key {
                &mut i.slots.own
            } else {
                &mut i.slots.other
            }
        });
        let slot = match cached {
            Some(s) if *s != NO_SLOT && (own_key || self.instances[*s as usize].key == key) => {
                *s as usize
            }
            cached => {
                let slot = slot_of(&mut self.instances, &mut self.slots, key, c.start);
                if let Some(s) = cached {
                    *s = slot as u32;
                }
                slot
            }
        };
        if c.start > self.newest {
            self.newest = c.start;
        }
        self.since_sweep += 1;
        if self.since_sweep >= SWEEP_EVERY {
            self.sweep(self.newest.saturating_sub(self.config.window_secs));
        }
        let cfg = &self.config;
        let hasher = &self.hasher;
        let inst = &mut self.instances[slot];
        if c.start < inst.first_seen {
            inst.first_seen = c.start;
        }
        let window = c.start / cfg.window_secs;
        // The port's slot is most likely not in cache: it starts loading now, while the
        // threat-list probe below runs.
        let port_key = learned_port(&c);
        if let Some(port_key) = port_key {
            inst.ports.prefetch(port_key, hasher);
        }
        let learning_secs = (ctx.settings.learning_period_ms.max(0) / 1000) as u64;
        let em = Emitter {
            c: &c,
            event,
            ctx,
            window_secs: cfg.window_secs,
            probe_window_secs: cfg.probe_window_secs,
            out,
        };

        let in_request = c.opener == Opener::Remote && !c.sending;
        let out_request = c.opener == Opener::Local && c.sending;
        let brute = BRUTE_FORCE.iter().position(|(lo, hi, _, _)| {
            let port = if in_request {
                c.local_port
            } else {
                c.remote_port
            };
            c.protocol == 6 && (in_request || out_request) && (*lo..=*hi).contains(&port)
        });
        let probe_shaped = c.packets <= cfg.probe_max_packets;
        let scan = out_request && probe_shaped && c.remote_port != 0;
        let dos = c.sending && c.remote_public && c.opener != Opener::Remote;
        let volume = c.sending && c.remote_public && c.accepted;
        let mut em = em;
        let remote = u32::from(c.remote);
        let (window_secs, swept) = (cfg.window_secs, self.swept_at);
        let mut peer = (brute.is_some() || scan || dos || volume)
            .then(|| inst.peers.of(remote, window_secs, swept));

        // Threat lists, unless the peer is known to be on none of this generation's.
        self.hits.clear();
        let unlisted = unlisted_stamp(ctx.intel.generation());
        if peer.as_ref().is_none_or(|p| p.unlisted != unlisted) {
            let usage = if c.opener == Opener::Remote {
                IndicatorUse::Inbound
            } else {
                IndicatorUse::Outbound
            };
            let categories = &ctx.settings.threat_categories;
            classify_ip(
                c.remote,
                usage,
                ctx.intel,
                &|list: &str| categories.get(list).copied(),
                AffectedResource::Ec2,
                &mut self.hits,
            );
            if self.hits.is_empty()
                && let Some(p) = &mut peer
            {
                p.unlisted = unlisted;
            }
        }
        if peer.is_none() && !self.hits.is_empty() {
            peer = Some(inst.peers.of(remote, window_secs, swept));
        }
        if let Some(peer) = peer {
            let current = peer.roll(window);
            if !self.hits.is_empty() && peer.intel_window() != window + 1 {
                peer.set_intel_window(window + 1);
                for hit in self.hits.drain(..) {
                    em.intel(hit);
                }
            }
            if current && let Some(service) = brute {
                let role = usize::from(out_request);
                let count = &mut peer.brute[service][role];
                *count += 1;
                let bit = 1 << (service * 2 + role);
                if *count >= cfg.brute_force_connections && peer.brute_fired & bit == 0 {
                    peer.brute_fired |= bit;
                    em.brute_force(service, out_request, *count);
                }
            }
            if current
                && scan
                && let Some(ports) = peer.scan_port(c.remote_port, cfg.portscan_ports)
            {
                em.portscan(ports);
            }
            if current && dos {
                let class = dos_class(c.protocol, c.remote_port);
                let (packets, bytes) = peer.add_dos(class, c.packets, c.bytes);
                let small = class != 0 || bytes <= packets * cfg.dos_tcp_max_bytes_per_packet;
                if packets >= cfg.dos_packets && small && peer.dos_fired & (1 << class) == 0 {
                    peer.dos_fired |= 1 << class;
                    em.dos(class, packets, bytes);
                }
            }
            if volume {
                let hour = c.start / 3600;
                if hour > peer.hour {
                    peer.hour = hour;
                    peer.hour_bytes = 0;
                    peer.volume_fired = false;
                }
                if hour == peer.hour {
                    peer.hour_bytes += c.bytes;
                    let learning = c.start < inst.first_seen + learning_secs;
                    let total = peer.hour_bytes;
                    if learning {
                        inst.peak_hour_bytes = inst.peak_hour_bytes.max(total);
                    } else {
                        let limit = (inst.peak_hour_bytes.saturating_mul(cfg.volume_factor))
                            .max(cfg.volume_floor_bytes);
                        if total > limit && !peer.volume_fired {
                            peer.volume_fired = true;
                            em.volume(total, inst.peak_hour_bytes);
                        } else if total <= inst.peak_hour_bytes.saturating_mul(2) {
                            // Ordinary growth moves the baseline; an anomaly does not.
                            inst.peak_hour_bytes = inst.peak_hour_bytes.max(total);
                        }
                    }
                }
            }
        }

        // Probes of an open port from the internet.
        if c.opener == Opener::Remote
            && !c.sending
            && c.accepted
            && c.remote_public
            && probe_shaped
            && c.local_port != 0
        {
            let probe_window = c.start / cfg.probe_window_secs;
            let probe = inst
                .probes
                .entry(u32::from(c.protocol) << 16 | u32::from(c.local_port))
                .or_default();
            if probe_window > probe.window {
                *probe = Probe {
                    window: probe_window,
                    ..Probe::default()
                };
            }
            if probe_window == probe.window && !probe.fired && !probe.remotes.contains(&c.remote) {
                probe.remotes.push(c.remote);
                if probe.remotes.len() >= cfg.probe_remotes {
                    probe.fired = true;
                    em.port_probe(&probe.remotes);
                }
            }
        }

        // Ports never used before.
        if let Some(port_key) = port_key
            && !inst.ports.contains(port_key, hasher)
            && inst.ports.len() < cfg.max_baseline_ports
        {
            inst.ports.insert(port_key, hasher);
            if c.start >= inst.first_seen + learning_secs {
                em.unusual_port(c.opener == Opener::Local);
            }
        }

        let learning = c.start < inst.first_seen + learning_secs;

        // Mail to the internet from an instance that has never sent any.
        if out_request && c.protocol == 6 && c.remote_port == 25 && c.remote_public {
            if learning {
                inst.smtp_history = true;
            } else if !inst.smtp_history {
                let spread = inst.smtp.get_or_insert_with(Box::default);
                let window = c.start / cfg.probe_window_secs;
                if let Some(n) = spread.add(window, u32::from(c.remote), cfg.spambot_remotes) {
                    // Reported once; from now on the instance's mail is its history.
                    inst.smtp_history = true;
                    inst.smtp = None;
                    em.spambot(n);
                }
            }
        }

        // One port probed on many internet hosts.
        if scan && c.protocol == 6 && c.remote_public {
            let spread = inst.sweeps.entry(c.remote_port).or_default();
            if let Some(n) = spread.add(window, u32::from(c.remote), cfg.sweep_remotes) {
                em.port_sweep(n);
            }
        }

        // DNS sent to a public resolver (plain, DoT, DoH) the instance has not used recently.
        if c.opener == Opener::Local
            && c.accepted
            && c.remote_public
            && let Some(kind) = resolvers::classify(c.remote, c.protocol, c.remote_port)
        {
            let used = inst
                .resolvers
                .iter_mut()
                .find(|r| r.kind == kind && r.address == c.remote);
            let recent = match used {
                Some(r) => {
                    let recent = c.start <= r.last_seen + cfg.resolver_recent_secs;
                    r.last_seen = r.last_seen.max(c.start);
                    recent
                }
                None => {
                    if inst.resolvers.len() < cfg.max_resolvers {
                        inst.resolvers.push(ResolverUse {
                            kind,
                            address: c.remote,
                            last_seen: c.start,
                        });
                    }
                    false
                }
            };
            if !recent && !learning {
                em.unusual_resolver(kind);
            }
        }
    }

    /// Drops windows that ended before `now` (Unix seconds); baselines stay. An instance's peers
    /// are dropped by the same rule ([`PeerMap::of`]) when their map is full, not here: most
    /// sweeps would visit every peer of the fleet to free little, and a peer of an ended window
    /// starts over when its next record rolls it anyway.
    pub fn sweep(&mut self, now: u64) {
        self.since_sweep = 0;
        self.swept_at = now;
        let window_secs = self.config.window_secs;
        let probe_secs = self.config.probe_window_secs;
        for inst in &mut self.instances {
            inst.probes
                .retain(|_, p| (p.window + 1) * probe_secs >= now);
            inst.sweeps
                .retain(|_, s| (s.window + 1) * window_secs >= now);
            if inst
                .smtp
                .as_ref()
                .is_some_and(|s| (s.window + 1) * probe_secs < now)
            {
                inst.smtp = None;
            }
        }
    }

    pub(super) fn baselines_json(&self) -> serde_json::Value {
        let instances = self
            .instances
            .iter()
            .map(|inst| {
                let mut ports: Vec<u32> = inst.ports.iter().collect();
                ports.sort_unstable();
                (
                    inst.key.to_string(),
                    SavedBaseline {
                        first_seen: inst.first_seen,
                        ports,
                        peak_hour_bytes: inst.peak_hour_bytes,
                        resolvers: inst.resolvers.clone(),
                        smtp_history: inst.smtp_history,
                    },
                )
            })
            .collect();
        serde_json::to_value(SavedState {
            version: 1,
            instances,
        })
        .expect("baselines serialise")
    }

    pub(super) fn restore_baselines(&mut self, state: serde_json::Value) -> Result<(), String> {
        let saved: SavedState =
            serde_json::from_value(state).map_err(|e| format!("vpc-flow baselines: {e}"))?;
        if saved.version != 1 {
            return Err(format!(
                "vpc-flow baselines: version {} is not supported (expected 1)",
                saved.version
            ));
        }
        for (key, b) in saved.instances {
            let key = StateKey::from(key);
            let mut inst = Instance::new(key.clone(), b.first_seen);
            for port in b.ports {
                inst.ports.insert(port, &self.hasher);
            }
            inst.peak_hour_bytes = b.peak_hour_bytes;
            inst.resolvers = b.resolvers;
            inst.smtp_history = b.smtp_history;
            // In place of the state kept under that key, if any: slots cached on interfaces
            // stay valid.
            match self.slots.get(&key) {
                Some(slot) => self.instances[*slot as usize] = inst,
                None => {
                    self.slots.insert(key, self.instances.len() as u32);
                    self.instances.push(inst);
                }
            }
        }
        Ok(())
    }
}

/// The key of the port a record adds to the instance's baseline (public TCP/UDP traffic the
/// instance accepted, of a known opener): either record of a connection (request or response)
/// names its server port.
fn learned_port(c: &Conn<'_>) -> Option<u32> {
    if !(c.accepted && c.remote_public && matches!(c.protocol, 6 | 17)) {
        return None;
    }
    match c.opener {
        Opener::Local => Some(1 << 24 | u32::from(c.protocol) << 16 | u32::from(c.remote_port)),
        Opener::Remote => Some(2 << 24 | u32::from(c.protocol) << 16 | u32::from(c.local_port)),
        Opener::Unknown => None,
    }
}

/// What [`Peer::unlisted`] holds for an address on no threat list of the intel index of
/// `generation`: never 0, the value of a new peer, whose address has not been checked (the
/// stamps repeat after 2^32 - 1 generations of the lists).
fn unlisted_stamp(generation: u64) -> u32 {
    (generation % u64::from(u32::MAX)) as u32 + 1
}

/// The slot of the state kept under `key`, made (first seen at `start`) if there is none.
fn slot_of(
    instances: &mut Vec<Instance>,
    slots: &mut HashMap<StateKey, u32>,
    key: &str,
    start: u64,
) -> usize {
    if let Some(slot) = slots.get(key) {
        return *slot as usize;
    }
    let slot = instances.len();
    instances.push(Instance::new(key.into(), start));
    slots.insert(key.into(), slot as u32);
    slot
}

/// Index into [`DOS_TYPES`] for a packet of `protocol` to `remote_port`.
fn dos_class(protocol: u8, remote_port: u16) -> usize {
    match protocol {
        6 if remote_port == 53 => 3,
        6 => 0,
        17 if remote_port == 53 => 3,
        17 if TCP_ONLY_PORTS.contains(&remote_port) => 2,
        17 => 1,
        1 | 58 => 1, // ICMP floods are counted with UDP: no type of their own
        _ => 4,
    }
}

/// Builds the occurrences of one record.
struct Emitter<'a, 'r> {
    c: &'a Conn<'r>,
    event: &'a Event<'a>,
    ctx: &'a LogContext<'a>,
    window_secs: u64,
    probe_window_secs: u64,
    out: &'a mut Vec<Occurrence>,
}

impl Emitter<'_, '_> {
    fn draft(&self, t: FindingType, rule: &'static str) -> Ec2Draft {
        let mut d = Ec2Draft::new(t, rule, self.event, self.ctx);
        d.event_time_ms = self.c.start as i64 * 1000;
        d
    }

    fn connection(&self, inbound: bool) -> Action {
        let c = self.c;
        Action::network_connection(NetworkConnectionAction {
            blocked: Some(!c.accepted),
            connection_direction: Some(if inbound { "INBOUND" } else { "OUTBOUND" }.into()),
            local_port_details: Some(port_details(c.local_port)),
            protocol: Some(protocol_name(c.protocol)),
            local_ip_details: Some(local_ip_details(IpAddr::V4(c.local))),
            local_network_interface: c.target.eni.map(str::to_owned),
            remote_ip_details: Some(remote_ip_details(IpAddr::V4(c.remote))),
            remote_port_details: Some(port_details(c.remote_port)),
        })
    }

    fn push(&mut self, d: Ec2Draft) {
        if let Some(o) = d.build(&self.c.target) {
            self.out.push(o);
        }
    }

    fn intel(&mut self, hit: Hit) {
        let c = self.c;
        let inbound = c.opener == Opener::Remote;
        let rule = match hit.rule {
            "test-domain" => "flow.intel.test-domain",
            "mining-pool" => "flow.intel.mining-pool",
            _ => "flow.intel.threat-list",
        };
        let mut d = self.draft(hit.finding_type, rule);
        d.facts.push(("remoteIp", c.remote.to_string()));
        d.title = format!(
            "{} is communicating with {}, which is on threat list {}.",
            c.target.label(),
            c.remote,
            hit.lists.join(", ")
        );
        d.action = Some(self.connection(inbound));
        d.threat_lists = hit.lists;
        self.push(d);
    }

    fn brute_force(&mut self, service: usize, actor: bool, count: u32) {
        let c = self.c;
        let (_, _, t, name) = BRUTE_FORCE[service];
        let mut d = self.draft(t, "flow.brute-force");
        d.actor = actor;
        d.facts.push((
            "resourceRole",
            if actor { "ACTOR" } else { "TARGET" }.to_owned(),
        ));
        let level = if actor {
            SeverityLevel::High
        } else {
            SeverityLevel::Low
        };
        d.severity = Some(level.default_severity());
        d.title = if actor {
            format!(
                "{} is performing {name} brute force attacks against {}.",
                c.target.label(),
                c.remote
            )
        } else {
            format!(
                "{} is performing {name} brute force attacks against {}.",
                c.remote,
                c.target.label()
            )
        };
        d.description = format!(
            "{} {count} {name} connections in {} seconds.",
            d.title, self.window_secs
        );
        d.action = Some(self.connection(!actor));
        self.push(d);
    }

    fn portscan(&mut self, ports: usize) {
        let c = self.c;
        let mut d = self.draft(FindingType::ReconEc2Portscan, "flow.portscan");
        d.actor = true;
        d.title = format!(
            "{} is performing outbound port scans against remote host {}.",
            c.target.label(),
            c.remote
        );
        d.description = format!("{} {ports} distinct ports probed.", d.title);
        d.action = Some(self.connection(false));
        self.push(d);
    }

    fn port_probe(&mut self, remotes: &[Ipv4Addr]) {
        let c = self.c;
        let emr = EMR_PORTS.contains(&c.local_port);
        let t = if emr {
            FindingType::ReconEc2PortProbeEmrUnprotectedPort
        } else {
            FindingType::ReconEc2PortProbeUnprotectedPort
        };
        let mut d = self.draft(t, "flow.port-probe");
        if !emr && matches!(c.local_port, 9200 | 9300) {
            d.severity = Some(SeverityLevel::High.default_severity());
        }
        d.title = format!(
            "Unprotected port {} on {} is being probed.",
            c.local_port,
            c.target.label()
        );
        d.description = format!(
            "{} {} public addresses probed it, the latest {}.",
            d.title,
            remotes.len(),
            c.remote
        );
        d.action = Some(Action::port_probe(PortProbeAction {
            blocked: Some(false),
            port_probe_details: remotes
                .iter()
                .map(|r| PortProbeDetail {
                    local_port_details: Some(port_details(c.local_port)),
                    local_ip_details: Some(local_ip_details(IpAddr::V4(c.local))),
                    remote_ip_details: Some(remote_ip_details(IpAddr::V4(*r))),
                })
                .collect(),
        }));
        self.push(d);
    }

    fn dos(&mut self, class: usize, packets: u64, bytes: u64) {
        let c = self.c;
        let mut d = self.draft(DOS_TYPES[class], "flow.denial-of-service");
        d.actor = true;
        d.title = format!(
            "{} is behaving in a manner that may indicate it is being used to perform a denial of service attack against {}.",
            c.target.label(),
            c.remote
        );
        d.description = format!(
            "{} {packets} packets ({bytes} bytes) in one window.",
            d.title
        );
        d.action = Some(self.connection(false));
        self.push(d);
    }

    fn unusual_port(&mut self, outbound: bool) {
        let c = self.c;
        let (dir, port) = if outbound {
            ("OUTBOUND", c.remote_port)
        } else {
            ("INBOUND", c.local_port)
        };
        let mut d = self.draft(
            FindingType::BehaviorEc2NetworkPortUnusual,
            "flow.port-unusual",
        );
        d.facts.push((
            "remote",
            format!("{dir}/{}/{port}", protocol_name(c.protocol)),
        ));
        d.title = format!(
            "{} is communicating with {} on the unusual {} port {port}.",
            c.target.label(),
            c.remote,
            if outbound { "remote" } else { "local" }
        );
        d.action = Some(self.connection(!outbound));
        self.push(d);
    }

    fn spambot(&mut self, servers: usize) {
        let c = self.c;
        let mut d = self.draft(FindingType::BackdoorEc2Spambot, "flow.spambot");
        d.actor = true;
        d.title = format!(
            "{} is communicating with remote host {} on port 25.",
            c.target.label(),
            c.remote
        );
        d.description = format!(
            "{} The instance has no history of mail traffic; it contacted {servers} mail servers on port 25 within {} seconds.",
            d.title, self.probe_window_secs
        );
        d.action = Some(self.connection(false));
        self.push(d);
    }

    fn port_sweep(&mut self, hosts: usize) {
        let c = self.c;
        let mut d = self.draft(FindingType::ImpactEc2PortSweep, "flow.port-sweep");
        d.actor = true;
        d.title = format!(
            "{} is probing port {} on many public hosts.",
            c.target.label(),
            c.remote_port
        );
        d.description = format!(
            "{} {hosts} distinct public addresses probed on TCP port {} within {} seconds, the latest {}.",
            d.title, c.remote_port, self.window_secs, c.remote
        );
        d.action = Some(self.connection(false));
        self.push(d);
    }

    fn unusual_resolver(&mut self, kind: DnsKind) {
        let c = self.c;
        let mut d = self.draft(kind.finding_type(), "flow.unusual-resolver");
        d.facts
            .push(("remote", format!("{}/{}", kind.label(), c.remote)));
        let what = match kind {
            DnsKind::Dns => "the public DNS resolver",
            DnsKind::Dot => "the DNS-over-TLS server",
            DnsKind::Doh => "the DNS-over-HTTPS server",
        };
        d.title = format!(
            "{} is communicating with {what} {}, which it has not used recently.",
            c.target.label(),
            c.remote
        );
        d.description = format!(
            "{} DNS sent there bypasses the VPC resolver, its query logs and DNS Firewall.",
            d.title
        );
        d.action = Some(self.connection(false));
        self.push(d);
    }

    fn volume(&mut self, total: u64, peak: u64) {
        let c = self.c;
        let mut d = self.draft(
            FindingType::BehaviorEc2TrafficVolumeUnusual,
            "flow.volume-unusual",
        );
        d.facts.push(("remote", c.remote.to_string()));
        d.title = format!(
            "{} is generating unusually large network traffic to remote host {}.",
            c.target.label(),
            c.remote
        );
        d.description = format!(
            "{} {total} bytes sent in one hour; the largest hourly volume to one host learned for this instance is {peak} bytes.",
            d.title
        );
        d.action = Some(self.connection(c.opener == Opener::Remote));
        self.push(d);
    }
}
