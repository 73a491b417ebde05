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
	/* Size of the per-kind counters; kinds must stay below it. */
	WARD_EVENT_KINDS = 32,
};

/* Flags of an exec record. */
enum ward_exec_flags {
	WARD_EXEC_ARGS_TRUNCATED = 1 << 0,
	WARD_EXEC_FILENAME_TRUNCATED = 1 << 1,
	WARD_EXEC_CWD_TRUNCATED = 1 << 2,
	WARD_EXEC_CGROUP_TRUNCATED = 1 << 3,
	WARD_EXEC_CGROUP_V1_TRUNCATED = 1 << 4,
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

#endif
