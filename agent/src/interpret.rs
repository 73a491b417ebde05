//! Gives meaning to syscall records: which event type, what each argument was, and the facts to report.
//! Argument positions are x86_64's (the only architecture the committed object is built for).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ward_agent_ebpf::abi::{self, kind};

use crate::decode::Syscall;
use crate::event::{
    BpfFacts, Call, Details, Endpoint, EventType, FileFacts, Ids, MemfdFacts, MemoryFacts,
    ModuleFacts, MountFacts, NamespaceFacts, PrivilegeFacts, SocketFacts, TargetFacts, Text,
};
use crate::proctable::Ancestor;

/// x86_64 numbers of the syscalls Ward watches.
const SYSCALL_NAMES: &[(u32, &str)] = &[
    (2, "open"),
    (9, "mmap"),
    (10, "mprotect"),
    (33, "dup2"),
    (42, "connect"),
    (43, "accept"),
    (49, "bind"),
    (50, "listen"),
    (76, "truncate"),
    (77, "ftruncate"),
    (82, "rename"),
    (85, "creat"),
    (86, "link"),
    (87, "unlink"),
    (88, "symlink"),
    (90, "chmod"),
    (91, "fchmod"),
    (92, "chown"),
    (93, "fchown"),
    (94, "lchown"),
    (101, "ptrace"),
    (105, "setuid"),
    (106, "setgid"),
    (113, "setreuid"),
    (114, "setregid"),
    (117, "setresuid"),
    (119, "setresgid"),
    (122, "setfsuid"),
    (123, "setfsgid"),
    (126, "capset"),
    (165, "mount"),
    (175, "init_module"),
    (188, "setxattr"),
    (189, "lsetxattr"),
    (190, "fsetxattr"),
    (257, "openat"),
    (260, "fchownat"),
    (263, "unlinkat"),
    (264, "renameat"),
    (265, "linkat"),
    (266, "symlinkat"),
    (268, "fchmodat"),
    (272, "unshare"),
    (288, "accept4"),
    (292, "dup3"),
    (308, "setns"),
    (310, "process_vm_readv"),
    (311, "process_vm_writev"),
    (313, "finit_module"),
    (316, "renameat2"),
    (319, "memfd_create"),
    (321, "bpf"),
    (323, "userfaultfd"),
    (437, "openat2"),
    (452, "fchmodat2"),
];

pub fn syscall_name(nr: u32) -> &'static str {
    SYSCALL_NAMES
        .iter()
        .find(|(n, _)| *n == nr)
        .map_or("unknown", |(_, name)| name)
}

pub fn errno_name(errno: i64) -> &'static str {
    match errno {
        1 => "EPERM",
        2 => "ENOENT",
        3 => "ESRCH",
        4 => "EINTR",
        5 => "EIO",
        9 => "EBADF",
        11 => "EAGAIN",
        12 => "ENOMEM",
        13 => "EACCES",
        14 => "EFAULT",
        16 => "EBUSY",
        17 => "EEXIST",
        18 => "EXDEV",
        20 => "ENOTDIR",
        21 => "EISDIR",
        22 => "EINVAL",
        24 => "EMFILE",
        28 => "ENOSPC",
        30 => "EROFS",
        36 => "ENAMETOOLONG",
        38 => "ENOSYS",
        39 => "ENOTEMPTY",
        40 => "ELOOP",
        95 => "EOPNOTSUPP",
        97 => "EAFNOSUPPORT",
        98 => "EADDRINUSE",
        99 => "EADDRNOTAVAIL",
        101 => "ENETUNREACH",
        110 => "ETIMEDOUT",
        111 => "ECONNREFUSED",
        113 => "EHOSTUNREACH",
        115 => "EINPROGRESS",
        _ => "E?",
    }
}

const OPEN_FLAGS: &[(u64, &str)] = &[
    (0o1, "O_WRONLY"),
    (0o2, "O_RDWR"),
    (0o100, "O_CREAT"),
    (0o200, "O_EXCL"),
    (0o1000, "O_TRUNC"),
    (0o2000, "O_APPEND"),
    (0o200000, "O_DIRECTORY"),
    (0o400000, "O_NOFOLLOW"),
    (0o2000000, "O_CLOEXEC"),
    (0o20200000, "O_TMPFILE"),
];

