/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * Process sensor: exec, fork (new processes, not threads) and exit (last thread of a process).
 * tp_btf hooks: typed arguments, no tracefs needed, and the exec hook runs after the new credentials
 * are committed, so a setuid binary's euid is visible.
 */
#include "common.h"
#include "paths.h"
#include "socket.h"

/* Before 6.15 kernfs_node's parent pointer was called `parent`. */
struct kernfs_node___old {
	struct kernfs_node *parent;
} __attribute__((preserve_access_index));

static __always_inline struct kernfs_node *kernfs_parent(struct kernfs_node *kn)
{
	if (bpf_core_field_exists(kn->__parent))
		return BPF_CORE_READ(kn, __parent);
	return BPF_CORE_READ((struct kernfs_node___old *)kn, parent);
}

/* Path of a cgroup, leaf first; empty for a hierarchy's root. */
static __always_inline __u32 read_cgroup(struct kernfs_node *kn, char *buf, __u16 *flags, __u16 truncated)
{
	__u32 off = 0;

	for (int i = 0; i < WARD_CGROUP_DEPTH; i++) {
		struct kernfs_node *parent = kernfs_parent(kn);
		if (!parent)
			return off;
		if (!put_component(buf, WARD_CGROUP_LEN, &off, BPF_CORE_READ(kn, name)))
			break;
		kn = parent;
	}
	*flags |= truncated;
	return off;
}

/* The memory controller's cgroup node (the one container runtimes name on cgroup v1 hosts). */
static __always_inline struct kernfs_node *memory_cgroup(struct task_struct *task)
{
	if (!bpf_core_enum_value_exists(enum cgroup_subsys_id, memory_cgrp_id))
		return 0;
	int id = bpf_core_enum_value(enum cgroup_subsys_id, memory_cgrp_id);
	struct css_set *cset = BPF_CORE_READ(task, cgroups);
	struct cgroup_subsys_state *css = 0;
	bpf_core_read(&css, sizeof(css), &cset->subsys[id & 15]);
	return css ? BPF_CORE_READ(css, cgroup, kn) : 0;
}

/* inode timestamps moved twice: i_mtime (< 6.6), __i_mtime (6.6 - 6.10), i_mtime_sec/nsec (6.11+). */
struct inode___v66 {
	struct timespec64 __i_mtime;
} __attribute__((preserve_access_index));

struct inode___old {
	struct timespec64 i_mtime;
} __attribute__((preserve_access_index));

static __always_inline void read_file_id(struct file *file, struct ward_file_id *id)
{
	struct inode *inode = BPF_CORE_READ(file, f_inode);
	id->ino = BPF_CORE_READ(inode, i_ino);
	id->size = BPF_CORE_READ(inode, i_size);
	id->dev = BPF_CORE_READ(inode, i_sb, s_dev);
	if (bpf_core_field_exists(inode->i_mtime_sec)) {
		id->mtime_sec = BPF_CORE_READ(inode, i_mtime_sec);
		id->mtime_nsec = BPF_CORE_READ(inode, i_mtime_nsec);
	} else if (bpf_core_field_exists(((struct inode___v66 *)inode)->__i_mtime)) {
		id->mtime_sec = BPF_CORE_READ((struct inode___v66 *)inode, __i_mtime.tv_sec);
		id->mtime_nsec = BPF_CORE_READ((struct inode___v66 *)inode, __i_mtime.tv_nsec);
	} else {
		id->mtime_sec = BPF_CORE_READ((struct inode___old *)inode, i_mtime.tv_sec);
		id->mtime_nsec = BPF_CORE_READ((struct inode___old *)inode, i_mtime.tv_nsec);
	}
}

/* Namespace inodes of a task; returns its pid inside its own pid namespace. */
static __always_inline __u32 read_namespaces(struct task_struct *task, __u32 *pid_ns, __u32 *mnt_ns, __u32 *net_ns)
{
	/* The task's own pid namespace is the one at its pid's deepest level (not pid_ns_for_children). */
	struct pid *pid = BPF_CORE_READ(task, thread_pid);
	unsigned int level = BPF_CORE_READ(pid, level);
	struct upid upid = {};
	bpf_core_read(&upid, sizeof(upid), &pid->numbers[level]);
	*pid_ns = BPF_CORE_READ(upid.ns, ns.inum);
	*mnt_ns = BPF_CORE_READ(task, nsproxy, mnt_ns, ns.inum);
	*net_ns = BPF_CORE_READ(task, nsproxy, net_ns, ns.inum);
	return upid.nr;
}

