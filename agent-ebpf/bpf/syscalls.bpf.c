/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * File, network, privilege and injection sensors on the raw syscall tracepoints (no kprobes, fentry or LSM
 * here).
 *
 * One program on sys_exit serves every watched syscall: pt_regs still holds the call's arguments there, so
 * a switch on the syscall number describes the call (which arguments are paths, fds, sockaddrs), filters
 * it, and turns it and its result into one struct ward_syscall_event. Only the few calls whose record
 * needs the state from before the call (old credentials, a mapping's old flags) are also seen at sys_enter,
 * which keeps them in PENDING, keyed by thread. Everything costly happens at exit and only for calls that
 * will be reported, so failed attempts are visible with their error and noisy calls are dropped before
 * they cost a record. Two programs instead of one pair per syscall: every attached tracepoint costs tens of
 * milliseconds to attach and to detach on this kind of kernel, so 100 of them made start-up and shutdown
 * take seconds. x86_64 syscall numbers and argument registers.
 */
#include "common.h"
#include "paths.h"
#include "socket.h"

#define AT_FDCWD -100
#define WARD_O_WRONLY 01
#define WARD_O_RDWR 02
#define WARD_O_CREAT 0100
#define WARD_O_TRUNC 01000
#define WARD_S_IFCHR 0020000
#define WARD_S_IFIFO 0010000
#define WARD_PROC_SUPER_MAGIC 0x9fa0
#define WARD_BPF_PROG_LOAD 5
#define WARD_PROT_WRITE 0x2
#define WARD_PROT_EXEC 0x4
#define WARD_VM_WRITE 0x2
#define WARD_MAP_ANONYMOUS 0x20

/* Sentinels for `pending.fd_arg` and `pending.dfd_arg`. */
#define ARG_NONE -1
#define ARG_RET 6 /* the fd is the syscall's return value */
#define ARG_CWD 7 /* relative paths are relative to the working directory */

struct pending {
	__u32 kind;
	__u32 syscall;
	/* 1 + index of an argument holding a user string pointer, 0 for none. */
	__u8 str_arg[3];
	/* 1 + index of the length argument when string 0 is a raw sockaddr or struct, 0 otherwise. */
	__u8 raw_len_arg;
	/* Argument whose fd to describe (file path or socket), or ARG_RET / ARG_NONE. */
	__s8 fd_arg;
	/* Argument holding the dirfd string 0 is relative to, or ARG_CWD / ARG_NONE. */
	__s8 dfd_arg;
	__u16 _pad;
	/* Open flags (normalised across open, openat, openat2 and creat). */
	__u64 open_flags;
	__u64 args[6];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct pending);
} PENDING SEC(".maps");

/* Files and directories whose read opens are reported, by identity; filled by the agent from its config. */
struct file_key {
	__u32 dev;
	__u32 _pad;
	__u64 ino;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, struct file_key);
	__type(value, __u8);
} SENSITIVE_FILES SEC(".maps");

/* Longest-prefix rules on absolute paths given to open: PATH_SENSITIVE reports reads, PATH_IGNORE drops. */
#define PATH_SENSITIVE 1
#define PATH_IGNORE 2

struct path_key {
	__u32 prefixlen;
	char path[WARD_STR_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1024);
	__type(key, struct path_key);
	__type(value, __u8);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} PATH_RULES SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct path_key);
} SCRATCH SEC(".maps");

/* Writable-executable memory events per process: JITs do this constantly, a few per process suffice. */
#define MEMORY_EXEC_PER_PROCESS 8

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u32);
} MEMORY_EXEC_SEEN SEC(".maps");

/*
 * Executable file mappings already reported, per program image: a process maps each library once at
 * start, but some map and unmap plugins again and again, and the record with its path walk should be paid
 * once. The image is the process (tgid and start time) and its exec count, so a process that execs
 * another program reports that program's libraries again. An evicted entry only means one more record.
 */
struct library_key {
	__u64 start_ns;
	__u64 exec_id;
	__u64 ino;
	__u32 tgid;
	__u32 dev;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct library_key);
	__type(value, __u8);
} LIBRARIES_SEEN SEC(".maps");

