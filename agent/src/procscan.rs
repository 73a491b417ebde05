//! Seeds the process table from `/proc`. Processes come and go while the scan runs: one that vanishes
//! half-read is counted and skipped, never an error; the event stream then corrects anything stale.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;

use procfs::ProcError;
use procfs::process::Process as ProcEntry;

use crate::clock::{Clock, rfc3339};
use crate::container;
use crate::proctable::{Namespaces, ProcKey, Process, ProcessTable};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScanStats {
    pub seeded: usize,
    /// Processes that exited (or whose files vanished) between listing and reading.
    pub vanished: usize,
    /// Entries unreadable for another reason (permissions, malformed files).
    pub unreadable: usize,
}

/// Reads every process under `proc_root` (normally `/proc`) into `table`, parents before children.
/// `cgroup2_root` is where the cgroup v2 hierarchy is mounted, used to turn paths into cgroup ids.
pub fn seed(
    table: &mut ProcessTable,
    proc_root: &Path,
    cgroup2_root: Option<&Path>,
    clock: &Clock,
) -> ScanStats {
    let mut stats = ScanStats::default();
    let mut seeds = Vec::new();
    let Ok(entries) = procfs::process::all_processes_with_root(proc_root) else {
        stats.unreadable += 1;
        return stats;
    };
    for entry in entries {
        match entry.and_then(|p| read(&p, proc_root, cgroup2_root, clock)) {
            Ok(process) => seeds.push(process),
            Err(ProcError::NotFound(_)) => stats.vanished += 1,
            Err(ProcError::Io(e, _)) if e.kind() == std::io::ErrorKind::NotFound => {
                stats.vanished += 1
            }
            Err(_) => stats.unreadable += 1,
        }
    }
    // Insert parents before their children, so each child finds its parent's ancestry already built.
    // Start times cannot order them: a parent and a child often start within the same clock tick.
    let mut pending: HashMap<u32, Process> = seeds.into_iter().map(|p| (p.pid, p)).collect();
    let pids: Vec<u32> = pending.keys().copied().collect();
    for pid in pids {
        // The chain of not-yet-inserted ancestors of `pid`, nearest last.
        let mut chain = Vec::new();
        let mut next = Some(pid);
        while let Some(p) = next.and_then(|p| pending.remove(&p)) {
            next = Some(p.ppid).filter(|ppid| *ppid != p.pid);
            chain.push(p);
        }
        for mut process in chain.into_iter().rev() {
            process.info.ancestors = table.ancestry(process.parent);
            table.insert(Arc::new(process));
            stats.seeded += 1;
        }
    }
    stats
}

fn read(
    p: &ProcEntry,
    proc_root: &Path,
    cgroup2_root: Option<&Path>,
    clock: &Clock,
) -> procfs::ProcResult<Process> {
    let stat = p.stat()?;
    let status = p.status()?;
    let pid = p.pid() as u32;
    let ppid = stat.ppid as u32;
    // The parent's start time comes from its own stat; a parent that is gone leaves 0, which matches nothing.
    let parent_start = match ppid {
        0 => 0,
        _ => ProcEntry::new_with_root(proc_root.join(ppid.to_string()))
            .and_then(|pp| pp.stat())
            .map(|s| s.starttime)
            .unwrap_or(0),
    };
    let namespaces = p.namespaces().map(|ns| ns_inodes(&ns)).unwrap_or_default();
    let cgroup_file =
        std::fs::read_to_string(proc_root.join(pid.to_string()).join("cgroup")).unwrap_or_default();
    let cgroup: String = cgroup_file
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .unwrap_or("/")
        .to_string();
    let cgroup_id = cgroup2_root
        .and_then(|root| std::fs::metadata(root.join(cgroup.trim_start_matches('/'))).ok())
        .map_or(0, |m| m.ino());
    let container =
        container::from_cgroup_path(&cgroup).or_else(|| container::from_proc_cgroup(&cgroup_file));
    let args = p.cmdline().unwrap_or_default();
    let start_ns = clock.ticks_to_ns(stat.starttime);
    let process = Process {
        key: ProcKey {
            pid,
            start_ticks: stat.starttime,
        },
        parent: ProcKey {
            pid: ppid,
            start_ticks: parent_start,
        },
        info: ward_event::Process {
            pid,
            ns_pid: status
                .nspid
                .as_ref()
                .and_then(|v| v.last().copied())
                .map_or(pid, |n| n as u32),
            ppid,
            start_time: rfc3339(clock.wall(start_ns)),
            name: stat.comm,
            // Kernel threads have no executable.
            executable: p
                .exe()
                .map(|e| e.to_string_lossy().into_owned())
                .unwrap_or_default(),
            args,
            cwd: p
                .cwd()
                .map(|c| c.to_string_lossy().into_owned())
                .unwrap_or_default(),
            uid: status.ruid,
            euid: status.euid,
            gid: status.rgid,
            egid: status.egid,
            login_uid: p.loginuid().ok().filter(|&u| u != u32::MAX),
            namespaces,
            cgroup_id,
            cgroup,
            container,
            ..ward_event::Process::default()
        },
    };
    Ok(process)
}

fn ns_inodes(ns: &procfs::process::Namespaces) -> Namespaces {
    let inode = |name: &str| {
        ns.0.get(std::ffi::OsStr::new(name))
            .map_or(0, |n| n.identifier as u32)
    };
    Namespaces {
        pid: inode("pid"),
        mnt: inode("mnt"),
        net: inode("net"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proctable::Limits;

    #[test]
    fn seeds_this_process_with_its_parent_in_the_ancestry() {
        let mut table = ProcessTable::new(Limits::default());
        let stats = seed(&mut table, Path::new("/proc"), None, &Clock::new());
        assert!(stats.seeded > 1, "{stats:?}");
        let me = ProcEntry::myself().unwrap().stat().unwrap();
        let entry = table
            .get(ProcKey {
                pid: std::process::id(),
                start_ticks: me.starttime,
            })
            .expect("self seeded");
        assert_eq!(entry.ppid, me.ppid as u32);
        assert_eq!(entry.ancestors.first().map(|a| a.pid), Some(me.ppid as u32));
        // The grandparent too, although parent and child may have started in the same clock tick.
        let grandparent = ProcEntry::new(me.ppid).unwrap().stat().unwrap().ppid as u32;
        if grandparent != 0 {
            assert_eq!(entry.ancestors.get(1).map(|a| a.pid), Some(grandparent));
        }
        assert_eq!(
            &*entry.executable,
            std::env::current_exe().unwrap().to_str().unwrap()
        );
    }

    #[test]
    fn entries_that_vanish_mid_scan_are_counted_not_fatal() {
        // A fake /proc: one complete process copied from our own, one whose files are gone (it exited
        // between the directory listing and the reads).
        let root = std::env::temp_dir().join(format!("ward-procscan-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let alive = root.join("4242");
        std::fs::create_dir_all(&alive).unwrap();
        for file in ["stat", "status", "cmdline"] {
            let text = std::fs::read_to_string(format!("/proc/self/{file}")).unwrap();
            std::fs::write(alive.join(file), text).unwrap();
        }
        std::fs::create_dir_all(root.join("4343")).unwrap();
        let mut table = ProcessTable::new(Limits::default());
        let stats = seed(&mut table, &root, None, &Clock::new());
        std::fs::remove_dir_all(&root).unwrap();
        assert_eq!(stats.seeded, 1, "{stats:?}");
        assert_eq!(stats.vanished, 1, "{stats:?}");
    }
}