static __always_inline void fill_task(struct ward_task *t, struct task_struct *task)
{
	struct task_struct *parent = BPF_CORE_READ(task, real_parent);
	t->ppid = BPF_CORE_READ(parent, tgid);
	t->parent_start_ns = BPF_CORE_READ(parent, group_leader, start_boottime);

	const struct cred *cred = BPF_CORE_READ(task, cred);
	t->uid = BPF_CORE_READ(cred, uid.val);
	t->euid = BPF_CORE_READ(cred, euid.val);
	t->gid = BPF_CORE_READ(cred, gid.val);
	t->egid = BPF_CORE_READ(cred, egid.val);
	t->loginuid = (__u32)-1;
	if (bpf_core_field_exists(task->loginuid))
		t->loginuid = BPF_CORE_READ(task, loginuid.val);

	t->ns_pid = read_namespaces(task, &t->pid_ns, &t->mnt_ns, &t->net_ns);
	t->cgroup_id = bpf_get_current_cgroup_id();
	bpf_probe_read_kernel_str(t->comm, sizeof(t->comm), task->comm);
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(ward_exec, struct task_struct *task, pid_t old_pid, struct linux_binprm *bprm)
{
	if (is_agent(BPF_CORE_READ(task, tgid)))
		return 0;
	struct ward_exec_event *e = reserve(sizeof(*e), WARD_EVENT_EXEC);
	if (!e)
		return 0;
	fill_header(&e->hdr, WARD_EVENT_EXEC, task);
	fill_task(&e->task, task);

	long n = bpf_probe_read_kernel_str(e->filename, sizeof(e->filename), BPF_CORE_READ(bprm, filename));
	e->filename_len = n > 0 ? n - 1 : 0;
	if (n == sizeof(e->filename))
		e->hdr.flags |= WARD_EXEC_FILENAME_TRUNCATED;

	__u64 arg_start = BPF_CORE_READ(task, mm, arg_start);
	__u64 len = BPF_CORE_READ(task, mm, arg_end) - arg_start;
	e->args_len = 0;
	if (len > WARD_ARGS_LEN) {
		len = WARD_ARGS_LEN;
		e->hdr.flags |= WARD_EXEC_ARGS_TRUNCATED;
	}
	if (len > 0) {
		/* Written so the verifier sees a size in [1, WARD_ARGS_LEN] (clang folds a plain range check). */
		__u32 size = ((len - 1) & (WARD_ARGS_LEN - 1)) + 1;
		if (bpf_probe_read_user(e->args, size, (const void *)arg_start) == 0)
			e->args_len = size;
	}

	struct fs_struct *fs = BPF_CORE_READ(task, fs);
	e->cwd_len = walk_path(task, BPF_CORE_READ(fs, pwd.mnt), BPF_CORE_READ(fs, pwd.dentry), e->cwd, &e->hdr.flags,
			       WARD_EXEC_CWD_TRUNCATED);
	e->cgroup_len = read_cgroup(BPF_CORE_READ(task, cgroups, dfl_cgrp, kn), e->cgroup, &e->hdr.flags,
				    WARD_EXEC_CGROUP_TRUNCATED);
	struct kernfs_node *memcg = memory_cgroup(task);
	e->cgroup_v1_len = memcg ? read_cgroup(memcg, e->cgroup_v1, &e->hdr.flags, WARD_EXEC_CGROUP_V1_TRUNCATED) : 0;
	struct file *exe = BPF_CORE_READ(bprm, file);
	read_file_id(exe, &e->exe);
	/* Link count 0 is a deleted file or a memfd: fileless execution. */
	e->exe_mode = BPF_CORE_READ(exe, f_inode, i_mode);
	e->exe_nlink = BPF_CORE_READ(exe, f_inode, i_nlink);
	e->exe_fs_magic = BPF_CORE_READ(exe, f_inode, i_sb, s_magic);
	e->_pad = 0;
	e->_pad2 = 0;

	/* A shell whose stdin, stdout or stderr is a socket is what a reverse shell looks like. */
	e->stdio_sockets = 0;
	__builtin_memset(&e->stdio_socket, 0, sizeof(e->stdio_socket));
#pragma unroll
	for (int fd = 0; fd < 3; fd++) {
		struct sock *sk = file_sock(fd_file(task, fd));
		if (!sk)
			continue;
		if (!e->stdio_sockets) {
			read_sock(sk, &e->stdio_socket);
			e->hdr.flags |= WARD_EXEC_STDIO_SOCKET;
		}
		e->stdio_sockets |= 1 << fd;
	}
	submit(e);
	return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(ward_fork, struct task_struct *parent, struct task_struct *child)
{
	__u32 pid = BPF_CORE_READ(child, pid);
	/* A new thread shares its process's identity: only new processes matter to the process table. */
	if (pid != BPF_CORE_READ(child, tgid) || is_agent(BPF_CORE_READ(parent, tgid)))
		return 0;
	struct ward_fork_event *e = reserve(sizeof(*e), WARD_EVENT_FORK);
	if (!e)
		return 0;
	fill_header(&e->hdr, WARD_EVENT_FORK, child);
	e->parent_pid = BPF_CORE_READ(parent, pid);
	e->parent_tgid = BPF_CORE_READ(parent, tgid);
	e->parent_start_ns = BPF_CORE_READ(parent, group_leader, start_boottime);
	e->ns_pid = read_namespaces(child, &e->pid_ns, &e->mnt_ns, &e->net_ns);
	bpf_probe_read_kernel_str(e->comm, sizeof(e->comm), child->comm);
	submit(e);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(ward_exit, struct task_struct *task)
{
	/* do_exit() drops signal->live before this tracepoint: zero means this was the process's last thread. */
	if (BPF_CORE_READ(task, signal, live.counter) != 0 || is_agent(BPF_CORE_READ(task, tgid)))
		return 0;
	struct ward_exit_event *e = reserve(sizeof(*e), WARD_EVENT_EXIT);
	if (!e)
		return 0;
	fill_header(&e->hdr, WARD_EVENT_EXIT, task);
	e->exit_code = BPF_CORE_READ(task, exit_code);
	e->_pad = 0;
	bpf_probe_read_kernel_str(e->comm, sizeof(e->comm), task->comm);
	submit(e);
	return 0;
}
