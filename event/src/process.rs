//! The process an event is about: identity, image, credentials, namespaces, container, ancestry.

use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{Text, is_false};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Namespaces {
    pub pid: u32,
    pub mnt: u32,
    pub net: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Container {
    /// Full 64-hex-digit container id.
    pub id: String,
    /// `docker`, `containerd`, `cri-o`, `podman`, `ecs` or `unknown`.
    pub runtime: Text,
    /// Kubernetes pod uid with dashes, when the container belongs to a pod.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_uid: Option<String>,
}

/// What a descendant records about each of its ancestors.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Ancestor {
    pub pid: u32,
    pub ns_pid: u32,
    pub start_time: String,
    pub name: String,
    pub executable: String,
    pub uid: u32,
    pub euid: u32,
}

/// The SHA-256 of a process's executable, hex. The agent hashes in the background, so its records
/// start `Pending` and every record sharing the cell (a fork before the exec's hash is done) sees
/// the value once it is set; a record read from JSON is `Known` or `None`.
#[derive(Debug, Clone, Default)]
pub enum ExeHash {
    #[default]
    None,
    Known(String),
    Pending(Arc<OnceLock<String>>),
}

impl ExeHash {
    /// A hash to be filled in later through [`ExeHash::set`] on this or any clone.
    pub fn pending() -> Self {
        ExeHash::Pending(Arc::default())
    }

    pub fn get(&self) -> Option<&str> {
        match self {
            ExeHash::None => None,
            ExeHash::Known(h) => Some(h),
            ExeHash::Pending(cell) => cell.get().map(String::as_str),
        }
    }

    /// Fills a pending hash; no effect on one that is known or absent, or already set.
    pub fn set(&self, hex: String) {
        if let ExeHash::Pending(cell) = self {
            let _ = cell.set(hex);
        }
    }

    fn is_unset(&self) -> bool {
        self.get().is_none()
    }
}

impl From<Option<String>> for ExeHash {
    fn from(hash: Option<String>) -> Self {
        hash.map_or(ExeHash::None, ExeHash::Known)
    }
}

impl Serialize for ExeHash {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.get().serialize(s)
    }
}

impl<'de> Deserialize<'de> for ExeHash {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Option::<String>::deserialize(d).map(ExeHash::from)
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Process {
    pub pid: u32,
    pub ns_pid: u32,
    pub ppid: u32,
    pub start_time: String,
    pub name: String,
    pub executable: String,
    pub args: Vec<String>,
    #[serde(skip_serializing_if = "is_false")]
    pub args_truncated: bool,
    pub cwd: String,
    pub uid: u32,
    pub euid: u32,
    pub gid: u32,
    pub egid: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub login_uid: Option<u32>,
    pub namespaces: Namespaces,
    pub cgroup_id: u64,
    pub cgroup: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<Container>,
    #[serde(skip_serializing_if = "ExeHash::is_unset")]
    pub sha256: ExeHash,
    pub ancestors: Vec<Ancestor>,
    /// `args` joined by spaces, built on first use (rules that search the whole command line).
    #[serde(skip)]
    pub joined_args: JoinedArgs,
}

/// The cache behind [`Process::cmdline`]; empty until first asked.
#[derive(Debug, Clone, Default)]
pub struct JoinedArgs(OnceLock<String>);

impl Process {
    /// The command line as one string: argv joined by single spaces.
    pub fn cmdline(&self) -> &str {
        self.joined_args.0.get_or_init(|| self.args.join(" "))
    }

    /// The container id, when the process runs in one.
    pub fn container_id(&self) -> Option<&str> {
        self.container
            .as_ref()
            .map(|c| c.id.as_str())
            .filter(|id| !id.is_empty())
    }

    /// The executable's file name (what a renamed copy changes), falling back to `comm`.
    pub fn exe_basename(&self) -> &str {
        basename(&self.executable).unwrap_or(&self.name)
    }

    /// How a descendant records this process.
    pub fn summary(&self) -> Ancestor {
        Ancestor {
            pid: self.pid,
            ns_pid: self.ns_pid,
            start_time: self.start_time.clone(),
            name: self.name.clone(),
            executable: self.executable.clone(),
            uid: self.uid,
            euid: self.euid,
        }
    }
}

/// The last path component, if any.
pub fn basename(path: &str) -> Option<&str> {
    path.rsplit('/').next().filter(|b| !b.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pending_hash_is_shared_by_clones_and_appears_once_set() {
        let p = Process {
            pid: 7,
            name: "sh".into(),
            sha256: ExeHash::pending(),
            ..Process::default()
        };
        let child = p.clone();
        assert!(!serde_json::to_string(&child).unwrap().contains("sha256"));
        p.sha256.set("ab".repeat(32));
        let json = serde_json::to_string(&child).unwrap();
        assert!(
            json.contains(&format!(r#""sha256":"{}""#, "ab".repeat(32))),
            "{json}"
        );
        let back: Process = serde_json::from_str(&json).unwrap();
        assert_eq!(back.sha256.get(), child.sha256.get());
        assert_eq!(serde_json::to_string(&back).unwrap(), json);
    }

    #[test]
    fn reading_is_lenient_and_cmdline_is_built_from_args() {
        let p: Process =
            serde_json::from_str(r#"{"pid":3,"args":["curl","-s","x"],"future":{"a":1}}"#).unwrap();
        assert_eq!((p.pid, p.cmdline()), (3, "curl -s x"));
        assert_eq!(p.exe_basename(), "");
        assert_eq!(basename("/usr/bin/curl"), Some("curl"));
        assert_eq!(basename("/usr/bin/"), None);
    }
}