const NAMESPACE_FLAGS: &[(u64, &str)] = &[
    (0x0002_0000, "CLONE_NEWNS"),
    (0x0200_0000, "CLONE_NEWCGROUP"),
    (0x0400_0000, "CLONE_NEWUTS"),
    (0x0800_0000, "CLONE_NEWIPC"),
    (0x1000_0000, "CLONE_NEWUSER"),
    (0x2000_0000, "CLONE_NEWPID"),
    (0x4000_0000, "CLONE_NEWNET"),
    (0x0000_0080, "CLONE_NEWTIME"),
];

const PROT_FLAGS: &[(u64, &str)] = &[(1, "PROT_READ"), (2, "PROT_WRITE"), (4, "PROT_EXEC")];

fn flag_names(value: u64, table: &[(u64, &'static str)]) -> Vec<Text> {
    table
        .iter()
        .filter(|(bit, _)| value & bit == *bit)
        .map(|(_, name)| Text::Borrowed(name))
        .collect()
}

fn ptrace_request(req: u64) -> String {
    match req {
        0 => "PTRACE_TRACEME".into(),
        4 => "PTRACE_POKETEXT".into(),
        5 => "PTRACE_POKEDATA".into(),
        6 => "PTRACE_POKEUSER".into(),
        13 => "PTRACE_SETREGS".into(),
        16 => "PTRACE_ATTACH".into(),
        0x4205 => "PTRACE_SETREGSET".into(),
        0x4206 => "PTRACE_SEIZE".into(),
        other => format!("{other}"),
    }
}

/// The event type of a syscall record.
pub fn event_type(sys: &Syscall) -> EventType {
    match sys.hdr.kind {
        kind::OPEN => EventType::FileOpen,
        kind::UNLINK => EventType::FileUnlink,
        kind::RENAME => EventType::FileRename,
        kind::LINK => EventType::FileLink,
        kind::SYMLINK => EventType::FileSymlink,
        kind::CHMOD => EventType::FileChmod,
        kind::CHOWN => EventType::FileChown,
        kind::TRUNCATE => EventType::FileTruncate,
        kind::SETXATTR => EventType::FileSetxattr,
        kind::CONNECT => EventType::NetConnect,
        kind::ACCEPT => EventType::NetAccept,
        kind::BIND => EventType::NetBind,
        kind::LISTEN => EventType::NetListen,
        kind::DUP => EventType::NetStdioSocket,
        kind::SETID => EventType::PrivSetid,
        kind::CAPSET => EventType::PrivCapset,
        kind::PTRACE => EventType::Ptrace,
        kind::VM_ACCESS => EventType::ProcessVmAccess,
        kind::MEMFD => EventType::MemfdCreate,
        kind::USERFAULTFD => EventType::Userfaultfd,
        kind::MODULE => EventType::ModuleLoad,
        kind::BPF => EventType::BpfLoad,
        kind::MOUNT => EventType::Mount,
        kind::NAMESPACE => EventType::Namespace,
        kind::LIBRARY_LOAD => EventType::LibraryLoad,
        _ => EventType::MemoryExec,
    }
}

pub fn call(sys: &Syscall) -> Call {
    Call {
        syscall: syscall_name(sys.nr),
        result: sys.ret,
        error: (sys.ret < 0).then(|| errno_name(-sys.ret)),
    }
}

/// Joins a relative path onto a directory.
fn join(base: &str, rel: &str) -> String {
    let rel = rel.trim_start_matches("./");
    if base == "/" {
        format!("/{rel}")
    } else {
        format!("{base}/{rel}")
    }
}

/// The absolute path of the first path argument: the file the kernel resolved, the given path when it is
/// absolute, or the given path joined to the directory it is relative to.
fn primary_path(sys: &Syscall) -> (String, Option<&str>) {
    let given = sys.strs[0].as_deref();
    let path = match (&sys.resolved, given) {
        (Some(r), _) if !r.is_base => r.path.clone(),
        (_, Some(g)) if g.starts_with('/') => g.to_string(),
        (Some(r), Some(g)) => join(&r.path, g),
        (_, Some(g)) => g.to_string(),
        (Some(r), None) => r.path.clone(),
        (None, None) => String::new(),
    };
    (path, given)
}

/// A second path (rename/link target) relative to the same base when both paths share a dirfd.
fn second_path(sys: &Syscall, same_base: bool) -> Option<String> {
    let target = sys.strs[1].as_deref()?;
    Some(match &sys.resolved {
        Some(r) if r.is_base && same_base && !target.starts_with('/') => join(&r.path, target),
        _ => target.to_string(),
    })
}

fn file_facts(sys: &Syscall) -> FileFacts {
    let (path, given) = primary_path(sys);
    let resolved_file = sys.resolved.as_ref().filter(|r| !r.is_base);
    FileFacts {
        given: given.filter(|g| *g != path).map(str::to_string),
        path,
        inode: resolved_file.map(|r| r.ino),
        path_truncated: sys.resolved.as_ref().is_some_and(|r| r.truncated),
        ..FileFacts::default()
    }
}

fn ip(family: u16, bytes: &[u8; 16]) -> Option<IpAddr> {
    match family {
        2 => Some(IpAddr::V4(Ipv4Addr::new(
            bytes[0], bytes[1], bytes[2], bytes[3],
        ))),
        10 => Some(IpAddr::V6(Ipv6Addr::from(*bytes))),
        _ => None,
    }
}

fn family_name(family: u16) -> String {
    match family {
        1 => "unix".into(),
        2 => "inet".into(),
        10 => "inet6".into(),
        other => other.to_string(),
    }
}

fn protocol_name(s: &abi::Socket) -> String {
    match (s.family, s.protocol, s.sock_type) {
        (2 | 10, 6, _) => "tcp".into(),
        (2 | 10, 17, _) => "udp".into(),
        (2 | 10, 1 | 58, _) => "icmp".into(),
        (_, _, 1) => "stream".into(),
        (_, _, 2) => "dgram".into(),
        (_, _, 5) => "seqpacket".into(),
        (_, p, _) => p.to_string(),
    }
}

/// Socket facts from the kernel's view of a socket.
pub fn socket_facts(s: &abi::Socket) -> SocketFacts {
    let local = ip(s.family, &s.saddr).map(|ip| Endpoint {
        ip: ip.to_string(),
        port: s.sport,
    });
    // A socket that is not connected has no remote end.
    let remote = ip(s.family, &s.daddr)
        .filter(|_| s.dport != 0)
        .map(|ip| Endpoint {
            ip: ip.to_string(),
            port: s.dport,
        });
    SocketFacts {
        family: family_name(s.family),
        protocol: protocol_name(s),
        family_code: s.family,
        protocol_code: if s.family == 1 { 0 } else { s.protocol },
        local,
        remote,
        ..SocketFacts::default()
    }
}

/// A `struct sockaddr` as the process passed it: (family, endpoint or unix path).
pub fn parse_sockaddr(raw: &[u8]) -> Option<(u16, Option<Endpoint>, Option<String>)> {
    let family = u16::from_le_bytes(raw.get(0..2)?.try_into().ok()?);
    let port = || raw.get(2..4).map(|p| u16::from_be_bytes([p[0], p[1]]));
    Some(match family {
        1 => {
            let path = &raw[2..];
            let name = match path.first() {
                // Abstract socket: a leading NUL, the name is the rest (not NUL-terminated).
                Some(0) => format!(
                    "@{}",
                    String::from_utf8_lossy(&path[1..]).trim_end_matches('\0')
                ),
                _ => String::from_utf8_lossy(path.split(|&b| b == 0).next().unwrap_or_default())
                    .into_owned(),
            };
            (family, None, Some(name))
        }
        2 => {
            let a = raw.get(4..8)?;
            (
                family,
                Some(Endpoint {
                    ip: Ipv4Addr::new(a[0], a[1], a[2], a[3]).to_string(),
                    port: port()?,
                }),
                None,
            )
        }
        10 => {
            let a: [u8; 16] = raw.get(8..24)?.try_into().ok()?;
            (
                family,
                Some(Endpoint {
                    ip: Ipv6Addr::from(a).to_string(),
                    port: port()?,
                }),
                None,
            )
        }
        other => (other, None, None),
    })
}

fn ids(packed_user: u64, packed_group: u64) -> Ids {
    Ids {
        uid: (packed_user >> 32) as u32,
        euid: packed_user as u32,
        gid: (packed_group >> 32) as u32,
        egid: packed_group as u32,
    }
}

/// Facts of a syscall record. `target` looks up a live process by pid (ptrace and process_vm_*).
pub fn details(sys: &Syscall, target: impl Fn(u32) -> Option<Ancestor>) -> Option<Details> {
    let a = &sys.args;
    let nr = sys.nr;
    Some(match sys.hdr.kind {
        kind::OPEN => {
            let flags = a[5];
            let mode_arg = match nr {
                2 => Some(a[2]),
                257 => Some(a[3]),
                85 => Some(a[1]),
                _ => None,
            };
            Details::File(FileFacts {
                flags: flag_names(flags, OPEN_FLAGS),
                flag_bits: flags,
                mode: mode_arg
                    .filter(|_| flags & 0o100 != 0)
                    .map(|m| (m & 0o7777) as u32),
                ..file_facts(sys)
            })
        }
        // library_load: the mapped file, as the kernel resolved it from the fd.
        kind::UNLINK | kind::TRUNCATE | kind::LIBRARY_LOAD => Details::File(file_facts(sys)),
        kind::RENAME | kind::LINK => {
            let same_base = match nr {
                82 | 86 => true,
                _ => a[0] as i32 == a[2] as i32,
            };
            Details::File(FileFacts {
                target: second_path(sys, same_base),
                ..file_facts(sys)
            })
        }
        kind::SYMLINK => Details::File(FileFacts {
            target: sys.strs[1].clone(),
            ..file_facts(sys)
        }),
        kind::CHMOD => {
            let mode = if matches!(nr, 268 | 452) { a[2] } else { a[1] };
            Details::File(FileFacts {
                mode: Some((mode & 0o7777) as u32),
                ..file_facts(sys)
            })
        }
        kind::CHOWN => {
            let (uid, gid) = if nr == 260 {
                (a[2], a[3])
            } else {
                (a[1], a[2])
            };
            Details::File(FileFacts {
                uid: Some(uid as u32),
                gid: Some(gid as u32),
                ..file_facts(sys)
            })
        }
        kind::SETXATTR => Details::File(FileFacts {
            xattr: sys.strs[1].clone(),
            ..file_facts(sys)
        }),
        kind::CONNECT | kind::BIND => {
            let mut facts = sys.socket.as_ref().map(socket_facts).unwrap_or_default();
            if let Some((family, endpoint, path)) = sys.raw.as_deref().and_then(parse_sockaddr) {
                if facts.family.is_empty() {
                    facts.family = family_name(family);
                    facts.family_code = family;
                }
                // What the process asked for is the truth for failed calls; the kernel's view adds the port
                // it picked (connect) or confirms the address (bind).
                match sys.hdr.kind {
                    kind::CONNECT => facts.remote = endpoint.or(facts.remote),
                    _ => facts.local = endpoint.or(facts.local),
                }
                facts.path = path;
            }
            Details::Socket(facts)
        }
        kind::ACCEPT => Details::Socket(sys.socket.as_ref().map(socket_facts).unwrap_or_default()),
        kind::LISTEN => Details::Socket(SocketFacts {
            backlog: Some(a[1]),
            ..sys.socket.as_ref().map(socket_facts)?
        }),
        kind::DUP => Details::Socket(SocketFacts {
            stdio_fd: Some(a[1]),
            ..sys.socket.as_ref().map(socket_facts)?
        }),
        kind::SETID => {
            let requested = match nr {
                113 | 114 => 2,
                117 | 119 => 3,
                _ => 1,
            };
            let [uid, euid, gid, egid] = sys.creds;
            Details::Privilege(PrivilegeFacts {
                before: Some(ids(a[4], a[5])),
                after: Some(Ids {
                    uid,
                    euid,
                    gid,
                    egid,
                }),
                requested: a[..requested].iter().map(|v| *v as i32 as i64).collect(),
                effective_caps: None,
                permitted_caps: None,
            })
        }
        kind::CAPSET => Details::Privilege(PrivilegeFacts {
            before: None,
            after: None,
            requested: Vec::new(),
            effective_caps: Some([a[4], a[2]]),
            permitted_caps: Some([a[5], a[3]]),
        }),
        kind::PTRACE => Details::Target(TargetFacts {
            pid: a[1],
            request: Some(ptrace_request(a[0])),
            request_code: a[0],
            write: None,
            process: target(a[1] as u32),
        }),
        kind::VM_ACCESS => Details::Target(TargetFacts {
            pid: a[0],
            request: None,
            request_code: 0,
            write: Some(nr == 311),
            process: target(a[0] as u32),
        }),
        kind::MEMFD => Details::Memfd(MemfdFacts {
            name: sys.strs[0].clone().unwrap_or_default(),
            flags: a[1],
        }),
        kind::USERFAULTFD => return None,
        kind::MODULE => Details::Module(ModuleFacts {
            path: sys.resolved.as_ref().map(|r| r.path.clone()),
            size: (nr == 175).then_some(a[1]),
            params: sys.strs[0].clone(),
        }),
        kind::BPF => {
            let raw = sys.raw.as_deref().unwrap_or_default();
            let prog_type = raw
                .get(0..4)
                .map_or(0, |b| u32::from_le_bytes(b.try_into().unwrap()));
            let name = raw
                .get(48..64)
                .map(crate::decode::c_string)
                .unwrap_or_default();
            Details::Bpf(BpfFacts { prog_type, name })
        }
        kind::MOUNT => Details::Mount(MountFacts {
            source: sys.strs[0].clone(),
            target: sys.strs[1].clone(),
            fstype: sys.strs[2].clone(),
            flags: a[3],
        }),
        kind::NAMESPACE => {
            let flags = if nr == 308 { a[1] } else { a[0] };
            Details::Namespace(NamespaceFacts {
                namespaces: flag_names(flags, NAMESPACE_FLAGS),
                fd_path: (nr == 308)
                    .then(|| sys.resolved.as_ref().map(|r| r.path.clone()))
                    .flatten(),
            })
        }
        _ => Details::Memory(MemoryFacts {
            address: format!("{:#x}", a[0]),
            length: a[1],
            protection: flag_names(a[2], PROT_FLAGS),
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockaddr_forms() {
        let mut v4 = vec![2, 0, 0x1f, 0x90, 127, 0, 0, 1];
        v4.extend([0; 8]);
        let (family, endpoint, path) = parse_sockaddr(&v4).unwrap();
        assert_eq!(family, 2);
        assert_eq!(
            endpoint,
            Some(Endpoint {
                ip: "127.0.0.1".parse().unwrap(),
                port: 8080
            })
        );
        assert_eq!(path, None);

        let mut v6 = vec![10, 0, 0, 53, 0, 0, 0, 0];
        v6.extend(Ipv6Addr::LOCALHOST.octets());
        assert_eq!(
            parse_sockaddr(&v6).unwrap().1,
            Some(Endpoint {
                ip: "::1".parse().unwrap(),
                port: 53
            })
        );

        let mut unix = vec![1, 0];
        unix.extend(b"/var/run/docker.sock\0garbage");
        assert_eq!(
            parse_sockaddr(&unix).unwrap().2.as_deref(),
            Some("/var/run/docker.sock")
        );
        let mut abstract_ = vec![1, 0, 0];
        abstract_.extend(b"ward");
        assert_eq!(
            parse_sockaddr(&abstract_).unwrap().2.as_deref(),
            Some("@ward")
        );

        assert!(parse_sockaddr(&[2]).is_none());
        assert!(
            parse_sockaddr(&[2, 0, 0, 80]).is_none(),
            "truncated inet sockaddr"
        );
    }

    #[test]
    fn names_of_numbers() {
        assert_eq!(syscall_name(257), "openat");
        assert_eq!(syscall_name(9999), "unknown");
        assert_eq!(errno_name(13), "EACCES");
        assert_eq!(
            flag_names(0o1101, OPEN_FLAGS),
            ["O_WRONLY", "O_CREAT", "O_TRUNC"]
        );
        assert_eq!(
            flag_names(0x2002_0000, NAMESPACE_FLAGS),
            ["CLONE_NEWNS", "CLONE_NEWPID"]
        );
        assert_eq!(ptrace_request(16), "PTRACE_ATTACH");
    }

    #[test]
    fn paths_are_joined_to_their_base() {
        assert_eq!(join("/", "etc/passwd"), "/etc/passwd");
        assert_eq!(join("/home/u", "./x"), "/home/u/x");
    }
}
