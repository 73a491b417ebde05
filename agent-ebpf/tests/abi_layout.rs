//! The Rust mirrors in `abi.rs` must match the C structs byte for byte. The truth is the BTF that clang
//! wrote into the committed object, so this test reads struct layouts from its `.BTF` section.

use std::collections::BTreeMap;
use std::mem::{offset_of, size_of};

use object::{Object, ObjectSection};
use ward_agent_ebpf::{OBJECT, abi};

/// Size (bytes) and member offsets (bits) of every struct in a BTF blob, by name.
fn btf_structs(btf: &[u8]) -> BTreeMap<String, (u32, BTreeMap<String, u32>)> {
    let u16_at = |o: usize| u16::from_le_bytes(btf[o..o + 2].try_into().unwrap());
    let u32_at = |o: usize| u32::from_le_bytes(btf[o..o + 4].try_into().unwrap());
    assert_eq!(u16_at(0), 0xeb9f, "not little-endian BTF");
    let hdr_len = u32_at(4) as usize;
    let (type_off, type_len) = (hdr_len + u32_at(8) as usize, u32_at(12) as usize);
    let str_off = hdr_len + u32_at(16) as usize;
    let name = |off: u32| {
        let start = str_off + off as usize;
        let end = start + btf[start..].iter().position(|&b| b == 0).unwrap();
        String::from_utf8(btf[start..end].to_vec()).unwrap()
    };

    let mut structs = BTreeMap::new();
    let mut at = type_off;
    while at < type_off + type_len {
        let (name_off, info, size) = (u32_at(at), u32_at(at + 4), u32_at(at + 8));
        let (kind, vlen, kflag) = ((info >> 24) & 0x1f, (info & 0xffff) as usize, info >> 31);
        at += 12;
        // Bytes that follow the common header, per BTF kind (linux/btf.h).
        let extra = match kind {
            1 | 14 | 17 => 4,     // INT, VAR, DECL_TAG
            3 => 12,              // ARRAY
            4 | 5 => 12 * vlen,   // STRUCT, UNION
            6 | 13 => 8 * vlen,   // ENUM, FUNC_PROTO
            15 | 19 => 12 * vlen, // DATASEC, ENUM64
            2 | 7..=12 | 16 | 18 => 0,
            other => panic!("unknown BTF kind {other}"),
        };
        if kind == 4 && name_off != 0 {
            let members = (0..vlen)
                .map(|i| {
                    let m = at + 12 * i;
                    let bits = u32_at(m + 8);
                    (
                        name(u32_at(m)),
                        if kflag == 1 { bits & 0xff_ffff } else { bits },
                    )
                })
                .collect();
            structs.insert(name(name_off), (size, members));
        }
        at += extra;
    }
    structs
}

macro_rules! assert_layout {
    ($structs:expr, $c_name:literal, $rust:ty, [$($field:ident),* $(,)?]) => {{
        let (size, members) = $structs
            .get($c_name)
            .unwrap_or_else(|| panic!("struct {} missing from the object's BTF", $c_name));
        assert_eq!(*size as usize, size_of::<$rust>(), "size of struct {}", $c_name);
        let rust: BTreeMap<String, u32> =
            [$((stringify!($field).to_string(), 8 * offset_of!($rust, $field) as u32)),*].into_iter().collect();
        assert_eq!(members, &rust, "fields and offsets of struct {}", $c_name);
    }};
}

#[test]
fn rust_mirrors_match_the_c_abi() {
    let elf = object::File::parse(OBJECT).expect("committed object is ELF");
    let btf = elf
        .section_by_name(".BTF")
        .expect(".BTF section")
        .data()
        .unwrap();
    let structs = btf_structs(btf);

    assert_layout!(
        structs,
        "ward_header",
        abi::Header,
        [kind, flags, cpu, time_ns, pid, tgid, start_ns]
    );
    assert_layout!(
        structs,
        "ward_task",
        abi::Task,
        [
            ppid,
            ns_pid,
            parent_start_ns,
            uid,
            euid,
            gid,
            egid,
            loginuid,
            pid_ns,
            mnt_ns,
            net_ns,
            cgroup_id,
            comm
        ]
    );
    assert_layout!(
        structs,
        "ward_exec_event",
        abi::ExecEvent,
        [
            hdr,
            task,
            exe,
            exe_mode,
            exe_nlink,
            exe_fs_magic,
            stdio_sockets,
            _pad2,
            stdio_socket,
            filename_len,
            args_len,
            cwd_len,
            cgroup_len,
            cgroup_v1_len,
            _pad,
            filename,
            cwd,
            cgroup,
            cgroup_v1,
            args
        ]
    );
    assert_layout!(
        structs,
        "ward_fork_event",
        abi::ForkEvent,
        [
            hdr,
            parent_pid,
            parent_tgid,
            parent_start_ns,
            ns_pid,
            pid_ns,
            mnt_ns,
            net_ns,
            comm
        ]
    );
    assert_layout!(
        structs,
        "ward_socket",
        abi::Socket,
        [
            family, sock_type, protocol, sport, dport, _pad, saddr, daddr
        ]
    );
    assert_layout!(
        structs,
        "ward_syscall_event",
        abi::SyscallEvent,
        [
            hdr,
            ret,
            args,
            syscall,
            uid,
            euid,
            gid,
            egid,
            str_len,
            resolved_len,
            file_mode,
            file_ino,
            file_dev,
            _pad,
            sock,
            str,
            resolved
        ]
    );
    assert_layout!(
        structs,
        "ward_dns_event",
        abi::DnsEvent,
        [hdr, cookie, egress, len, captured, _pad, sock, payload]
    );
    assert_layout!(
        structs,
        "ward_file_id",
        abi::FileId,
        [ino, size, mtime_sec, mtime_nsec, dev]
    );
    assert_layout!(
        structs,
        "ward_exit_event",
        abi::ExitEvent,
        [hdr, exit_code, _pad, comm]
    );
}

#[test]
fn object_declares_every_program_the_agent_attaches() {
    let elf = object::File::parse(OBJECT).unwrap();
    for (program, hook) in ward_agent_ebpf::PROCESS_PROGRAMS {
        let section = format!("tp_btf/{hook}");
        assert!(
            elf.section_by_name(&section).is_some(),
            "{program}: no section {section}"
        );
    }
}

#[test]
fn object_has_the_syscall_and_dns_programs() {
    let elf = object::File::parse(OBJECT).unwrap();
    for (program, hook) in ward_agent_ebpf::SYSCALL_PROGRAMS {
        assert!(
            elf.section_by_name(&format!("tp_btf/{hook}")).is_some(),
            "{program}: no tp_btf/{hook}"
        );
    }
    for direction in ["egress", "ingress"] {
        assert!(
            elf.section_by_name(&format!("cgroup_skb/{direction}"))
                .is_some(),
            "no cgroup_skb/{direction}"
        );
    }
}