/* args[i] for a run-time i: the verifier refuses variable offsets into the stack, so branch to constants. */
static __always_inline __u64 arg_at(const struct pending *p, __u32 i)
{
	switch (i) {
	case 0: return p->args[0];
	case 1: return p->args[1];
	case 2: return p->args[2];
	case 3: return p->args[3];
	case 4: return p->args[4];
	case 5: return p->args[5];
	default: return 0;
	}
}

/* The rule for an absolute user path (0 when relative, unreadable or unmatched). */
static __always_inline __u8 path_rule(const char *user_path)
{
	__u32 zero = 0;
	struct path_key *key = bpf_map_lookup_elem(&SCRATCH, &zero);
	if (!key)
		return 0;
	long n = bpf_probe_read_user_str(key->path, sizeof(key->path), user_path);
	if (n <= 1 || key->path[0] != '/')
		return 0;
	key->prefixlen = (n - 1) * 8;
	__u8 *rule = bpf_map_lookup_elem(&PATH_RULES, key);
	return rule ? *rule : 0;
}

/* Whether an open is worth a record: writes, creates and truncates of real files, reads of sensitive ones. */
static __always_inline int open_wanted(struct task_struct *task, struct pending *p, long ret)
{
	int write = (p->open_flags & (WARD_O_WRONLY | WARD_O_RDWR | WARD_O_CREAT | WARD_O_TRUNC)) != 0;
	const char *user_path = (const char *)arg_at(p, p->str_arg[0] - 1);
	if (ret < 0) {
		__u8 rule = path_rule(user_path);
		return rule != PATH_IGNORE && (write || rule == PATH_SENSITIVE);
	}
	struct file *file = fd_file(task, ret);
	struct inode *inode = BPF_CORE_READ(file, f_inode);
	__u32 type = BPF_CORE_READ(inode, i_mode) & WARD_S_IFMT;
	struct super_block *sb = BPF_CORE_READ(inode, i_sb);
	/* Terminals, /dev/null, pipes and sockets are not files anyone tampers with through open. */
	if (type == WARD_S_IFCHR || type == WARD_S_IFIFO || type == WARD_S_IFSOCK)
		return 0;
	if (write)
		return path_rule(user_path) != PATH_IGNORE;
	/* The common case, a plain read, is settled by identity lookups without reading the path. A file and
	 * the directory holding it are on the same file system, so they share the device. */
	struct file_key key = { .dev = BPF_CORE_READ(sb, s_dev), .ino = BPF_CORE_READ(inode, i_ino) };
	int sensitive = bpf_map_lookup_elem(&SENSITIVE_FILES, &key) != 0;
	if (!sensitive) {
		key.ino = BPF_CORE_READ(file, f_path.dentry, d_parent, d_inode, i_ino);
		sensitive = bpf_map_lookup_elem(&SENSITIVE_FILES, &key) != 0;
	}
	if (!sensitive && BPF_CORE_READ(sb, s_magic) == WARD_PROC_SUPER_MAGIC) {
		/* /proc/<pid>/mem: reading another process's memory. */
		char name[4] = {};
		bpf_probe_read_kernel(name, sizeof(name), BPF_CORE_READ(file, f_path.dentry, d_name.name));
		sensitive = name[0] == 'm' && name[1] == 'e' && name[2] == 'm' && name[3] == 0;
	}
	if (!sensitive)
		return 0;
	return path_rule(user_path) != PATH_IGNORE;
}

/* Whether an executable file mapping is worth a record: it succeeded, maps a file other than the program
 * itself (a program that maps its own image is no load; a program started as `ld.so ./prog` is one, since
 * the kernel ran ld.so), and is the first mapping of that file by this program image. */
