//! The pseudo-filesystems the sensors rely on: found through `/proc/self/mountinfo`, mounted when missing.
//!
//! tp_btf programs need none of them; tracefs is needed by classic tracepoints, cgroup2 by the cgroup
//! programs and to name cgroups, bpffs only for pinning. A mount that fails is reported, not fatal: the
//! loader then says which program could not attach and why.

use std::ffi::CString;
use std::path::{Path, PathBuf};

#[derive(Debug, Default)]
pub struct Mounts {
    pub tracefs: Option<PathBuf>,
    pub bpffs: Option<PathBuf>,
    pub cgroup2: Option<PathBuf>,
    /// Whether any cgroup v1 hierarchy is mounted (a hybrid host: containers may only show there).
    pub cgroup_v1: bool,
    /// What this call mounted, for the log.
    pub mounted: Vec<String>,
    /// What could not be mounted, with the reason.
    pub failed: Vec<String>,
}

/// (mount point, filesystem type) of every line of a mountinfo file.
pub fn parse_mountinfo(text: &str) -> Vec<(PathBuf, String)> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let mount_point = left.split(' ').nth(4)?;
            let fstype = right.split(' ').next()?;
            Some((PathBuf::from(unescape(mount_point)), fstype.to_string()))
        })
        .collect()
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo` octal.
fn unescape(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match octal {
            Some(d) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn find(mounts: &[(PathBuf, String)], fstype: &str) -> Option<PathBuf> {
    mounts
        .iter()
        .find(|(_, t)| t == fstype)
        .map(|(p, _)| p.clone())
}

fn mount(fstype: &str, target: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(target)?;
    let c = |s: &str| CString::new(s).expect("no NUL in mount arguments");
    let target = c(&target.to_string_lossy());
    let (source, fstype) = (c(fstype), c(fstype));
    // SAFETY: all pointers are valid NUL-terminated strings for the duration of the call.
    let rc = unsafe {
        libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Finds each filesystem, mounting the missing ones at their usual places.
pub fn ensure() -> Mounts {
    let table =
        parse_mountinfo(&std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default());
    let mut found = Mounts {
        cgroup_v1: table.iter().any(|(_, t)| t == "cgroup"),
        ..Mounts::default()
    };
    // On hybrid hosts /sys/fs/cgroup holds the v1 hierarchies, so v2 goes below it.
    let cgroup2_home = if found.cgroup_v1 {
        "/sys/fs/cgroup/unified"
    } else {
        "/sys/fs/cgroup"
    };
    found.tracefs = locate(&table, "tracefs", "/sys/kernel/tracing", &mut found);
    found.bpffs = locate(&table, "bpf", "/sys/fs/bpf", &mut found);
    found.cgroup2 = locate(&table, "cgroup2", cgroup2_home, &mut found);
    found
}

/// Where `fstype` is mounted, mounting it at `default` (and noting the outcome) when it is nowhere.
fn locate(
    table: &[(PathBuf, String)],
    fstype: &str,
    default: &str,
    notes: &mut Mounts,
) -> Option<PathBuf> {
    if let Some(path) = find(table, fstype) {
        return Some(path);
    }
    match mount(fstype, Path::new(default)) {
        Ok(()) => {
            notes.mounted.push(format!("{fstype} on {default}"));
            Some(PathBuf::from(default))
        }
        Err(e) => {
            notes.failed.push(format!("{fstype} on {default}: {e}"));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
22 1 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
42 22 0:12 / /sys/kernel/tracing rw,nosuid,nodev,noexec,relatime - tracefs nodev rw
44 22 0:34 / /sys/fs/bpf rw,nosuid,nodev,noexec,relatime - bpf bpf rw,mode=700
50 48 0:40 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime - cgroup2 cgroup2 rw
51 48 0:41 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime - cgroup cgroup rw,memory
60 1 0:50 / /mnt/with\\040space rw - ext4 /dev/vdb rw";

    #[test]
    fn mountinfo_lines_give_mount_points_and_types() {
        let table = parse_mountinfo(SAMPLE);
        assert_eq!(
            find(&table, "tracefs"),
            Some(PathBuf::from("/sys/kernel/tracing"))
        );
        assert_eq!(
            find(&table, "cgroup2"),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
        assert_eq!(find(&table, "ext4"), Some(PathBuf::from("/mnt/with space")));
        assert_eq!(find(&table, "debugfs"), None);
        assert_eq!(table.len(), 6);
    }

    #[test]
    fn malformed_lines_are_ignored() {
        assert!(parse_mountinfo("garbage\n\n1 2 3").is_empty());
    }
}
