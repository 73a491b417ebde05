/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * The event ABI between Ward's eBPF programs and the agent.
 *
 * Every record in the EVENTS ring buffer starts with struct ward_header; `kind` says which struct follows.
 * The Rust mirrors live in agent-ebpf/src/abi.rs and a test compares their sizes and field offsets with
 * the BTF of the compiled object, so a change here must be made there too.
 *
 * Variable-length strings are fixed-size buffers plus a length, so records can be reserved in place in the
 * ring buffer (no per-CPU scratch copy). Paths walked in the kernel (cwd, cgroup) are stored leaf first as
 * NUL-separated components; userspace reverses them.
 */
#ifndef WARD_ABI_H
#define WARD_ABI_H

#define WARD_COMM_LEN 16
#define WARD_FILENAME_LEN 512
#define WARD_ARGS_LEN 4096
#define WARD_PATH_LEN 1024
#define WARD_PATH_COMPONENT_LEN 256
#define WARD_PATH_DEPTH 32
#define WARD_CGROUP_LEN 512
#define WARD_CGROUP_DEPTH 12

enum ward_event_kind {
	WARD_EVENT_EXEC = 1,
	WARD_EVENT_FORK = 2,
	WARD_EVENT_EXIT = 3,
	WARD_EVENT_DNS = 4,
	/* Syscall events (struct ward_syscall_event); `syscall` names the exact call. */
	WARD_EVENT_OPEN = 8,
	WARD_EVENT_UNLINK = 9,
	WARD_EVENT_RENAME = 10,
	WARD_EVENT_LINK = 11,
	WARD_EVENT_SYMLINK = 12,
	WARD_EVENT_CHMOD = 13,
	WARD_EVENT_CHOWN = 14,
	WARD_EVENT_TRUNCATE = 15,
	WARD_EVENT_SETXATTR = 16,
	WARD_EVENT_CONNECT = 17,
	WARD_EVENT_ACCEPT = 18,
	WARD_EVENT_BIND = 19,
	WARD_EVENT_LISTEN = 20,
	WARD_EVENT_DUP = 21,
	WARD_EVENT_SETID = 22,
	WARD_EVENT_CAPSET = 23,
	WARD_EVENT_PTRACE = 24,
	WARD_EVENT_VM_ACCESS = 25,
	WARD_EVENT_MEMFD = 26,
	WARD_EVENT_USERFAULTFD = 27,
	WARD_EVENT_MODULE = 28,
	WARD_EVENT_BPF = 29,
	WARD_EVENT_MOUNT = 30,
	WARD_EVENT_NAMESPACE = 31,
	WARD_EVENT_MEMORY_EXEC = 32,
	/* A file mapped executable by mmap (a shared library, or a program run through the loader), once
	 * per (program image, file). */
	WARD_EVENT_LIBRARY_LOAD = 33,
	/* Size of the per-kind counters and of the kind mask; kinds must stay below it. */
	WARD_EVENT_KINDS = 64,
};

/* Flags of an exec record. */
enum ward_exec_flags {
	WARD_EXEC_ARGS_TRUNCATED = 1 << 0,
	WARD_EXEC_FILENAME_TRUNCATED = 1 << 1,
	WARD_EXEC_CWD_TRUNCATED = 1 << 2,
	WARD_EXEC_CGROUP_TRUNCATED = 1 << 3,
	WARD_EXEC_CGROUP_V1_TRUNCATED = 1 << 4,
	/* `stdio_socket` describes the socket found on fd 0, 1 or 2. */
	WARD_EXEC_STDIO_SOCKET = 1 << 5,
};

struct ward_header {
	__u16 kind;
	__u16 flags;
	__u32 cpu;
	/* CLOCK_BOOTTIME of the event, ns. */
	__u64 time_ns;
	/* Thread id and process id as the root pid namespace sees them. */
	__u32 pid;
	__u32 tgid;
	/* Start of the process (thread group leader), CLOCK_BOOTTIME ns: with tgid, the process identity. */
	__u64 start_ns;
};

/* Who the task is and where it runs. */
struct ward_task {
	__u32 ppid;
	__u32 ns_pid;
	__u64 parent_start_ns;
	__u32 uid;
	__u32 euid;
	__u32 gid;
	__u32 egid;
	/* (u32)-1 when unset or when the kernel has no audit login uid. */
	__u32 loginuid;
	__u32 pid_ns;
	__u32 mnt_ns;
	__u32 net_ns;
	__u64 cgroup_id;
	char comm[WARD_COMM_LEN];
};

/* A socket's addresses; IPv4 addresses sit in the first 4 bytes. Ports in host order. */
struct ward_socket {
	__u16 family;
	__u16 sock_type;
	__u16 protocol;
	__u16 sport;
	__u16 dport;
	__u16 _pad[3];
	__u8 saddr[16];
	__u8 daddr[16];
};