static __always_inline int library_wanted(struct task_struct *task, struct pending *p, long ret)
{
	if (ret < 0)
		return 0;
	struct file *file = fd_file(task, (__s64)(int)p->args[4]);
	if (!file)
		return 0;
	struct inode *inode = BPF_CORE_READ(file, f_inode);
	if (inode == BPF_CORE_READ(task, mm, exe_file, f_inode))
		return 0;
	struct library_key key = {
		.start_ns = BPF_CORE_READ(task, group_leader, start_boottime),
		.exec_id = BPF_CORE_READ(task, self_exec_id),
		.ino = BPF_CORE_READ(inode, i_ino),
		.tgid = BPF_CORE_READ(task, tgid),
		.dev = BPF_CORE_READ(inode, i_sb, s_dev),
	};
	if (bpf_map_lookup_elem(&LIBRARIES_SEEN, &key))
		return 0;
	__u8 one = 1;
	bpf_map_update_elem(&LIBRARIES_SEEN, &key, &one, BPF_ANY);
	return 1;
}

static __always_inline int is_capability_xattr(const char *user_name)
{
	char name[20] = {};
	bpf_probe_read_user_str(name, sizeof(name), user_name);
	const char want[20] = "security.capability";
#pragma unroll
	for (int i = 0; i < 20; i++)
		if (name[i] != want[i])
			return 0;
	return 1;
}

static __always_inline int finish(struct pending p, long ret)
{
	struct task_struct *task = bpf_get_current_task_btf();

	/* Filters that need the outcome, decided before a record is reserved. */
	if (p.kind == WARD_EVENT_OPEN && !open_wanted(task, &p, ret))
		return 0;
	if (p.kind == WARD_EVENT_LIBRARY_LOAD && !library_wanted(task, &p, ret))
		return 0;
	if (p.kind == WARD_EVENT_DUP && !file_sock(fd_file(task, (int)p.args[1])))
		return 0;
	if (p.kind == WARD_EVENT_SETXATTR && !is_capability_xattr((const char *)arg_at(&p, p.str_arg[1] - 1)))
		return 0;

	struct ward_syscall_event *e = reserve(sizeof(*e), p.kind);
	if (!e)
		return 0;
	fill_header(&e->hdr, p.kind, task);
	e->ret = ret;
	e->syscall = p.syscall;
#pragma unroll
	for (int i = 0; i < 6; i++)
		e->args[i] = p.args[i];
	/* Opens use at most four arguments; the fifth slot carries the flags openat2 keeps in a struct. */
	if (p.kind == WARD_EVENT_OPEN)
		e->args[5] = p.open_flags;
	const struct cred *cred = BPF_CORE_READ(task, cred);
	e->uid = BPF_CORE_READ(cred, uid.val);
	e->euid = BPF_CORE_READ(cred, euid.val);
	e->gid = BPF_CORE_READ(cred, gid.val);
	e->egid = BPF_CORE_READ(cred, egid.val);
	if (p.kind == WARD_EVENT_CAPSET) {
		bpf_core_read(&e->args[2], sizeof(e->args[2]), &cred->cap_effective);
		bpf_core_read(&e->args[3], sizeof(e->args[3]), &cred->cap_permitted);
	}

#pragma unroll
	for (int i = 0; i < 3; i++) {
		e->str_len[i] = 0;
		__u8 arg = p.str_arg[i];
		if (arg == 0 || arg > 6)
			continue;
		const void *ptr = (const void *)arg_at(&p, arg - 1);
		if (i == 0 && p.raw_len_arg > 0 && p.raw_len_arg <= 6) {
			__u64 len = arg_at(&p, p.raw_len_arg - 1);
			if (len > 128)
				len = 128;
			if (len > 0) {
				__u32 size = ((len - 1) & 127) + 1;
				if (bpf_probe_read_user(e->str[0], size, ptr) == 0)
					e->str_len[0] = size;
			}
			e->hdr.flags |= WARD_SYS_STR0_RAW;
			continue;
		}
		long n = bpf_probe_read_user_str(e->str[i], WARD_STR_LEN, ptr);
		e->str_len[i] = n > 0 ? n - 1 : 0;
	}

	e->resolved_len = 0;
	e->file_mode = 0;
	e->file_ino = 0;
	e->file_dev = 0;
	__s64 fd = -1;
	if (p.fd_arg == ARG_RET)
		fd = ret;
	else if (p.fd_arg >= 0 && p.fd_arg < 6)
		fd = (__s64)(int)arg_at(&p, p.fd_arg);
	/* One dentry walk at most, of the file acted on or of the directory a relative path is under (a
	 * single call site keeps the verifier's work, and start-up time, down). */
	struct vfsmount *mnt = 0;
	struct dentry *dentry = 0;
	__u16 resolved_as = 0;
	struct file *file = fd_file(task, fd);
	if (file) {
		struct sock *sk = file_sock(file);
		if (sk) {
			read_sock(sk, &e->sock);
			e->hdr.flags |= WARD_SYS_SOCKET;
		} else {
			struct inode *inode = BPF_CORE_READ(file, f_inode);
			e->file_mode = BPF_CORE_READ(inode, i_mode);
			e->file_ino = BPF_CORE_READ(inode, i_ino);
			e->file_dev = BPF_CORE_READ(inode, i_sb, s_dev);
			mnt = BPF_CORE_READ(file, f_path.mnt);
			dentry = BPF_CORE_READ(file, f_path.dentry);
			resolved_as = WARD_SYS_RESOLVED_FILE;
		}
	} else if (p.dfd_arg != ARG_NONE && e->str_len[0] > 0 && e->str[0][0] != '/') {
		/* A relative path that names nothing open: record the directory it is relative to. */
		__s64 dfd = p.dfd_arg == ARG_CWD ? AT_FDCWD : (__s64)(int)arg_at(&p, p.dfd_arg);
		if (dfd == AT_FDCWD) {
			struct fs_struct *fs = BPF_CORE_READ(task, fs);
			mnt = BPF_CORE_READ(fs, pwd.mnt);
			dentry = BPF_CORE_READ(fs, pwd.dentry);
		} else {
			struct file *dir = fd_file(task, dfd);
			mnt = BPF_CORE_READ(dir, f_path.mnt);
			dentry = BPF_CORE_READ(dir, f_path.dentry);
		}
		resolved_as = WARD_SYS_RESOLVED_BASE;
	}
	if (dentry) {
		e->resolved_len =
			walk_path(task, mnt, dentry, e->resolved, &e->hdr.flags, WARD_SYS_RESOLVED_TRUNCATED);
		e->hdr.flags |= resolved_as;
	}
	submit(e);
	return 0;
}

