//! EC2 findings from VPC Flow Logs (spec §5.1).
//!
//! One detector ([`FlowDetector`]) sees every flow record once: it turns the record into the
//! instance's view ([`conn::Conn`]: local and remote side, who opened the connection, which way
//! the packets went) and runs each analysis on that view, keeping all state of one instance in one
//! place so a record costs one lookup of its instance.
//!
//! GuardDuty does not publish its thresholds; Ward's are below ([`FlowConfig`] holds them).
//! Windows are tumbling windows of event time (the record's `start`), so a replay gives the same
//! findings as live ingestion; a record older than the instance's current window is counted only
//! by the threat-list and baseline analyses (it is too late for its window). Flow records already
//! aggregate one 5-tuple over 1–10 minutes: "connections" are counted as records (each new TCP
//! connection has a new source port, so a new record), packets and bytes from the record's fields.
//!
//! | Finding | Trigger (defaults) | Role / severity |
//! |---|---|---|
//! | `UnauthorizedAccess:EC2/SSHBruteForce`, `RDPBruteForce`, `Impact:EC2/WinRMBruteForce` | ≥ 20 TCP connections from one remote address to local port 22 / 3389 / 5985-5986 in 10 min (TARGET), or from the instance to one remote address on that port (ACTOR) | TARGET Low, ACTOR High |
//! | `Recon:EC2/Portscan` | the instance opens probe-shaped connections (≤ 3 packets) to ≥ 20 distinct ports of one remote host in 10 min | ACTOR, Medium |
//! | `Recon:EC2/PortProbeUnprotectedPort` | accepted probe-shaped inbound connections (≤ 3 packets) from ≥ 5 distinct public addresses to one local port in 60 min | Low; High on 9200/9300 |
//! | `Recon:EC2/PortProbeEMRUnprotectedPort` | the same on an EMR web-UI port (8088, 8042, 8890, 18080, 20888, 9870, 50070, 16010, 8998, 9443) | High |
//! | `Backdoor:EC2/DenialOfService.{Tcp,Udp,UdpOnTcpPorts,Dns,UnusualProtocol}` | ≥ 100,000 packets from the instance to one public address in 10 min (TCP: average ≤ 200 bytes per packet, a flood rather than an upload); `.Dns`: port 53; `.UdpOnTcpPorts`: UDP to a TCP-only service port; `.UnusualProtocol`: not TCP, UDP or ICMP | ACTOR, High |
//! | `Behavior:EC2/NetworkPortUnusual` | after the learning period, an accepted connection to a public remote port (outbound) or from a public address to a local port (inbound) the instance never used | Medium |
//! | `Behavior:EC2/TrafficVolumeUnusual` | after the learning period, bytes sent to one public address in one hour above 10 × the instance's largest hourly volume to any one address, and above 100 MiB | Medium |
//! | `Backdoor:EC2/Spambot` | after the learning period, an instance that sent no mail while learning opens TCP connections to port 25 of ≥ 3 distinct public addresses in 60 min; reported once, then its mail is its history | ACTOR, Medium |
//! | `Impact:EC2/PortSweep` | the instance opens probe-shaped TCP connections (≤ 3 packets) to one remote port on ≥ 25 distinct public addresses in 10 min | ACTOR, High |
//! | `DefenseEvasion:EC2/UnusualDNSResolver`, `UnusualDoTActivity`, `UnusualDoHActivity` | after the learning period, an accepted connection from the instance to a public resolver it has not used in 30 days: UDP/TCP 53 to a listed resolver, TCP 853 to any public address (DoT), TCP/UDP 443 to a listed DoH endpoint ([`resolvers`]: the shipped list `collector/intel/public-resolvers.txt`) | Medium |
//! | `Backdoor:EC2/C&CActivity.B`, `CryptoCurrency:EC2/BitcoinTool.B`, `Trojan:EC2/BlackholeTraffic`, `Trojan:EC2/DropPoint`, `UnauthorizedAccess:EC2/TorClient`, `TorRelay`, `MaliciousIPCaller.Custom` | the remote address is on a threat list; the type follows the list's category (`intel::classify`), `.Custom` without one; a Tor node connecting in makes the instance a relay | as catalogued |
//!
//! Baselines (learned ports, largest hourly volume, public resolvers used and when, whether the
//! instance sends mail, learning start) are per instance and persisted
//! through [`crate::foundational::LogDetector::save_state`]. The learning period
//! (`Settings::learning_period_ms`, default 7 days) is counted from the first record of each
//! instance. Threat-list categories come from `Settings::threat_categories`. Internal traffic (both sides private) feeds
//! brute-force and port-scan detection but not the baselines or probes, which are about exposure
//! to the internet.
//!
//! Resource: the instance (`instance-id` when the format has it), else the network interface
//! (`instanceDetails.networkInterfaces[0].networkInterfaceId`, no instance id).