/* Identity of an executable file: the agent's hash cache key, so a cache hit costs no system call. */
struct ward_file_id {
	__u64 ino;
	__u64 size;
	__s64 mtime_sec;
	__u32 mtime_nsec;
	/* Kernel dev_t: major in the top 12 bits, minor in the low 20. */
	__u32 dev;
};

struct ward_exec_event {
	struct ward_header hdr;
	struct ward_task task;
	struct ward_file_id exe;
	/* The executable's i_mode and link count (0: deleted or memfd) and its file system's magic. */
	__u32 exe_mode;
	__u32 exe_nlink;
	__u64 exe_fs_magic;
	/* Bit n set: fd n (0-2) is a socket; the first one is described in stdio_socket. */
	__u32 stdio_sockets;
	__u32 _pad2;
	struct ward_socket stdio_socket;
	__u32 filename_len;
	__u32 args_len;
	__u32 cwd_len;
	__u32 cgroup_len;
	__u32 cgroup_v1_len;
	__u32 _pad;
	char filename[WARD_FILENAME_LEN];
	/* Leaf-first NUL-separated components of the working directory, relative to the task's root. */
	char cwd[WARD_PATH_LEN];
	/* Leaf-first NUL-separated components of the cgroup v2 path. */
	char cgroup[WARD_CGROUP_LEN];
	/* The same for the memory controller's cgroup: on hybrid (v1+v2) hosts container runtimes place the
	 * container there, not in the v2 hierarchy. Equal to `cgroup` on pure v2 hosts. */
	char cgroup_v1[WARD_CGROUP_LEN];
	/* argv as the kernel laid it out: NUL-terminated strings back to back. */
	char args[WARD_ARGS_LEN];
};

/* A new process (not a new thread): the header describes the child. */
struct ward_fork_event {
	struct ward_header hdr;
	__u32 parent_pid;
	__u32 parent_tgid;
	__u64 parent_start_ns;
	/* The child's namespaces: clone() may have given it new ones. */
	__u32 ns_pid;
	__u32 pid_ns;
	__u32 mnt_ns;
	__u32 net_ns;
	char comm[WARD_COMM_LEN];
};

/* The last thread of a process exited. */
struct ward_exit_event {
	struct ward_header hdr;
	/* Raw wait status: exit code in bits 8-15, terminating signal in bits 0-6, core dump in bit 7. */
	__u32 exit_code;
	__u32 _pad;
	char comm[WARD_COMM_LEN];
};

/* Flags of a syscall record. */
enum ward_syscall_flags {
	/* `resolved` is the file the call acted on (an fd's file, or the file an open returned). */
	WARD_SYS_RESOLVED_FILE = 1 << 0,
	/* `resolved` is the directory the first path string is relative to. */
	WARD_SYS_RESOLVED_BASE = 1 << 1,
	WARD_SYS_RESOLVED_TRUNCATED = 1 << 2,
	/* `sock` describes the socket the call acted on. */
	WARD_SYS_SOCKET = 1 << 3,
	/* str[0] holds raw bytes (a sockaddr), not a string. */
	WARD_SYS_STR0_RAW = 1 << 4,
};

#define WARD_STR_LEN 256

/*
 * One record shape for every syscall Ward watches: the arguments as the kernel received them, the result,
 * up to three user strings, and what an fd or path argument referred to. Userspace knows, per `syscall`,
 * what each argument means.
 */
struct ward_syscall_event {
	struct ward_header hdr;
	__s64 ret;
	__u64 args[6];
	/* x86_64 syscall number. */
	__u32 syscall;
	/* Credentials after the call. */
	__u32 uid;
	__u32 euid;
	__u32 gid;
	__u32 egid;
	__u32 str_len[3];
	__u32 resolved_len;
	/* i_mode, inode and device (kernel dev_t) of the resolved file. */
	__u32 file_mode;
	__u64 file_ino;
	__u32 file_dev;
	__u32 _pad;
	struct ward_socket sock;
	char str[3][WARD_STR_LEN];
	char resolved[WARD_PATH_LEN];
};

#define WARD_DNS_PAYLOAD 512

/* A DNS message seen on a socket (UDP or TCP port 53), attributed to the socket's process. */
struct ward_dns_event {
	struct ward_header hdr;
	__u64 cookie;
	/* 1: sent by the process (query), 0: received (response). */
	__u32 egress;
	/* Bytes of DNS message in the packet, and how many were copied. */
	__u32 len;
	__u32 captured;
	__u32 _pad;
	struct ward_socket sock;
	__u8 payload[WARD_DNS_PAYLOAD];
};

#endif
