//! CPU time from `/proc/<pid>/stat`, for the benchmarks.

use anyhow::Context;

/// The numeric fields of `/proc/<pid>/stat` after `(comm)`, whose name may hold spaces and parentheses.
fn stat_fields(pid: &str) -> anyhow::Result<Vec<u64>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after_comm = stat.rsplit_once(')').context("malformed /proc stat")?.1;
    // The state letter (first field) is not a number: parse it as 0.
    Ok(after_comm
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0))
        .collect())
}

/// Clock ticks per second of the /proc CPU counters (their resolution).
pub fn ticks_per_sec() -> f64 {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_CLK_TCK) as f64 }
}

/// User + system CPU seconds a process has used (utime, stime).
pub fn process_secs(pid: u32) -> anyhow::Result<f64> {
    let f = stat_fields(&pid.to_string())?;
    Ok((f[11] + f[12]) as f64 / ticks_per_sec())
}

/// User + system CPU seconds of this process's waited-for children (cutime, cstime).
pub fn children_secs() -> anyhow::Result<f64> {
    let f = stat_fields("self")?;
    Ok((f[13] + f[14]) as f64 / ticks_per_sec())
}
