//! The one place where the agent's event model ([`AgentEvent`]) becomes the wire model
//! ([`ward_proto::v1::Event`]). New event families map here and nowhere else.

use std::time::{SystemTime, UNIX_EPOCH};

use ward_proto::v1::{self as pb, event::Kind};

use crate::event::{AgentEvent, EventType};
use crate::proctable::{Ancestor, Process};

pub fn event(e: &AgentEvent) -> pb::Event {
    let kind = match e.kind {
        EventType::ProcessExec => Kind::Exec(pb::ProcessExec {}),
        EventType::ProcessFork => Kind::Fork(pb::ProcessFork {}),
        EventType::ProcessExit => {
            let status = e.exit.as_ref();
            Kind::Exit(pb::ProcessExit {
                code: status.map_or(0, |s| s.code),
                signal: status.and_then(|s| s.signal).unwrap_or(0),
                core_dumped: status.is_some_and(|s| s.core_dumped),
            })
        }
    };
    pb::Event {
        time_unix_nano: rfc3339_nanos(&e.time),
        process: Some(process(&e.process)),
        kind: Some(kind),
    }
}

pub fn process(p: &Process) -> pb::Process {
    pb::Process {
        pid: p.pid,
        ns_pid: p.ns_pid,
        ppid: p.ppid,
        start_time_unix_nano: rfc3339_nanos(&p.start_time),
        start_ticks: p.key.start_ticks,
        name: p.name.to_string(),
        executable: p.executable.to_string(),
        args: p.args.to_vec(),
        args_truncated: p.args_truncated,
        cwd: p.cwd.to_string(),
        uid: p.uid,
        euid: p.euid,
        gid: p.gid,
        egid: p.egid,
        login_uid: p.login_uid,
        user_name: String::new(),
        namespaces: Some(pb::Namespaces {
            pid: p.namespaces.pid,
            mnt: p.namespaces.mnt,
            net: p.namespaces.net,
        }),
        cgroup_id: p.cgroup_id,
        cgroup: p.cgroup.to_string(),
        container: p.container.as_ref().map(|c| pb::Container {
            id: c.id.clone(),
            runtime: c.runtime.to_string(),
            pod_uid: c.pod_uid.clone().unwrap_or_default(),
            name: String::new(),
            image: String::new(),
        }),
        sha256: p.sha256.get().cloned().unwrap_or_default(),
        script_path: String::new(),
        ld_preload: String::new(),
        ld_library_path: String::new(),
        ancestors: p.ancestors.iter().map(|a| ancestor(a)).collect(),
    }
}

fn ancestor(a: &Ancestor) -> pb::Ancestor {
    pb::Ancestor {
        pid: a.pid,
        ns_pid: a.ns_pid,
        start_time_unix_nano: rfc3339_nanos(&a.start_time),
        name: a.name.to_string(),
        executable: a.executable.to_string(),
        uid: a.uid,
        euid: a.euid,
    }
}

/// An `event_loss` event: the agent knows these events will never reach the collector.
pub fn loss(
    reason: pb::event_loss::Reason,
    events: u64,
    batches: u64,
    seqs: Option<(u64, u64)>,
) -> pb::Event {
    let (first_sequence, last_sequence) = seqs.unwrap_or((0, 0));
    pb::Event {
        time_unix_nano: unix_nanos(SystemTime::now()),
        process: Some(pb::Process {
            pid: std::process::id(),
            name: "ward-agent".into(),
            ..Default::default()
        }),
        kind: Some(Kind::Loss(pb::EventLoss {
            reason: reason as i32,
            events,
            batches,
            first_sequence,
            last_sequence,
            event_type: String::new(),
        })),
    }
}

pub fn unix_nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Nanoseconds since the epoch of the agent's own timestamps (`YYYY-MM-DDTHH:MM:SS[.fraction]Z`, as
/// [`crate::clock::rfc3339`] writes them). Parsed by hand because it runs for every process and
/// ancestor of every event; anything unexpected goes through `humantime`, and 0 means unparseable.
pub fn rfc3339_nanos(s: &str) -> u64 {
    fast_rfc3339(s.as_bytes()).unwrap_or_else(|| {
        humantime::parse_rfc3339_weak(s)
            .map(unix_nanos)
            .unwrap_or(0)
    })
}

fn fast_rfc3339(b: &[u8]) -> Option<u64> {
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u64> {
        b[r].iter().try_fold(0u64, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + u64::from(c - b'0'))
        })
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, min, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1970..=9999).contains(&year) || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    if hour > 23 || min > 59 || sec > 60 {
        return None;
    }
    let mut nanos = 0u64;
    let rest = &b[19..];
    let rest = match rest.first() {
        Some(b'.') => {
            let digits = rest[1..].iter().take_while(|c| c.is_ascii_digit()).count();
            if digits == 0 || digits > 9 {
                return None;
            }
            nanos = num(20..20 + digits)? * 10u64.pow(9 - digits as u32);
            &rest[1 + digits..]
        }
        _ => rest,
    };
    if rest != b"Z" {
        return None;
    }
    let days = days_from_civil(year as i64, month as u32, day as u32);
    let secs = days as u64 * 86_400 + hour * 3600 + min * 60 + sec;
    Some(secs * 1_000_000_000 + nanos)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps_match_humantime() {
        for nanos in [
            0u64,
            1,
            999_999_999,
            1_700_000_000_123_456_789,
            951_782_400_000_000_000,
        ] {
            let t = UNIX_EPOCH + Duration::from_nanos(nanos);
            let s = crate::clock::rfc3339(t);
            assert_eq!(rfc3339_nanos(&s), nanos, "{s}");
        }
        assert_eq!(
            rfc3339_nanos("2024-02-29T12:00:00Z"),
            1_709_208_000_000_000_000
        );
        assert_eq!(
            rfc3339_nanos("2024-02-29T12:00:00.5Z"),
            1_709_208_000_500_000_000
        );
        assert_eq!(rfc3339_nanos("garbage"), 0);
        assert_eq!(rfc3339_nanos(""), 0);
    }
}
