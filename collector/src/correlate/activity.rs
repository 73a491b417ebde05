//! Recent runtime activity per host, indexed for the questions the log sources ask: which process
//! connected to `ip:port` (a flow-log record), which process queried `name` (a Resolver query-log
//! record), and which processes fetched instance-role credentials from IMDS.
//!
//! Time windows (event time):
//! * Connections and queries are kept for [`ActivityConfig::retention_ms`] (default 30 min)
//!   behind the newest runtime event of their host. Flow-log records cover an aggregation interval
//!   of 1 or 10 minutes and arrive 5-15 minutes after it ends, so a finding's evidence is usually
//!   10-25 minutes behind the live agent stream; 30 minutes keeps it matchable.
//! * A flow-log finding matches a connection made from [`ActivityConfig::flow_lookback_ms`]
//!   (default 15 min) before its first record's start up to 2 minutes after its last (clock skew
//!   between the host and AWS): a long-lived connection was opened before the interval that
//!   logged it.
//! * A DNS-log finding matches a query within [`ActivityConfig::dns_slack_ms`] (default 2 min)
//!   of its query time: the Resolver logs the query when it forwards it, milliseconds after the
//!   host sent it; the slack absorbs clock skew.
//! * Credential fetches are kept for [`ActivityConfig::credential_retention_ms`] (default 12 h):
//!   instance-role credentials stay valid for up to 6 hours after IMDS hands them out.
//!
//! Each host's lists are also capped ([`ActivityConfig::max_per_host`]) so a connect storm cannot
//! grow memory without bound; the oldest entries go first.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::detect::event::{EventType, Process, RuntimeEvent};
use crate::findings::time::EpochMillis;

const MINUTE: i64 = 60_000;

/// Windows and limits; see the module docs.
#[derive(Debug, Clone)]
pub struct ActivityConfig {
    pub retention_ms: i64,
    pub flow_lookback_ms: i64,
    pub flow_lookahead_ms: i64,
    pub dns_slack_ms: i64,
    pub credential_retention_ms: i64,
    pub max_per_host: usize,
    /// Credential fetches kept per host (they are persisted; a host polling IMDS in a loop must
    /// not grow the state without bound).
    pub max_fetches_per_host: usize,
    /// Where instance metadata answers: a connect here is a credential fetch candidate. EC2's
    /// `169.254.169.254:80` and `[fd00:ec2::254]:80` by default; tests point it at loopback.
    pub imds_endpoints: Vec<SocketAddr>,
}

impl Default for ActivityConfig {
    fn default() -> Self {
        Self {
            retention_ms: 30 * MINUTE,
            flow_lookback_ms: 15 * MINUTE,
            flow_lookahead_ms: 2 * MINUTE,
            dns_slack_ms: 2 * MINUTE,
            credential_retention_ms: 12 * 60 * MINUTE,
            max_per_host: 200_000,
            max_fetches_per_host: 1_000,
            imds_endpoints: vec![
                "169.254.169.254:80".parse().expect("valid"),
                "[fd00:ec2::254]:80".parse().expect("valid"),
            ],
        }
    }
}

/// A connection (outbound `net_connect` or inbound `net_accept`) made by a process.
#[derive(Debug, Clone)]
pub struct Connection {
    pub time: EpochMillis,
    pub kind: EventType,
    pub remote: SocketAddr,
    pub local_port: Option<u16>,
    pub process: Arc<Process>,
}

/// A DNS query made by a process.
#[derive(Debug, Clone)]
pub struct Query {
    pub time: EpochMillis,
    pub process: Arc<Process>,
}

/// A process that may have taken the instance's role credentials.
#[derive(Debug, Clone)]
pub struct CredentialFetch {
    pub time: EpochMillis,
    /// `connect <ip:port>` (with `, path in command line` when argv names the credentials path).
    pub how: String,
    /// The command line names the IMDS credentials path: stronger evidence than a connect alone.
    pub names_credentials_path: bool,
    pub process: Arc<Process>,
    /// Where the event is in the agent batch log (persistence refers to it instead of copying it).
    pub origin: Option<EventOrigin>,
}

/// Where an agent event is in the batch log: the byte offset of its batch and its index there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventOrigin {
    pub offset: u64,
    pub index: u32,
}

#[derive(Debug, Default)]
struct HostActivity {
    newest: EpochMillis,
    connections: VecDeque<Connection>,
    queries: HashMap<String, VecDeque<Query>>,
    query_order: VecDeque<(EpochMillis, String)>,
    fetches: VecDeque<CredentialFetch>,
    /// The last process seen, shared by consecutive events of one process.
    last_process: Option<Arc<Process>>,
}