/* Flags of the mapping that holds an address: vm_flags, and bit 63 when it maps a file. */
static long vma_flags_cb(struct task_struct *task, struct vm_area_struct *vma, void *data)
{
	__u64 *out = data;
	*out = BPF_CORE_READ(vma, vm_flags) | (BPF_CORE_READ(vma, vm_file) ? 1ULL << 63 : 0);
	return 0;
}

/* Whether this process may still report writable-executable memory (a few times each). */
static __always_inline int memory_exec_budget(void)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u32 *seen = bpf_map_lookup_elem(&MEMORY_EXEC_SEEN, &tgid);
	if (seen) {
		if (*seen >= MEMORY_EXEC_PER_PROCESS)
			return 0;
		__sync_fetch_and_add(seen, 1);
		return 1;
	}
	__u32 one = 1;
	bpf_map_update_elem(&MEMORY_EXEC_SEEN, &tgid, &one, BPF_ANY);
	return 1;
}

/* Describes a call in `p` (kind and where its paths, fds and sockaddr are); 0 when it is not watched or
 * not worth a record. `p->args` already holds the arguments. */
#define CALL(KIND, S0, S1, S2, RAWLEN, FD, DFD)                                                           \
	do {                                                                                                \
		p->kind = KIND;                                                                             \
		p->str_arg[0] = S0;                                                                         \
		p->str_arg[1] = S1;                                                                         \
		p->str_arg[2] = S2;                                                                         \
		p->raw_len_arg = RAWLEN;                                                                    \
		p->fd_arg = FD;                                                                             \
		p->dfd_arg = DFD;                                                                           \
	} while (0)

