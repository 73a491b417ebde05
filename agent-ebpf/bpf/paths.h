/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/* Path names from kernel objects: dentry walks (bpf_d_path cannot be used without fentry/LSM). */
#ifndef WARD_PATHS_H
#define WARD_PATHS_H

#include "common.h"

/*
 * Append one NUL-terminated component at buf[*off]; 0 when the buffer has no room left for it.
 * buf_len is a power of two and the offset stays below buf_len, so masking it changes nothing at run time
 * but gives the verifier the same bounds on every iteration of the path walks, which lets it prune them.
 */
static __always_inline int put_component(char *buf, __u32 buf_len, __u32 *off, const char *name)
{
	__u32 o = *off & (buf_len - 1);
	if (o >= buf_len - WARD_PATH_COMPONENT_LEN)
		return 0;
	long n = bpf_probe_read_kernel_str(buf + o, WARD_PATH_COMPONENT_LEN, name);
	if (n > 0)
		*off = (o + n) & (buf_len - 1);
	return 1;
}

/*
 * Path of (vfsmnt, dentry) relative to the task's root (so a container sees its own paths), written leaf
 * first into a WARD_PATH_LEN buffer. Sets `truncated` in *flags when the path is deeper or longer than fits.
 */
static __always_inline __u32 walk_path(struct task_struct *task, struct vfsmount *vfsmnt, struct dentry *dentry,
				       char *buf, __u16 *flags, __u16 truncated)
{
	struct fs_struct *fs = BPF_CORE_READ(task, fs);
	struct dentry *root_dentry = BPF_CORE_READ(fs, root.dentry);
	struct vfsmount *root_mnt = BPF_CORE_READ(fs, root.mnt);
	__u64 mnt_offset = bpf_core_field_offset(struct mount, mnt);
	struct mount *mnt = (struct mount *)((void *)vfsmnt - mnt_offset);
	__u32 off = 0;

	for (int i = 0; i < WARD_PATH_DEPTH; i++) {
		if (dentry == root_dentry && vfsmnt == root_mnt)
			return off;
		struct dentry *parent = BPF_CORE_READ(dentry, d_parent);
		if (dentry == BPF_CORE_READ(vfsmnt, mnt_root) || dentry == parent) {
			/* Top of this mount: continue from where it is mounted. */
			struct mount *up = BPF_CORE_READ(mnt, mnt_parent);
			if (up == mnt)
				return off;
			dentry = BPF_CORE_READ(mnt, mnt_mountpoint);
			mnt = up;
			vfsmnt = (struct vfsmount *)((void *)up + mnt_offset);
			continue;
		}
		if (!put_component(buf, WARD_PATH_LEN, &off, (const char *)BPF_CORE_READ(dentry, d_name.name)))
			break;
		dentry = parent;
	}
	*flags |= truncated;
	return off;
}

/* The file behind a descriptor of `task` (a typed pointer: from tp_btf or bpf_get_current_task_btf, so the
 * table is reached with plain loads), or NULL. */
static __always_inline struct file *fd_file(struct task_struct *task, __s64 fd)
{
	if (fd < 0)
		return 0;
	struct fdtable *fdt = task->files->fdt;
	if (fd >= fdt->max_fds)
		return 0;
	struct file **fds = fdt->fd;
	struct file *file = 0;
	bpf_core_read(&file, sizeof(file), &fds[fd]);
	return file;
}

#endif
