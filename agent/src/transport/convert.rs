//! The one place where the agent's event model ([`AgentEvent`]) becomes the wire model
//! ([`ward_proto::v1::Event`]). New event families map here and nowhere else.

use std::time::{SystemTime, UNIX_EPOCH};

use ward_proto::v1::{self as pb, event::Kind};

use std::net::IpAddr;

use crate::event::{AgentEvent, Details, Endpoint, EventType, Ids};
use crate::proctable::{Ancestor, Process};

pub fn event(e: &AgentEvent) -> pb::Event {
    let call = e.call.as_ref();
    let details_json = match &e.details {
        Some(Details::Exit(_)) | None => String::new(),
        Some(d) => serde_json::to_string(d).unwrap_or_default(),
    };
    pb::Event {
        time_unix_nano: rfc3339_nanos(&e.time),
        process: e.process.as_deref().map(process),
        syscall: call.map(|c| c.syscall.to_string()).unwrap_or_default(),
        result: call.map_or(0, |c| c.result),
        error: call.and_then(|c| c.error).unwrap_or_default().to_string(),
        details_json,
        kind: kind(e),
    }
}

fn kind(e: &AgentEvent) -> Option<Kind> {
    use EventType as T;
    let result = e.call.as_ref().map_or(0, |c| c.result) as i32;
    Some(match (e.kind, e.details.as_ref()) {
        (T::ProcessExec, _) => Kind::Exec(pb::ProcessExec {}),
        (T::ProcessFork, _) => Kind::Fork(pb::ProcessFork {}),
        (T::ProcessExit, Some(Details::Exit(s))) => Kind::Exit(pb::ProcessExit {
            code: s.code,
            signal: s.signal.unwrap_or(0),
            core_dumped: s.core_dumped,
        }),
        (_, Some(Details::File(f))) => {
            use pb::file_event::Op;
            let op = match e.kind {
                T::FileOpen => Op::Open,
                T::FileUnlink => Op::Unlink,
                T::FileRename => Op::Rename,
                T::FileLink => Op::Link,
                T::FileSymlink => Op::Symlink,
                T::FileChmod => Op::Chmod,
                T::FileChown => Op::Chown,
                T::FileTruncate => Op::Truncate,
                T::FileSetxattr => Op::Setxattr,
                T::LibraryLoad => Op::LibraryLoad,
                _ => Op::Unspecified,
            };
            Kind::File(pb::FileEvent {
                op: op as i32,
                path: f.path.clone(),
                target_path: f.target.clone().unwrap_or_default(),
                flags: f.flag_bits as u32,
                mode: f.mode.unwrap_or(0),
                inode: f.inode.unwrap_or(0),
                ..Default::default()
            })
        }
        (_, Some(Details::Mount(m))) => Kind::File(pb::FileEvent {
            op: pb::file_event::Op::Mount as i32,
            path: m.target.clone().unwrap_or_default(),
            target_path: m.target.clone().unwrap_or_default(),
            flags: m.flags as u32,
            fs_type: m.fstype.clone().unwrap_or_default(),
            source: m.source.clone().unwrap_or_default(),
            ..Default::default()
        }),
        (_, Some(Details::Memfd(m))) => Kind::File(pb::FileEvent {
            op: pb::file_event::Op::MemfdCreate as i32,
            path: m.name.clone(),
            flags: m.flags as u32,
            ..Default::default()
        }),
        (_, Some(Details::Module(m))) => Kind::File(pb::FileEvent {
            op: pb::file_event::Op::ModuleLoad as i32,
            path: m.path.clone().unwrap_or_default(),
            ..Default::default()
        }),
        (_, Some(Details::Socket(s))) => {
            use pb::network_event::{Direction, Op};
            let (op, direction) = match e.kind {
                T::NetConnect => (Op::Connect, Direction::Outbound),
                T::NetAccept => (Op::Accept, Direction::Inbound),
                T::NetListen => (Op::Listen, Direction::Unspecified),
                T::NetBind => (Op::Bind, Direction::Unspecified),
                _ => (Op::Socket, Direction::Unspecified),
            };
            let (local_ip, local_port) = endpoint(s.local.as_ref());
            let (remote_ip, remote_port) = endpoint(s.remote.as_ref());
            Kind::Network(pb::NetworkEvent {
                op: op as i32,
                direction: direction as i32,
                protocol: u32::from(s.protocol_code),
                family: u32::from(s.family_code),
                local_ip,
                local_port,
                remote_ip,
                remote_port,
                result,
            })
        }
        (_, Some(Details::Dns(d))) => {
            let question = d.questions.first();
            Kind::Dns(pb::DnsEvent {
                id: u32::from(d.id),
                response: d.response,
                query_name: question.map(|q| q.name.clone()).unwrap_or_default(),
                query_type: question.map_or(0, |q| u32::from(q.qtype_code)),
                rcode: u32::from(d.rcode_code),
                answers: d
                    .answers
                    .iter()
                    .map(|a| pb::DnsAnswer {
                        name: a.name.clone(),
                        r#type: u32::from(a.rtype_code),
                        ttl: a.ttl,
                        ip: a.data.parse::<IpAddr>().map(ip_bytes).unwrap_or_default(),
                        data: a.data.clone(),
                    })
                    .collect(),
                server_ip: d.server.as_ref().map(ip_text_bytes).unwrap_or_default(),
                server_port: d.server.as_ref().map_or(0, |s| u32::from(s.port)),
                protocol: if d.transport == "tcp" { 6 } else { 17 },
            })
        }
        (_, Some(Details::Privilege(p))) => {
            use pb::privilege_event::Op;
            let syscall = e.call.as_ref().map_or("", |c| c.syscall);
            let op = match e.kind {
                T::PrivCapset => Op::Capset,
                _ if syscall.contains("gid") => Op::Setgid,
                _ => Op::Setuid,
            };
            let (before, after) = (p.before.unwrap_or(ZERO_IDS), p.after.unwrap_or(ZERO_IDS));
            let [old_caps, new_caps] = p.effective_caps.unwrap_or_default();
            Kind::Privilege(pb::PrivilegeEvent {
                op: op as i32,
                old_uid: before.uid,
                new_uid: after.uid,
                old_euid: before.euid,
                new_euid: after.euid,
                old_gid: before.gid,
                new_gid: after.gid,
                old_caps,
                new_caps,
            })
        }
        (_, Some(Details::Target(t))) => {
            use pb::injection_event::Op;
            let op = if e.kind == T::Ptrace {
                Op::Ptrace
            } else {
                Op::ProcessVmWritev
            };
            Kind::Injection(pb::InjectionEvent {
                op: op as i32,
                target_pid: t.pid as u32,
                target_start_time_unix_nano: t
                    .process
                    .as_ref()
                    .map_or(0, |p| rfc3339_nanos(&p.start_time)),
                target_executable: t
                    .process
                    .as_ref()
                    .map(|p| p.executable.to_string())
                    .unwrap_or_default(),
                request: if e.kind == T::Ptrace {
                    t.request_code
                } else {
                    u64::from(t.write == Some(true))
                },
                address: 0,
            })
        }
        (_, Some(Details::Memory(m))) => Kind::Injection(pb::InjectionEvent {
            op: pb::injection_event::Op::MprotectExec as i32,
            address: u64::from_str_radix(m.address.trim_start_matches("0x"), 16).unwrap_or(0),
            ..Default::default()
        }),
        (T::Userfaultfd, _) => Kind::Injection(pb::InjectionEvent {
            op: pb::injection_event::Op::Userfaultfd as i32,
            ..Default::default()
        }),
        // The remaining families (bpf loads, namespaces, exec facts) travel in `details_json`.
        _ => return None,
    })
}

const ZERO_IDS: Ids = Ids {
    uid: 0,
    euid: 0,
    gid: 0,
    egid: 0,
};

fn ip_bytes(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    }
}

/// An endpoint's address in network byte order (empty when it is not an IP address).
fn ip_text_bytes(e: &Endpoint) -> Vec<u8> {
    e.ip.parse::<IpAddr>().map(ip_bytes).unwrap_or_default()
}

fn endpoint(e: Option<&Endpoint>) -> (Vec<u8>, u32) {
    e.map_or((Vec::new(), 0), |e| (ip_text_bytes(e), u32::from(e.port)))
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
        sha256: p.sha256.get().unwrap_or_default().to_owned(),
        script_path: String::new(),
        ld_preload: String::new(),
        ld_library_path: String::new(),
        ancestors: p.ancestors.iter().map(ancestor).collect(),
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
        ..Default::default()
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