static __always_inline int describe_call(long nr, struct pending *p)
{
	__u64 *a = p->args;
	switch (nr) {
	case 2: /* open(path, flags, mode) */
		CALL(WARD_EVENT_OPEN, 1, 0, 0, 0, ARG_RET, ARG_CWD);
		p->open_flags = a[1];
		return 1;
	case 257: /* openat(dfd, path, flags, mode) */
		CALL(WARD_EVENT_OPEN, 2, 0, 0, 0, ARG_RET, 0);
		p->open_flags = a[2];
		return 1;
	case 437: /* openat2(dfd, path, how, size) */
		CALL(WARD_EVENT_OPEN, 2, 0, 0, 0, ARG_RET, 0);
		bpf_probe_read_user(&p->open_flags, sizeof(p->open_flags), (const void *)a[2]);
		return 1;
	case 85: /* creat(path, mode) */
		CALL(WARD_EVENT_OPEN, 1, 0, 0, 0, ARG_RET, ARG_CWD);
		p->open_flags = WARD_O_CREAT | WARD_O_WRONLY | WARD_O_TRUNC;
		return 1;
	case 87: CALL(WARD_EVENT_UNLINK, 1, 0, 0, 0, ARG_NONE, ARG_CWD); return 1;
	case 263: CALL(WARD_EVENT_UNLINK, 2, 0, 0, 0, ARG_NONE, 0); return 1;
	case 82: CALL(WARD_EVENT_RENAME, 1, 2, 0, 0, ARG_NONE, ARG_CWD); return 1;
	case 264: /* fallthrough: renameat and renameat2 share their first four arguments */
	case 316: CALL(WARD_EVENT_RENAME, 2, 4, 0, 0, ARG_NONE, 0); return 1;
	case 86: CALL(WARD_EVENT_LINK, 2, 1, 0, 0, ARG_NONE, ARG_CWD); return 1;
	case 265: CALL(WARD_EVENT_LINK, 4, 2, 0, 0, ARG_NONE, 2); return 1;
	case 88: CALL(WARD_EVENT_SYMLINK, 2, 1, 0, 0, ARG_NONE, ARG_CWD); return 1;
	case 266: CALL(WARD_EVENT_SYMLINK, 3, 1, 0, 0, ARG_NONE, 1); return 1;
	case 90: CALL(WARD_EVENT_CHMOD, 1, 0, 0, 0, ARG_NONE, ARG_CWD); return 1;
	case 91: CALL(WARD_EVENT_CHMOD, 0, 0, 0, 0, 0, ARG_NONE); return 1;
	case 268: /* fchmodat and fchmodat2 */
	case 452: CALL(WARD_EVENT_CHMOD, 2, 0, 0, 0, ARG_NONE, 0); return 1;
	case 92: /* chown and lchown */
	case 94: CALL(WARD_EVENT_CHOWN, 1, 0, 0, 0, ARG_NONE, ARG_CWD); return 1;
	case 93: CALL(WARD_EVENT_CHOWN, 0, 0, 0, 0, 0, ARG_NONE); return 1;
	case 260: CALL(WARD_EVENT_CHOWN, 2, 0, 0, 0, ARG_NONE, 0); return 1;
	case 76: CALL(WARD_EVENT_TRUNCATE, 1, 0, 0, 0, ARG_NONE, ARG_CWD); return 1;
	case 77:
		/* ftruncate is how databases and logs grow and shrink; only truncation to zero is reported. */
		if (a[1] != 0)
			return 0;
		CALL(WARD_EVENT_TRUNCATE, 0, 0, 0, 0, 0, ARG_NONE);
		return 1;
	case 188: /* setxattr and lsetxattr */
	case 189: CALL(WARD_EVENT_SETXATTR, 1, 2, 0, 0, ARG_NONE, ARG_CWD); return 1;
	case 190: CALL(WARD_EVENT_SETXATTR, 0, 2, 0, 0, 0, ARG_NONE); return 1;
	case 42: CALL(WARD_EVENT_CONNECT, 2, 0, 0, 3, 0, ARG_NONE); return 1;
	case 43: /* accept and accept4 */
	case 288: CALL(WARD_EVENT_ACCEPT, 0, 0, 0, 0, ARG_RET, ARG_NONE); return 1;
	case 49: CALL(WARD_EVENT_BIND, 2, 0, 0, 3, 0, ARG_NONE); return 1;
	case 50: CALL(WARD_EVENT_LISTEN, 0, 0, 0, 0, 0, ARG_NONE); return 1;
	case 33: /* dup2 and dup3 onto stdin, stdout or stderr; exit keeps those that install a socket */
	case 292:
		if (a[1] > 2)
			return 0;
		CALL(WARD_EVENT_DUP, 0, 0, 0, 0, 1, ARG_NONE);
		return 1;
	case 105: case 106: case 113: case 114: case 117: case 119: case 122: case 123: {
		/* set*id: the credentials before the call go in args 4 and 5 (uid<<32|euid, gid<<32|egid);
		 * none of these calls has more than three arguments. */
		CALL(WARD_EVENT_SETID, 0, 0, 0, 0, ARG_NONE, ARG_NONE);
		struct task_struct *task = (struct task_struct *)bpf_get_current_task();
		const struct cred *cred = BPF_CORE_READ(task, cred);
		a[4] = (__u64)BPF_CORE_READ(cred, uid.val) << 32 | BPF_CORE_READ(cred, euid.val);
		a[5] = (__u64)BPF_CORE_READ(cred, gid.val) << 32 | BPF_CORE_READ(cred, egid.val);
		return 1;
	}
	case 126: {
		/* capset: effective and permitted sets before (args 4, 5) and after (args 2, 3, at exit). */
		CALL(WARD_EVENT_CAPSET, 0, 0, 0, 0, ARG_NONE, ARG_NONE);
		struct task_struct *task = (struct task_struct *)bpf_get_current_task();
		const struct cred *cred = BPF_CORE_READ(task, cred);
		bpf_core_read(&a[4], sizeof(a[4]), &cred->cap_effective);
		bpf_core_read(&a[5], sizeof(a[5]), &cred->cap_permitted);
		return 1;
	}
	case 101: {
		/* ptrace requests that attach to, or write into, another process (or ask to be traced), not
		 * the reads a debugger or strace makes thousands of times a second. */
		__u64 req = a[0];
		if (!(req == 0 || (req >= 4 && req <= 6) || req == 13 || req == 16 || req == 0x4205 || req == 0x4206))
			return 0;
		CALL(WARD_EVENT_PTRACE, 0, 0, 0, 0, ARG_NONE, ARG_NONE);
		return 1;
	}
	case 310: /* process_vm_readv and process_vm_writev */
	case 311: CALL(WARD_EVENT_VM_ACCESS, 0, 0, 0, 0, ARG_NONE, ARG_NONE); return 1;
	case 319: CALL(WARD_EVENT_MEMFD, 1, 0, 0, 0, ARG_NONE, ARG_NONE); return 1;
	case 323: CALL(WARD_EVENT_USERFAULTFD, 0, 0, 0, 0, ARG_NONE, ARG_NONE); return 1;
	case 175: CALL(WARD_EVENT_MODULE, 3, 0, 0, 0, ARG_NONE, ARG_NONE); return 1;
	case 313: CALL(WARD_EVENT_MODULE, 2, 0, 0, 0, 0, ARG_NONE); return 1;
	case 321:
		/* bpf(): only program loads; string 0 holds the start of the attribute (type, name). */
		if (a[0] != WARD_BPF_PROG_LOAD)
			return 0;
		CALL(WARD_EVENT_BPF, 2, 0, 0, 3, ARG_NONE, ARG_NONE);
		return 1;
	case 165: CALL(WARD_EVENT_MOUNT, 1, 2, 3, 0, ARG_NONE, ARG_NONE); return 1;
	case 272: CALL(WARD_EVENT_NAMESPACE, 0, 0, 0, 0, ARG_NONE, ARG_NONE); return 1;
	case 308: CALL(WARD_EVENT_NAMESPACE, 0, 0, 0, 0, 0, ARG_NONE); return 1;
	case 10: {
		/* mprotect making anonymous writable memory executable (or asking for write+exec at once). */
		__u64 prot = a[2];
		if (!(prot & WARD_PROT_EXEC))
			return 0;
		if (!(prot & WARD_PROT_WRITE)) {
			__u64 flags = 0;
			bpf_find_vma(bpf_get_current_task_btf(), a[0], vma_flags_cb, &flags, 0);
			if (!(flags & WARD_VM_WRITE) || (flags >> 63))
				return 0;
		}
		if (!memory_exec_budget())
			return 0;
		CALL(WARD_EVENT_MEMORY_EXEC, 0, 0, 0, 0, ARG_NONE, ARG_NONE);
		return 1;
	}
	case 9:
		/* mmap(addr, len, prot, flags, fd, off) */
		if (!(a[2] & WARD_PROT_EXEC))
			return 0;
		/* Write+exec at once: memory for code made at run time. */
		if (a[2] & WARD_PROT_WRITE) {
			if (!memory_exec_budget())
				return 0;
			CALL(WARD_EVENT_MEMORY_EXEC, 0, 0, 0, 0, ARG_NONE, ARG_NONE);
			return 1;
		}
		/* Read+exec of a file: how the loader maps a library's code (exit keeps the first per file). */
		if ((a[3] & WARD_MAP_ANONYMOUS) || (int)a[4] < 0)
			return 0;
		CALL(WARD_EVENT_LIBRARY_LOAD, 0, 0, 0, 0, 4, ARG_NONE);
		return 1;
	default:
		return 0;
	}
}

