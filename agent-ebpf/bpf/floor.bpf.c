/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * Benchmark floor: the same raw syscall hooks as the syscall sensor, doing nothing but counting. What any
 * syscall-tracepoint sensor pays before it does useful work. Loaded only by `ward-agent count-only`.
 */
#include "common.h"

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} FLOOR_COUNTS SEC(".maps");

static __always_inline void count(__u32 slot)
{
	__u64 *n = bpf_map_lookup_elem(&FLOOR_COUNTS, &slot);
	if (n)
		*n += 1;
}

SEC("tp_btf/sys_enter")
int BPF_PROG(ward_floor_enter, struct pt_regs *regs, long nr)
{
	count(0);
	return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(ward_floor_exit, struct pt_regs *regs, long ret)
{
	count(1);
	return 0;
}
