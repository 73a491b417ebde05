/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * The one compilation unit of Ward's kernel side. Each concern lives in its own *.bpf.c; they are
 * compiled together so that every program shares one EVENTS ring, one DROPS counter and one load.
 */
#include "process.bpf.c"
#include "syscalls.bpf.c"
#include "dns.bpf.c"
#include "floor.bpf.c"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/*
 * Never read. clang only describes in BTF the types that globals and function signatures use; these make it
 * describe every record of the ABI, so the agent's layout test can check its Rust mirrors against them.
 */
const struct ward_exec_event *const ward_abi_exec = 0;
const struct ward_fork_event *const ward_abi_fork = 0;
const struct ward_exit_event *const ward_abi_exit = 0;
const struct ward_syscall_event *const ward_abi_syscall = 0;
const struct ward_dns_event *const ward_abi_dns = 0;