/* Whether the call that just returned could have been kept at enter (saves a map lookup on every exit). */
static __always_inline int maybe_watched(long nr)
{
	switch (nr) {
	case 2: case 9: case 10: case 33: case 42: case 43: case 49: case 50: case 76: case 77: case 82:
	case 85: case 86: case 87: case 88: case 90: case 91: case 92: case 93: case 94: case 101: case 105:
	case 106: case 113: case 114: case 117: case 119: case 122: case 123: case 126: case 165: case 175:
	case 188: case 189: case 190: case 257: case 260: case 263: case 264: case 265: case 266: case 268:
	case 272: case 288: case 292: case 308: case 310: case 311: case 313: case 316: case 319: case 321:
	case 323: case 437: case 452:
		return 1;
	default:
		return 0;
	}
}

/* Calls whose record needs the state before the call (credentials, the mapping's old flags): only these
 * are seen at enter. Every other call is described at exit, where pt_regs still holds its arguments, so
 * the common case costs no map update and no lookup. */
static __always_inline int needs_enter(long nr)
{
	switch (nr) {
	case 10: case 105: case 106: case 113: case 114: case 117: case 119: case 122: case 123: case 126:
		return 1;
	default:
		return 0;
	}
}

/* x86_64 syscall argument registers, as saved at entry (unchanged at exit). tp_btf hands us a typed
 * pointer, so these are plain loads rather than probe-read helper calls: this runs for every watched call. */
