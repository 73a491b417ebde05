//! The process table: what the agent knows about every process, keyed by identity (pid, start time).
//!
//! Seeded from `/proc` at start, then kept by fork, exec and exit events. Each entry is an immutable
//! `Arc<Process>` snapshot, so events carry their process cheaply and an exec replaces the entry rather than
//! mutating what earlier events hold. Ancestry is captured when a process is created (what its parent was
//! when it spawned it), which is also what survives the parent's exit or re-parenting.

use std::collections::{HashMap, VecDeque};
use std::ops::Deref;
use std::sync::Arc;

use serde::{Serialize, Serializer};

pub use ward_event::{Ancestor, Namespaces};

/// Process identity: a pid alone is reused, (pid, start time in clock ticks since boot) is not.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProcKey {
    pub pid: u32,
    pub start_ticks: u64,
}

/// A process as the table keeps it: its identity and its parent's, and what events say about it
/// (the shared model's process, which is what it serialises as).
#[derive(Debug)]
pub struct Process {
    pub key: ProcKey,
    pub parent: ProcKey,
    pub info: ward_event::Process,
}

impl Deref for Process {
    type Target = ward_event::Process;

    fn deref(&self) -> &ward_event::Process {
        &self.info
    }
}

impl Serialize for Process {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.info.serialize(s)
    }
}

/// Bounds and counters of the table.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Live processes tracked; past it, entries whose process is gone from `/proc` are swept.
    pub max_live: usize,
    /// Exited processes kept so that late events and descendants' ancestry can still name them.
    pub max_exited: usize,
    /// Ancestors recorded per process.
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_live: 65_536,
            max_exited: 16_384,
            max_depth: 16,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct TableStats {
    /// A live entry replaced by a different process with the same pid (its exit event was missed).
    pub pid_reuse: u64,
    /// Live entries dropped by a sweep because their process no longer exists.
    pub swept: u64,
    /// Entries dropped to respect the bounds while their process may still exist.
    pub evicted: u64,
}

pub struct ProcessTable {
    live: HashMap<u32, Arc<Process>>,
    exited: HashMap<ProcKey, Arc<Process>>,
    exited_order: VecDeque<ProcKey>,
    /// The latest exited process of each pid, for records that carry a pid but no start time.
    exited_by_pid: HashMap<u32, ProcKey>,
    limits: Limits,
    pub stats: TableStats,
}

impl ProcessTable {
    pub fn new(limits: Limits) -> Self {
        ProcessTable {
            live: HashMap::new(),
            exited: HashMap::new(),
            exited_order: VecDeque::new(),
            exited_by_pid: HashMap::new(),
            limits,
            stats: TableStats::default(),
        }
    }

    pub fn live_len(&self) -> usize {
        self.live.len()
    }

    /// The live process with this pid, whatever its start time.
    pub fn live(&self, pid: u32) -> Option<&Arc<Process>> {
        self.live.get(&pid)
    }

    /// The live process with this pid, else the last one with it that exited (a DNS response can be read
    /// after its process is gone).
    pub fn by_pid(&self, pid: u32) -> Option<&Arc<Process>> {
        self.live
            .get(&pid)
            .or_else(|| self.exited.get(self.exited_by_pid.get(&pid)?))
    }

    pub fn get(&self, key: ProcKey) -> Option<&Arc<Process>> {
        match self.live.get(&key.pid) {
            Some(p) if p.key == key => Some(p),
            _ => self.exited.get(&key),
        }
    }

    /// The ancestry a new child of `parent` records: the parent itself, then the parent's own ancestry.
    pub fn ancestry(&self, parent: ProcKey) -> Vec<Ancestor> {
        self.get(parent)
            .map_or_else(Vec::new, |p| self.descend(p, p.ancestors.clone()))
    }

    /// What a new child of `parent` starts as until it execs: the parent's image, credentials,
    /// namespaces, container and (possibly still pending) hash, with the parent first in its
    /// ancestry. `None` when the parent is unknown.
    pub fn child_of(&self, parent: ProcKey) -> Option<ward_event::Process> {
        let p = self.get(parent)?;
        let mut child = p.info.clone();
        child.ancestors = self.descend(p, std::mem::take(&mut child.ancestors));
        Some(child)
    }

    /// A parent's ancestry as its child records it: the parent itself first, bounded in depth.
    fn descend(&self, parent: &Process, mut chain: Vec<Ancestor>) -> Vec<Ancestor> {
        chain.insert(0, parent.summary());
        chain.truncate(self.limits.max_depth.max(1));
        chain
    }

    /// Adds or replaces the live entry for a pid.
    pub fn insert(&mut self, process: Arc<Process>) {
        let key = process.key;
        if let Some(old) = self.live.insert(key.pid, process)
            && old.key != key
        {
            self.stats.pid_reuse += 1;
            self.retire(old);
        }
        if self.live.len() > self.limits.max_live {
            self.sweep();
        }
    }

