//! The host map: which EC2 instance an agent runs on, and which instance held an address when.
//!
//! Two sources fill it:
//! * agent Hello messages ([`HostMap::observe_hello`]): instance id, ENIs, private and public
//!   addresses, instance profile, Kubernetes node, at the time the Hello arrived;
//! * a file of instances without agents ([`HostMap::load_file`], TOML or JSON), whose addresses
//!   hold for a configured range (default: always).
//!
//! Addresses move (an Elastic IP re-associated, a private address reused after termination), so an
//! address is held by an instance over a time range ([`Lease`]). A Hello that no longer lists an
//! address ends that lease; an address announced by another instance ends the previous holder's
//! lease. [`HostMap::instance_at`] answers "who was `ip` at `t`" in event time. A log record older
//! than the first Hello that announced an address is attributed to that first holder when no other
//! lease covers the time: the address was assigned before the agent started.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::event::net::parse_ip_lenient;
use crate::findings::time::{EpochMillis, parse_millis};

/// What the collector knows about one instance.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HostRecord {
    pub instance_id: String,
    /// The agent on it (certificate identity), when it has one.
    pub agent_id: Option<String>,
    pub hostname: Option<String>,
    pub account_id: Option<String>,
    pub region: Option<String>,
    pub image_id: Option<String>,
    pub vpc_id: Option<String>,
    pub instance_profile_arn: Option<String>,
    pub autoscaling_group: Option<String>,
    pub kubernetes_node: Option<String>,
    /// ENI ids.
    pub interfaces: Vec<String>,
}

impl HostRecord {
    /// The instance group GuardDuty's EC2 attack sequence spans: instances sharing an Auto Scaling
    /// group, else an instance profile; an instance with neither is its own group.
    pub fn group(&self) -> String {
        if let Some(asg) = &self.autoscaling_group {
            return format!("asg:{asg}");
        }
        if let Some(profile) = &self.instance_profile_arn {
            return format!("profile:{profile}");
        }
        format!("instance:{}", self.instance_id)
    }
}

/// One address held by one instance from `from` until `until` (exclusive; `None`: still held).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub instance_id: String,
    pub from: EpochMillis,
    pub until: Option<EpochMillis>,
}

impl Lease {
    fn covers(&self, t: EpochMillis) -> bool {
        self.from <= t && self.until.is_none_or(|u| t < u)
    }
}

/// Kept in the correlator's persisted state ([`super::state`]) as it is.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct HostMap {
    hosts: BTreeMap<String, HostRecord>,
    /// Leases per address, in order of `from`.
    leases: HashMap<IpAddr, Vec<Lease>>,
    by_agent: HashMap<String, String>,
    by_eni: HashMap<String, String>,
}

/// A file of instances (`[[instance]]` tables in TOML, or a JSON array / `{"instance": [...]}`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HostFile {
    #[serde(default)]
    instance: Vec<ConfiguredHost>,
}

/// One instance from configuration.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfiguredHost {
    pub instance_id: String,
    #[serde(default)]
    pub hostname: Option<String>,
    #[serde(default)]
    pub account_id: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub vpc_id: Option<String>,
    #[serde(default)]
    pub image_id: Option<String>,
    #[serde(default)]
    pub instance_profile_arn: Option<String>,
    #[serde(default)]
    pub autoscaling_group: Option<String>,
    #[serde(default)]
    pub enis: Vec<String>,
    #[serde(default)]
    pub private_ips: Vec<String>,
    #[serde(default)]
    pub public_ips: Vec<String>,
    /// RFC 3339: the addresses are held from then (default: always).
    #[serde(default)]
    pub from: Option<String>,
    /// RFC 3339: the addresses are held until then (default: still held).
    #[serde(default)]
    pub until: Option<String>,
}

