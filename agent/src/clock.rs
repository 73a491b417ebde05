//! Kernel timestamps (CLOCK_BOOTTIME ns) to wall-clock time and to `/proc` clock ticks.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Converts the kernel's boot-relative times. Captured once: suspend/resume shifts are not tracked.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    /// CLOCK_REALTIME minus CLOCK_BOOTTIME at start, in ns.
    boot_epoch_ns: u64,
    /// Nanoseconds per `/proc` clock tick (USER_HZ).
    ns_per_tick: u64,
}

fn clock_ns(id: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid out-pointer; both clocks exist on every Linux kernel Ward supports.
    unsafe { libc::clock_gettime(id, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

impl Clock {
    pub fn new() -> Self {
        let boot = clock_ns(libc::CLOCK_BOOTTIME);
        let real = clock_ns(libc::CLOCK_REALTIME);
        let boot_after = clock_ns(libc::CLOCK_BOOTTIME);
        Clock {
            boot_epoch_ns: real - (boot + boot_after) / 2,
            ns_per_tick: 1_000_000_000 / procfs::ticks_per_second(),
        }
    }

    /// Wall-clock time of a CLOCK_BOOTTIME instant.
    pub fn wall(&self, boot_ns: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_nanos(self.boot_epoch_ns + boot_ns)
    }

    /// `/proc/<pid>/stat` start-time ticks of a CLOCK_BOOTTIME instant (the kernel rounds down the same way).
    pub fn ticks(&self, boot_ns: u64) -> u64 {
        boot_ns / self.ns_per_tick
    }

    /// The CLOCK_BOOTTIME instant at which a tick count begins.
    pub fn ticks_to_ns(&self, ticks: u64) -> u64 {
        ticks * self.ns_per_tick
    }

    /// Current CLOCK_BOOTTIME.
    pub fn now_boot_ns() -> u64 {
        clock_ns(libc::CLOCK_BOOTTIME)
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

/// RFC 3339 with nanoseconds, UTC.
pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_nanos(t).to_string()
}