    /// Moves a process to the exited set; returns it when it was known.
    pub fn exit(&mut self, key: ProcKey) -> Option<Arc<Process>> {
        match self.live.get(&key.pid) {
            Some(p) if p.key == key => {
                let p = self.live.remove(&key.pid)?;
                self.retire(p.clone());
                Some(p)
            }
            _ => self.exited.get(&key).cloned(),
        }
    }

    fn retire(&mut self, process: Arc<Process>) {
        let key = process.key;
        if self.exited.insert(key, process).is_none() {
            self.exited_order.push_back(key);
        }
        while self.exited.len() > self.limits.max_exited {
            let Some(oldest) = self.exited_order.pop_front() else {
                break;
            };
            self.exited.remove(&oldest);
        }
    }

    /// Drops live entries whose process is gone (an exit we never saw), then, if still over the bound,
    /// the entries that started earliest.
    fn sweep(&mut self) {
        let before = self.live.len();
        self.live.retain(|pid, p| {
            procfs::process::Process::new(*pid as i32)
                .and_then(|proc| proc.stat())
                .is_ok_and(|stat| stat.starttime == p.key.start_ticks)
        });
        self.stats.swept += (before - self.live.len()) as u64;
        if self.live.len() > self.limits.max_live {
            let mut keys: Vec<ProcKey> = self.live.values().map(|p| p.key).collect();
            keys.sort_unstable_by_key(|k| k.start_ticks);
            let excess = self.live.len() - self.limits.max_live;
            for key in &keys[..excess] {
                self.live.remove(&key.pid);
            }
            self.stats.evicted += excess as u64;
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn process(
        pid: u32,
        start_ticks: u64,
        parent: ProcKey,
        ancestors: Vec<Ancestor>,
    ) -> Arc<Process> {
        Arc::new(Process {
            key: ProcKey { pid, start_ticks },
            parent,
            info: ward_event::Process {
                pid,
                ns_pid: pid,
                ppid: parent.pid,
                start_time: format!("t{start_ticks}"),
                name: format!("p{pid}"),
                executable: "/bin/x".into(),
                cwd: "/".into(),
                cgroup_id: 1,
                cgroup: "/".into(),
                ancestors,
                ..ward_event::Process::default()
            },
        })
    }

    fn key(pid: u32, start_ticks: u64) -> ProcKey {
        ProcKey { pid, start_ticks }
    }

    fn chain(table: &mut ProcessTable, pids: &[u32]) {
        let mut parent = key(0, 0);
        for &pid in pids {
            let ancestry = table.ancestry(parent);
            table.insert(process(pid, pid as u64, parent, ancestry));
            parent = key(pid, pid as u64);
        }
    }

    #[test]
    fn ancestry_is_the_parent_chain_nearest_first_and_bounded() {
        let mut table = ProcessTable::new(Limits {
            max_depth: 3,
            ..Limits::default()
        });
        chain(&mut table, &[1, 10, 20, 30, 40]);
        let ancestry = table.ancestry(key(40, 40));
        let pids: Vec<u32> = ancestry.iter().map(|a| a.pid).collect();
        assert_eq!(pids, [40, 30, 20]);
    }

    #[test]
    fn pid_reuse_retires_the_old_process_and_keeps_it_addressable() {
        let mut table = ProcessTable::new(Limits::default());
        chain(&mut table, &[1, 500]);
        table.insert(process(500, 9_999, key(1, 1), table.ancestry(key(1, 1))));
        assert_eq!(table.stats.pid_reuse, 1);
        assert_eq!(table.get(key(500, 9_999)).unwrap().key.start_ticks, 9_999);
        // The earlier process with the same pid is still known by its own identity.
        assert_eq!(table.get(key(500, 500)).unwrap().key.start_ticks, 500);
        // A stale identity never resolves to the new process.
        assert!(table.get(key(500, 123)).is_none());
    }

    #[test]
    fn exited_processes_stay_addressable_within_the_bound() {
        let mut table = ProcessTable::new(Limits {
            max_exited: 2,
            ..Limits::default()
        });
        chain(&mut table, &[1, 2, 3, 4]);
        for pid in [2, 3, 4] {
            assert!(table.exit(key(pid, pid as u64)).is_some());
        }
        assert!(
            table.get(key(2, 2)).is_none(),
            "oldest exited entry evicted"
        );
        assert!(table.get(key(3, 3)).is_some() && table.get(key(4, 4)).is_some());
        // A child of an exited parent still gets its ancestry.
        assert_eq!(table.ancestry(key(4, 4))[0].pid, 4);
        assert_eq!(table.live_len(), 1);
    }

    #[test]
    fn live_bound_sweeps_processes_that_no_longer_exist() {
        let mut table = ProcessTable::new(Limits {
            max_live: 3,
            ..Limits::default()
        });
        // pids beyond pid_max cannot exist in /proc, so the sweep removes them.
        for pid in 0..5u32 {
            table.insert(process(4_194_400 + pid, pid as u64, key(0, 0), Vec::new()));
        }
        assert!(table.live_len() <= 3);
        assert!(table.stats.swept >= 2);
    }
}
