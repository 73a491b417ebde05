//! Which host each agent runs on, from its Hello: the instance, hostname, account and Region its
//! findings are filed under. The agent id itself is the authenticated one (client certificate).
//!
//! Kept in `hosts.json` next to the batch log and written before the agent's Welcome, so when the
//! pipeline replays the log after a restart it files findings under the same host (finding ids
//! depend on it) before the agent has reconnected.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use ward_proto::v1 as pb;

/// What a Hello said about the agent's host (empty strings: unknown).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct AgentHost {
    pub hostname: String,
    pub instance_id: String,
    pub account_id: String,
    pub region: String,
}

impl From<&pb::HostIdentity> for AgentHost {
    fn from(h: &pb::HostIdentity) -> Self {
        AgentHost {
            hostname: h.hostname.clone(),
            instance_id: h.instance_id.clone(),
            account_id: h.account_id.clone(),
            region: h.region.clone(),
        }
    }
}

/// Agent id → host, persisted.
pub struct HostBook {
    path: PathBuf,
    hosts: Mutex<BTreeMap<String, AgentHost>>,
}

impl HostBook {
    /// Opens `path` (a missing file is an empty book; an unreadable one is an error naming it).
    pub fn open(path: &Path) -> io::Result<HostBook> {
        let hosts = match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}: {e}", path.display()),
                )
            })?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(io::Error::new(e.kind(), format!("{}: {e}", path.display()))),
        };
        Ok(HostBook {
            path: path.to_path_buf(),
            hosts: Mutex::new(hosts),
        })
    }

    /// Records what an agent's Hello says; writes the file when it changed.
    pub fn record(&self, agent_id: &str, host: AgentHost) -> io::Result<()> {
        let mut hosts = self.hosts.lock().expect("host book lock");
        if hosts.get(agent_id) == Some(&host) {
            return Ok(());
        }
        hosts.insert(agent_id.to_string(), host);
        let json = serde_json::to_vec_pretty(&*hosts).map_err(io::Error::other)?;
        write_atomically(&self.path, &json)
    }

    pub fn get(&self, agent_id: &str) -> Option<AgentHost> {
        self.hosts
            .lock()
            .expect("host book lock")
            .get(agent_id)
            .cloned()
    }
}

/// Replaces `path` with `bytes` so a crash leaves the old or the new content, never a mix.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_survive_a_reopen() {
        let dir = std::env::temp_dir().join(format!("ward-hostbook-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("hosts.json");
        let _ = std::fs::remove_file(&path);
        let book = HostBook::open(&path).unwrap();
        assert_eq!(book.get("a"), None);
        let host = AgentHost {
            hostname: "web-1".into(),
            instance_id: "i-0123".into(),
            ..AgentHost::default()
        };
        book.record("a", host.clone()).unwrap();
        assert_eq!(HostBook::open(&path).unwrap().get("a"), Some(host));
        std::fs::write(&path, b"{broken").unwrap();
        let err = HostBook::open(&path).err().unwrap().to_string();
        assert!(err.contains("hosts.json"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