impl HostMap {
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads a TOML (`.toml`) or JSON file of instances; every error names the file and entry.
    pub fn load_file(&mut self, path: &Path) -> Result<usize, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("{}: cannot read host file: {e}", path.display()))?;
        let hosts: Vec<ConfiguredHost> = if path.extension().is_some_and(|e| e == "toml") {
            toml::from_str::<HostFile>(&text)
                .map_err(|e| format!("{}: {e}", path.display()))?
                .instance
        } else {
            let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
                format!(
                    "{}:{}:{}: not JSON: {e}",
                    path.display(),
                    e.line(),
                    e.column()
                )
            })?;
            let list = match value {
                serde_json::Value::Array(_) => value,
                serde_json::Value::Object(mut o) => o.remove("instance").unwrap_or_default(),
                _ => serde_json::Value::Null,
            };
            let serde_json::Value::Array(items) = list else {
                return Err(format!(
                    "{}: expected an array of instances or {{\"instance\": [...]}}",
                    path.display()
                ));
            };
            items
                .into_iter()
                .enumerate()
                .map(|(i, v)| {
                    serde_json::from_value(v)
                        .map_err(|e| format!("{}: instance #{i}: {e}", path.display()))
                })
                .collect::<Result<_, _>>()?
        };
        let n = hosts.len();
        for (i, host) in hosts.into_iter().enumerate() {
            self.add_configured(host)
                .map_err(|e| format!("{}: instance #{i}: {e}", path.display()))?;
        }
        Ok(n)
    }

    /// Adds an instance from configuration.
    pub fn add_configured(&mut self, host: ConfiguredHost) -> Result<(), String> {
        if host.instance_id.is_empty() {
            return Err("instance_id is empty".into());
        }
        let time = |t: &Option<String>, what: &str| -> Result<Option<EpochMillis>, String> {
            t.as_deref()
                .map(|s| parse_millis(s).ok_or_else(|| format!("{what} {s:?} is not RFC 3339")))
                .transpose()
        };
        let from = time(&host.from, "from")?.unwrap_or(EpochMillis::MIN);
        let until = time(&host.until, "until")?;
        let mut ips = Vec::new();
        for text in host.private_ips.iter().chain(&host.public_ips) {
            ips.push(parse_ip_lenient(text).ok_or_else(|| format!("{text:?} is not an address"))?);
        }
        let record = self
            .hosts
            .entry(host.instance_id.clone())
            .or_insert_with(|| HostRecord {
                instance_id: host.instance_id.clone(),
                ..HostRecord::default()
            });
        merge(&mut record.hostname, host.hostname);
        merge(&mut record.account_id, host.account_id);
        merge(&mut record.region, host.region);
        merge(&mut record.vpc_id, host.vpc_id);
        merge(&mut record.image_id, host.image_id);
        merge(&mut record.instance_profile_arn, host.instance_profile_arn);
        merge(&mut record.autoscaling_group, host.autoscaling_group);
        for eni in host.enis {
            self.by_eni.insert(eni.clone(), host.instance_id.clone());
            if !record.interfaces.contains(&eni) {
                record.interfaces.push(eni);
            }
        }
        for ip in ips {
            let leases = self.leases.entry(ip).or_default();
            let lease = Lease {
                instance_id: host.instance_id.clone(),
                from,
                until,
            };
            // The same file read again at a restart (over the restored map) adds nothing.
            if !leases.contains(&lease) {
                leases.push(lease);
                leases.sort_by_key(|l| l.from);
            }
        }
        Ok(())
    }

    /// An agent's Hello, received at event time `at`: records the host and moves its leases to the
    /// addresses it announces now. Hellos without an instance id (not on EC2, nothing configured)
    /// are ignored: nothing in the logs can refer to them.
    pub fn observe_hello(
        &mut self,
        agent_id: &str,
        hello: &ward_proto::v1::HostIdentity,
        at: EpochMillis,
    ) {
        let id = hello.instance_id.trim();
        if id.is_empty() {
            return;
        }
        let some = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        let record = self
            .hosts
            .entry(id.to_owned())
            .or_insert_with(|| HostRecord {
                instance_id: id.to_owned(),
                ..HostRecord::default()
            });
        record.agent_id = some(agent_id);
        merge(&mut record.hostname, some(&hello.hostname));
        merge(&mut record.account_id, some(&hello.account_id));
        merge(&mut record.region, some(&hello.region));
        merge(&mut record.image_id, some(&hello.image_id));
        merge(
            &mut record.instance_profile_arn,
            some(&hello.instance_profile_arn),
        );
        merge(&mut record.kubernetes_node, some(&hello.kubernetes_node));
        for eni in &hello.interfaces {
            merge(&mut record.vpc_id, some(&eni.vpc_id));
            if !eni.id.is_empty() {
                self.by_eni.insert(eni.id.clone(), id.to_owned());
                if !record.interfaces.contains(&eni.id) {
                    record.interfaces.push(eni.id.clone());
                }
            }
        }
        self.by_agent.insert(agent_id.to_owned(), id.to_owned());

        let announced: Vec<IpAddr> = hello
            .private_ips
            .iter()
            .chain(hello.interfaces.iter().flat_map(|i| &i.private_ips))
            .chain(hello.interfaces.iter().flat_map(|i| &i.public_ips))
            .filter_map(|s| parse_ip_lenient(s.trim()))
            .collect();
        // End this instance's open leases on addresses it no longer announces.
        for (ip, leases) in self.leases.iter_mut() {
            if announced.contains(ip) {
                continue;
            }
            for lease in leases.iter_mut() {
                if lease.instance_id == id && lease.until.is_none() && lease.from <= at {
                    lease.until = Some(at);
                }
            }
        }
        for ip in announced {
            let leases = self.leases.entry(ip).or_default();
            if leases
                .iter()
                .any(|l| l.instance_id == id && l.until.is_none())
            {
                continue;
            }
            // The address moved here: whoever held it stops holding it now.
            for lease in leases.iter_mut() {
                if lease.until.is_none() && lease.from <= at {
                    lease.until = Some(at);
                }
            }
            leases.push(Lease {
                instance_id: id.to_owned(),
                from: at,
                until: None,
            });
            leases.sort_by_key(|l| l.from);
        }
    }

    pub fn host(&self, instance_id: &str) -> Option<&HostRecord> {
        self.hosts.get(instance_id)
    }

    pub fn hosts(&self) -> impl Iterator<Item = &HostRecord> {
        self.hosts.values()
    }

    pub fn instance_of_agent(&self, agent_id: &str) -> Option<&str> {
        self.by_agent.get(agent_id).map(String::as_str)
    }

    pub fn instance_of_eni(&self, eni: &str) -> Option<&str> {
        self.by_eni.get(eni).map(String::as_str)
    }

    /// The instance that held `ip` at `t` (see the module docs for times before the first Hello).
    pub fn instance_at(&self, ip: IpAddr, t: EpochMillis) -> Option<&str> {
        let leases = self.leases.get(&ip)?;
        if let Some(l) = leases.iter().rev().find(|l| l.covers(t)) {
            return Some(&l.instance_id);
        }
        leases
            .first()
            .filter(|l| t < l.from)
            .map(|l| l.instance_id.as_str())
    }

    /// True when `ip` was one of `instance_id`'s addresses at `t`.
    pub fn held_by(&self, ip: IpAddr, instance_id: &str, t: EpochMillis) -> bool {
        self.instance_at(ip, t) == Some(instance_id)
    }

    /// Every lease of `ip`, oldest first.
    pub fn leases(&self, ip: IpAddr) -> &[Lease] {
        self.leases.get(&ip).map(Vec::as_slice).unwrap_or_default()
    }
}

