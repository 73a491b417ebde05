/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/* Maps, load-time settings and helpers shared by every Ward program. */
#ifndef WARD_COMMON_H
#define WARD_COMMON_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>
#include "ward_abi.h"

/* Set by the agent at load time (EbpfLoader::set_global). */
/* The agent's own process id: its activity is never reported (it would feed back on itself). */
const volatile __u32 agent_tgid = 0;
/* Wake the reader only once this many bytes are pending; the reader also polls on a short tick. A wake-up
 * per event costs microseconds of kernel time on virtualised hosts, batching makes it nearly free. */
const volatile __u64 wakeup_bytes = 1 << 20;

/* Bit k set: events of kind k are recorded. Operators scope noisy hosts here, in the kernel. */
const volatile __u64 kind_mask = ~0ULL;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 << 20); /* resized by the agent at load time */
} EVENTS SEC(".maps");

/* Records that did not fit in the ring, per CPU and per event kind. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, WARD_EVENT_KINDS);
	__type(key, __u32);
	__type(value, __u64);
} DROPS SEC(".maps");

static __always_inline int is_agent(__u32 tgid)
{
	return agent_tgid != 0 && tgid == agent_tgid;
}

static __always_inline int kind_enabled(__u32 kind)
{
	return (kind_mask >> (kind & 63)) & 1;
}

static __always_inline void count_drop(__u32 kind)
{
	__u64 *n = bpf_map_lookup_elem(&DROPS, &kind);
	if (n)
		__sync_fetch_and_add(n, 1);
}

/* Reserve a record of `size` bytes for `kind`, counting a drop when the ring is full. */
static __always_inline void *reserve(__u64 size, __u32 kind)
{
	void *rec = bpf_ringbuf_reserve(&EVENTS, size, 0);
	if (!rec)
		count_drop(kind);
	return rec;
}

static __always_inline void submit(void *rec)
{
	__u64 flags = bpf_ringbuf_query(&EVENTS, BPF_RB_AVAIL_DATA) >= wakeup_bytes ? BPF_RB_FORCE_WAKEUP
										      : BPF_RB_NO_WAKEUP;
	bpf_ringbuf_submit(rec, flags);
}

static __always_inline void fill_header(struct ward_header *h, __u16 kind, struct task_struct *task)
{
	h->kind = kind;
	h->flags = 0;
	h->cpu = bpf_get_smp_processor_id();
	h->time_ns = bpf_ktime_get_boot_ns();
	h->pid = BPF_CORE_READ(task, pid);
	h->tgid = BPF_CORE_READ(task, tgid);
	h->start_ns = BPF_CORE_READ(task, group_leader, start_boottime);
}

#endif