/// The index over every host.
#[derive(Debug, Default)]
pub struct Activity {
    config: ActivityConfig,
    hosts: HashMap<String, HostActivity>,
}

/// Query names compare without case and without the root dot.
pub fn normalise_name(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// Local resolvers forward the queries of other processes: the application behind a query is the
/// one that asked the local resolver, so these come last when choosing.
const RESOLVER_DAEMONS: &[&str] = &[
    "systemd-resolve",
    "systemd-resolved",
    "dnsmasq",
    "unbound",
    "named",
    "nscd",
    "coredns",
    "node-local-dns",
];

fn is_resolver(p: &Process) -> bool {
    RESOLVER_DAEMONS.contains(&p.name.as_str()) || RESOLVER_DAEMONS.contains(&p.exe_basename())
}

impl Activity {
    pub fn new(config: ActivityConfig) -> Self {
        Self {
            config,
            hosts: HashMap::new(),
        }
    }

    pub fn config(&self) -> &ActivityConfig {
        &self.config
    }

    /// True for the event types the index keeps (the pipeline hands only these over).
    pub fn wants(kind: EventType) -> bool {
        matches!(
            kind,
            EventType::NetConnect | EventType::NetAccept | EventType::DnsQuery
        )
    }

    /// Indexes one agent event of the host `instance_id`. Events of other types are ignored.
    pub fn observe(&mut self, instance_id: &str, ev: &RuntimeEvent) {
        self.observe_at(instance_id, ev, None);
    }

    /// [`Activity::observe`] for an event at `origin` in the batch log. A credential fetch already
    /// indexed from the same origin (restored, then met again when the log is replayed) is not
    /// added twice. Returns true when a credential fetch was added.
    pub fn observe_at(
        &mut self,
        instance_id: &str,
        ev: &RuntimeEvent,
        origin: Option<EventOrigin>,
    ) -> bool {
        if !Self::wants(ev.kind) {
            return false;
        }
        let (Some(time), Some(process)) = (ev.time_millis(), ev.process.as_ref()) else {
            return false;
        };
        let mut fetched = false;
        let host = self.hosts.entry(instance_id.to_owned()).or_default();
        let process = match &host.last_process {
            Some(p) if p.pid == process.pid && p.start_time == process.start_time => p.clone(),
            _ => {
                let p = Arc::new(process.clone());
                host.last_process = Some(p.clone());
                p
            }
        };
        host.newest = host.newest.max(time);
        match ev.kind {
            EventType::DnsQuery => {
                for q in ev.dns.iter().flat_map(|d| &d.questions) {
                    let name = normalise_name(&q.name);
                    if name.is_empty() {
                        continue;
                    }
                    host.queries
                        .entry(name.clone())
                        .or_default()
                        .push_back(Query {
                            time,
                            process: process.clone(),
                        });
                    host.query_order.push_back((time, name));
                }
            }
            _ => {
                let Some(socket) = ev.socket.as_ref().filter(|s| s.is_inet()) else {
                    return false;
                };
                let Some(remote) = socket.remote.as_ref() else {
                    return false;
                };
                let Ok(ip) = remote.ip.parse::<IpAddr>() else {
                    return false;
                };
                let remote = SocketAddr::new(ip, remote.port);
                let known = origin.is_some() && host.fetches.iter().any(|f| f.origin == origin);
                if ev.kind == EventType::NetConnect
                    && self.config.imds_endpoints.contains(&remote)
                    && !known
                {
                    let names_path = process
                        .args
                        .iter()
                        .any(|a| a.contains("/latest/meta-data/iam/security-credentials"));
                    host.fetches.push_back(CredentialFetch {
                        time,
                        how: if names_path {
                            format!("connect {remote}, credentials path in command line")
                        } else {
                            format!("connect {remote}")
                        },
                        names_credentials_path: names_path,
                        process: process.clone(),
                        origin,
                    });
                    fetched = true;
                }
                host.connections.push_back(Connection {
                    time,
                    kind: ev.kind,
                    remote,
                    local_port: socket.local.as_ref().map(|l| l.port).filter(|p| *p != 0),
                    process,
                });
            }
        }
        Self::expire(&self.config, host);
        fetched
    }

    fn expire(config: &ActivityConfig, host: &mut HostActivity) {
        let cutoff = host.newest - config.retention_ms;
        while host
            .connections
            .front()
            .is_some_and(|c| c.time < cutoff || host.connections.len() > config.max_per_host)
        {
            host.connections.pop_front();
        }
        while let Some((t, _)) = host.query_order.front() {
            if *t >= cutoff && host.query_order.len() <= config.max_per_host {
                break;
            }
            let (t, name) = host.query_order.pop_front().expect("front exists");
            if let Some(list) = host.queries.get_mut(&name) {
                while list.front().is_some_and(|q| q.time <= t) {
                    list.pop_front();
                }
                if list.is_empty() {
                    host.queries.remove(&name);
                }
            }
        }
        let cutoff = host.newest - config.credential_retention_ms;
        let max_fetches = config.max_fetches_per_host.min(config.max_per_host);
        while host
            .fetches
            .front()
            .is_some_and(|f| f.time < cutoff || host.fetches.len() > max_fetches)
        {
            host.fetches.pop_front();
        }
    }

    /// The newest event time indexed for the host.
    pub fn newest(&self, instance_id: &str) -> Option<EpochMillis> {
        self.hosts.get(instance_id).map(|h| h.newest)
    }

    /// The newest event time indexed for any host.
    pub fn newest_overall(&self) -> Option<EpochMillis> {
        self.hosts.values().map(|h| h.newest).max()
    }

    /// Every credential fetch still kept that came from the batch log: `(instance, origin)`,
    /// oldest first per host.
    pub fn fetch_origins(&self) -> Vec<(String, EventOrigin)> {
        let mut instances: Vec<&String> = self.hosts.keys().collect();
        instances.sort();
        instances
            .into_iter()
            .flat_map(|i| {
                self.hosts[i]
                    .fetches
                    .iter()
                    .filter_map(move |f| f.origin.map(|o| (i.clone(), o)))
            })
            .collect()
    }

    /// The process that queried `name` on the host nearest to `at`, and how many queries matched.
    pub fn query_by(
        &self,
        instance_id: &str,
        name: &str,
        at: EpochMillis,
    ) -> Option<(&Query, u32)> {
        let list = self
            .hosts
            .get(instance_id)?
            .queries
            .get(&normalise_name(name))?;
        let slack = self.config.dns_slack_ms;
        let candidates: Vec<&Query> = list
            .iter()
            .filter(|q| (q.time - at).abs() <= slack)
            .collect();
        let best = candidates
            .iter()
            .min_by_key(|q| (is_resolver(&q.process), (q.time - at).abs()))?;
        Some((best, candidates.len() as u32))
    }

    /// The connection to (outbound) or from (inbound) `remote` on the host during a flow window
    /// `[first, last]`: the latest one opened in the window (widened as the module docs say),
    /// preferring an exact local-port match when the finding names one.
    pub fn connection_to(
        &self,
        instance_id: &str,
        remote: SocketAddr,
        local_port: Option<u16>,
        inbound: bool,
        first: EpochMillis,
        last: EpochMillis,
    ) -> Option<(&Connection, u32)> {
        let host = self.hosts.get(instance_id)?;
        let from = first - self.config.flow_lookback_ms;
        let to = last + self.config.flow_lookahead_ms;
        let kind = if inbound {
            EventType::NetAccept
        } else {
            EventType::NetConnect
        };
        let candidates: Vec<&Connection> = host
            .connections
            .iter()
            .filter(|c| {
                c.kind == kind
                    && c.time >= from
                    && c.time <= to
                    && c.remote.ip() == remote.ip()
                    && (remote.port() == 0 || c.remote.port() == remote.port())
            })
            .collect();
        let best = candidates.iter().max_by_key(|c| {
            (
                local_port.is_some() && c.local_port == local_port,
                c.time <= last,
                if c.time <= last { c.time } else { -c.time },
            )
        })?;
        Some((best, candidates.len() as u32))
    }

    /// Credential fetches on the host from `since` up to `until`, newest first.
    pub fn credential_fetches(
        &self,
        instance_id: &str,
        since: EpochMillis,
        until: EpochMillis,
    ) -> Vec<&CredentialFetch> {
        let Some(host) = self.hosts.get(instance_id) else {
            return Vec::new();
        };
        let mut out: Vec<&CredentialFetch> = host
            .fetches
            .iter()
            .filter(|f| f.time >= since && f.time <= until)
            .collect();
        out.reverse();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(json: &str) -> RuntimeEvent {
        RuntimeEvent::from_json(json).unwrap()
    }

    fn connect(at: &str, pid: u32, name: &str, ip: &str, port: u16) -> RuntimeEvent {
        event(&format!(
            r#"{{"type":"net_connect","time":"{at}","process":{{"pid":{pid},"start_time":"2026-01-01T00:00:00Z","name":"{name}","executable":"/usr/bin/{name}"}},
               "socket":{{"family":"inet","protocol":"tcp","local":{{"ip":"10.0.0.5","port":40000}},"remote":{{"ip":"{ip}","port":{port}}}}}}}"#
        ))
    }

    fn query(at: &str, pid: u32, name: &str, qname: &str) -> RuntimeEvent {
        event(&format!(
            r#"{{"type":"dns_query","time":"{at}","process":{{"pid":{pid},"start_time":"2026-01-01T00:00:00Z","name":"{name}"}},
               "dns":{{"id":1,"questions":[{{"name":"{qname}","type":"A","class":"IN"}}],"transport":"udp"}}}}"#
        ))
    }

    fn t(s: &str) -> EpochMillis {
        crate::findings::time::parse_millis(s).unwrap()
    }

    #[test]
    fn queries_match_by_name_preferring_the_application_over_the_local_resolver() {
        let mut a = Activity::default();
        a.observe(
            "i-1",
            &query("2026-01-01T10:00:00Z", 10, "xmrig", "Pool.Example.COM"),
        );
        a.observe(
            "i-1",
            &query(
                "2026-01-01T10:00:00.010Z",
                5,
                "systemd-resolve",
                "pool.example.com",
            ),
        );
        let (q, n) = a
            .query_by("i-1", "pool.example.com.", t("2026-01-01T10:00:00.020Z"))
            .unwrap();
        assert_eq!((q.process.name.as_str(), n), ("xmrig", 2));
        // Outside the slack, or on another host: nothing.
        assert!(
            a.query_by("i-1", "pool.example.com", t("2026-01-01T10:05:00Z"))
                .is_none()
        );
        assert!(
            a.query_by("i-2", "pool.example.com", t("2026-01-01T10:00:00Z"))
                .is_none()
        );
    }

    #[test]
    fn connections_match_within_the_flow_window_and_expire() {
        let mut a = Activity::default();
        a.observe(
            "i-1",
            &connect("2026-01-01T10:00:00Z", 10, "old", "198.51.100.7", 3333),
        );
        a.observe(
            "i-1",
            &connect("2026-01-01T10:09:00Z", 11, "miner", "198.51.100.7", 3333),
        );
        a.observe(
            "i-1",
            &connect("2026-01-01T10:09:30Z", 12, "other", "198.51.100.7", 443),
        );
        // A 10-minute flow record starting 10:05 that ends 10:15.
        let (c, n) = a
            .connection_to(
                "i-1",
                "198.51.100.7:3333".parse().unwrap(),
                None,
                false,
                t("2026-01-01T10:05:00Z"),
                t("2026-01-01T10:15:00Z"),
            )
            .unwrap();
        assert_eq!((c.process.name.as_str(), n), ("miner", 2));
        assert!(
            a.connection_to(
                "i-1",
                "198.51.100.7:3333".parse().unwrap(),
                None,
                true,
                t("2026-01-01T10:05:00Z"),
                t("2026-01-01T10:15:00Z"),
            )
            .is_none(),
            "an outbound connect is not an inbound flow"
        );
        // 40 minutes later the old connections are gone.
        a.observe(
            "i-1",
            &connect("2026-01-01T10:50:00Z", 13, "late", "192.0.2.1", 80),
        );
        assert!(
            a.connection_to(
                "i-1",
                "198.51.100.7:3333".parse().unwrap(),
                None,
                false,
                t("2026-01-01T10:05:00Z"),
                t("2026-01-01T10:15:00Z"),
            )
            .is_none()
        );
    }

    #[test]
    fn imds_connects_are_credential_fetches() {
        let mut a = Activity::new(ActivityConfig {
            imds_endpoints: vec!["127.0.0.1:8099".parse().unwrap()],
            ..ActivityConfig::default()
        });
        a.observe(
            "i-1",
            &connect("2026-01-01T10:00:00Z", 10, "curl", "127.0.0.1", 8099),
        );
        a.observe(
            "i-1",
            &connect("2026-01-01T10:00:01Z", 11, "curl", "127.0.0.1", 8098),
        );
        let fetches =
            a.credential_fetches("i-1", t("2026-01-01T09:00:00Z"), t("2026-01-01T11:00:00Z"));
        assert_eq!(fetches.len(), 1);
        assert_eq!(fetches[0].process.pid, 10);
        assert_eq!(fetches[0].how, "connect 127.0.0.1:8099");
    }
}