pub mod conn;
pub mod finding;
mod instance;
mod peers;
pub mod resolvers;

use serde::{Deserialize, Serialize};

use crate::event::{Event, Record, SourceKind};
use crate::findings::Occurrence;
use crate::foundational::{LogContext, LogDetector};

pub use instance::FlowDetector;

/// Thresholds and windows of the flow analyses (see the module table).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct FlowConfig {
    /// Brute force and port scan window, seconds.
    pub window_secs: u64,
    pub brute_force_connections: u32,
    pub portscan_ports: usize,
    /// A connection with at most this many packets (in the record's direction) is "probe-shaped".
    pub probe_max_packets: u64,
    pub probe_window_secs: u64,
    pub probe_remotes: usize,
    pub dos_packets: u64,
    /// A TCP flood sends small packets; uploads do not count.
    pub dos_tcp_max_bytes_per_packet: u64,
    pub volume_factor: u64,
    pub volume_floor_bytes: u64,
    /// Largest number of ports one instance's baseline keeps.
    pub max_baseline_ports: usize,
    /// Distinct public mail servers (TCP 25) an instance without mail history contacts in one
    /// probe window before it is a spambot.
    pub spambot_remotes: usize,
    /// Distinct public hosts probed on one TCP port in one window before it is a port sweep.
    pub sweep_remotes: usize,
    /// A public resolver not used for this long (seconds) is unusual again.
    pub resolver_recent_secs: u64,
    /// Largest number of public resolvers one instance's baseline keeps.
    pub max_resolvers: usize,
}

impl Default for FlowConfig {
    fn default() -> Self {
        Self {
            window_secs: 600,
            brute_force_connections: 20,
            portscan_ports: 20,
            probe_max_packets: 3,
            probe_window_secs: 3600,
            probe_remotes: 5,
            dos_packets: 100_000,
            dos_tcp_max_bytes_per_packet: 200,
            volume_factor: 10,
            volume_floor_bytes: 100 << 20,
            max_baseline_ports: 4096,
            spambot_remotes: 3,
            sweep_remotes: 25,
            resolver_recent_secs: 30 * 24 * 3600,
            max_resolvers: 64,
        }
    }
}

/// EMR web interfaces GuardDuty's EMR variant is about (YARN ResourceManager and NodeManager,
/// Zeppelin, Spark history, the YARN web proxy, HDFS NameNode (Hadoop 3 and 2), HBase, Livy,
/// JupyterHub).
pub const EMR_PORTS: &[u16] = &[
    8088, 8042, 8890, 18080, 20888, 9870, 50070, 16010, 8998, 9443,
];

/// Services that run over TCP only: UDP floods aimed at them are `DenialOfService.UdpOnTcpPorts`.
/// 80 and 443 are not in it: QUIC (HTTP/3) is UDP on those ports.
pub const TCP_ONLY_PORTS: &[u16] = &[
    21, 22, 23, 25, 110, 135, 139, 143, 445, 993, 995, 1433, 3306, 3389, 5432, 5985, 5986, 6379,
];

impl LogDetector for FlowDetector {
    fn name(&self) -> &'static str {
        "vpc-flow"
    }

    fn sources(&self) -> &'static [SourceKind] {
        &[SourceKind::VpcFlow]
    }

    fn on_event(&mut self, event: &Event<'_>, ctx: &LogContext<'_>, out: &mut Vec<Occurrence>) {
        if let Record::Flow(record) = event.record {
            self.record(record, event, ctx, out);
        }
    }

    fn on_time(&mut self, now_ms: i64, _ctx: &LogContext<'_>, _out: &mut Vec<Occurrence>) {
        // The engine calls this whenever event time moves; sweeping once a window is enough.
        let now = (now_ms.max(0) / 1000) as u64;
        if now >= self.swept_at() + self.config().window_secs {
            self.sweep(now);
        }
    }

    fn save_state(&self) -> Option<serde_json::Value> {
        Some(self.baselines_json())
    }

    fn restore_state(&mut self, state: serde_json::Value) -> Result<(), String> {
        self.restore_baselines(state)
    }
}

#[cfg(test)]
mod tests;