#define SYSCALL_ARGS(regs)                                                                                \
	{ regs->di, regs->si, regs->dx, regs->r10, regs->r8, regs->r9 }

SEC("tp_btf/sys_enter")
int BPF_PROG(ward_sys_enter, struct pt_regs *regs, long nr)
{
	if (!needs_enter(nr))
		return 0;
	__u64 id = bpf_get_current_pid_tgid();
	if (is_agent(id >> 32))
		return 0;
	struct pending p = { .syscall = nr, .args = SYSCALL_ARGS(regs) };
	if (!describe_call(nr, &p) || !kind_enabled(p.kind))
		return 0;
	bpf_map_update_elem(&PENDING, &id, &p, BPF_ANY);
	return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(ward_sys_exit, struct pt_regs *regs, long ret)
{
	long nr = regs->orig_ax;
	if (!maybe_watched(nr))
		return 0;
	__u64 id = bpf_get_current_pid_tgid();
	if (is_agent(id >> 32))
		return 0;
	if (needs_enter(nr)) {
		struct pending *stored = bpf_map_lookup_elem(&PENDING, &id);
		if (!stored)
			return 0;
		struct pending p = *stored;
		bpf_map_delete_elem(&PENDING, &id);
		return finish(p, ret);
	}
	struct pending p = { .syscall = nr, .args = SYSCALL_ARGS(regs) };
	if (!describe_call(nr, &p) || !kind_enabled(p.kind))
		return 0;
	return finish(p, ret);
}