/// Keeps a known value unless a new one arrives.
fn merge(field: &mut Option<String>, value: Option<String>) {
    if let Some(v) = value.filter(|v| !v.is_empty()) {
        *field = Some(v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ward_proto::v1::{HostIdentity, NetworkInterface};

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn hello(id: &str, private: &[&str], public: &[&str]) -> HostIdentity {
        HostIdentity {
            instance_id: id.into(),
            hostname: format!("host-{id}"),
            instance_profile_arn: "arn:aws:iam::1:instance-profile/web".into(),
            interfaces: vec![NetworkInterface {
                id: format!("eni-{id}"),
                private_ips: private.iter().map(|s| s.to_string()).collect(),
                public_ips: public.iter().map(|s| s.to_string()).collect(),
                vpc_id: "vpc-1".into(),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn addresses_are_looked_up_by_time() {
        let mut map = HostMap::new();
        map.observe_hello("a1", &hello("i-a", &["10.0.0.5"], &["203.0.113.9"]), 1_000);
        assert_eq!(map.instance_at(ip("10.0.0.5"), 2_000), Some("i-a"));
        assert_eq!(map.instance_at(ip("203.0.113.9"), 2_000), Some("i-a"));
        // Before the first Hello: the address was already assigned.
        assert_eq!(map.instance_at(ip("10.0.0.5"), 10), Some("i-a"));
        // The Elastic IP moves to i-b at t=5000.
        map.observe_hello("b1", &hello("i-b", &["10.0.0.7"], &["203.0.113.9"]), 5_000);
        assert_eq!(map.instance_at(ip("203.0.113.9"), 4_999), Some("i-a"));
        assert_eq!(map.instance_at(ip("203.0.113.9"), 5_000), Some("i-b"));
        // i-a reconnects without its public address: its remaining lease is unaffected.
        map.observe_hello("a1", &hello("i-a", &["10.0.0.5"], &[]), 6_000);
        assert_eq!(map.instance_at(ip("203.0.113.9"), 7_000), Some("i-b"));
        assert_eq!(map.instance_at(ip("10.0.0.5"), 7_000), Some("i-a"));
        // i-a drops its private address at 8000: nobody holds it afterwards.
        map.observe_hello("a1", &hello("i-a", &["10.0.0.6"], &[]), 8_000);
        assert_eq!(map.instance_at(ip("10.0.0.5"), 7_999), Some("i-a"));
        assert_eq!(map.instance_at(ip("10.0.0.5"), 8_000), None);
        assert!(map.held_by(ip("10.0.0.6"), "i-a", 9_000));
        assert_eq!(map.instance_of_agent("b1"), Some("i-b"));
        assert_eq!(map.instance_of_eni("eni-i-a"), Some("i-a"));
        let a = map.host("i-a").unwrap();
        assert_eq!(a.hostname.as_deref(), Some("host-i-a"));
        assert_eq!(a.vpc_id.as_deref(), Some("vpc-1"));
        assert_eq!(a.group(), "profile:arn:aws:iam::1:instance-profile/web");
    }

    #[test]
    fn hellos_without_an_instance_are_ignored() {
        let mut map = HostMap::new();
        map.observe_hello("laptop", &HostIdentity::default(), 1);
        assert_eq!(map.hosts().count(), 0);
    }

    #[test]
    fn host_files_in_toml_and_json() {
        let dir = std::env::temp_dir().join(format!("ward-hosts-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let toml_path = dir.join("hosts.toml");
        std::fs::write(
            &toml_path,
            r#"
[[instance]]
instance_id = "i-cfg1"
private_ips = ["10.1.0.4"]
public_ips = ["198.51.100.4"]
enis = ["eni-9"]
autoscaling_group = "web-asg"

[[instance]]
instance_id = "i-cfg2"
private_ips = ["10.1.0.4"]
from = "2026-01-02T00:00:00Z"
"#,
        )
        .unwrap();
        let mut map = HostMap::new();
        assert_eq!(map.load_file(&toml_path).unwrap(), 2);
        let jan1 = parse_millis("2026-01-01T12:00:00Z").unwrap();
        let jan3 = parse_millis("2026-01-03T12:00:00Z").unwrap();
        assert_eq!(map.instance_at(ip("198.51.100.4"), jan1), Some("i-cfg1"));
        // Both hold 10.1.0.4 from configuration; the later lease wins where both cover.
        assert_eq!(map.instance_at(ip("10.1.0.4"), jan3), Some("i-cfg2"));
        assert_eq!(map.instance_at(ip("10.1.0.4"), jan1), Some("i-cfg1"));
        assert_eq!(map.host("i-cfg1").unwrap().group(), "asg:web-asg");
        assert_eq!(map.instance_of_eni("eni-9"), Some("i-cfg1"));

        let json_path = dir.join("hosts.json");
        std::fs::write(
            &json_path,
            r#"[{"instance_id":"i-j","private_ips":["10.2.0.1"]},{"instance_id":"i-k","private_ips":["nope"]}]"#,
        )
        .unwrap();
        let err = map.load_file(&json_path).unwrap_err();
        assert!(
            err.contains("hosts.json: instance #1") && err.contains("\"nope\""),
            "{err}"
        );
        std::fs::write(&json_path, r#"[{"instance_id":"i-j","privat_ips":[]}]"#).unwrap();
        let err = map.load_file(&json_path).unwrap_err();
        assert!(
            err.contains("instance #0") && err.contains("privat_ips"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
