/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * DNS sensor: cgroup_skb programs on the cgroup v2 root see every packet of every socket, whatever resolver
 * library (glibc, musl, Go, static binaries) sent it. A query leaves in its sender's context, so egress
 * attributes it with the current pid and remembers the socket cookie; a response arrives in softirq context
 * (an unrelated task), so ingress attributes it through that cookie.
 *
 * Only the client side of an exchange is a lookup: a query going out to port 53 and the answer coming back
 * from it. A DNS server on this host sees the same messages the other way round (the query arrives on its
 * port 53, its reply leaves from it); those packets are skipped, or a query to a local server would be
 * reported again by the server's socket (with no owner known yet, as a query without a process).
 */
#include "common.h"
#include "socket.h"

#define WARD_ETH_P_IP 0x0800
#define WARD_ETH_P_IPV6 0x86DD
#define WARD_IPPROTO_TCP 6
#define WARD_IPPROTO_UDP 17
#define DNS_PORT 53

struct dns_owner {
	__u32 pid;
	__u32 tgid;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct dns_owner);
} DNS_OWNERS SEC(".maps");

static __always_inline void dns_packet(struct __sk_buff *skb, int egress)
{
	if (!kind_enabled(WARD_EVENT_DNS))
		return;
	__u8 ip[40];
	__u8 proto;
	__u32 off;
	struct ward_socket s = {};
	/* Addresses as they appear on the wire; the record keeps local first. */
	__u8 *src, *dst;
	__u32 addr_len;
	if (skb->protocol == bpf_htons(WARD_ETH_P_IP)) {
		if (bpf_skb_load_bytes(skb, 0, ip, 20))
			return;
		/* A fragment other than the first has no transport header. */
		if (((ip[6] & 0x1f) | ip[7]) != 0)
			return;
		proto = ip[9];
		off = (ip[0] & 0x0f) * 4;
		s.family = WARD_AF_INET;
		src = &ip[12];
		dst = &ip[16];
		addr_len = 4;
	} else if (skb->protocol == bpf_htons(WARD_ETH_P_IPV6)) {
		if (bpf_skb_load_bytes(skb, 0, ip, 40))
			return;
		proto = ip[6];
		off = 40;
		s.family = WARD_AF_INET6;
		src = &ip[8];
		dst = &ip[24];
		addr_len = 16;
	} else {
		return;
	}
	if (proto != WARD_IPPROTO_UDP && proto != WARD_IPPROTO_TCP)
		return;
	__be16 ports[2];
	if (bpf_skb_load_bytes(skb, off, ports, sizeof(ports)))
		return;
	__u16 sport = bpf_ntohs(ports[0]), dport = bpf_ntohs(ports[1]);
	__u16 remote_port = egress ? dport : sport;
	if (remote_port != DNS_PORT)
		return;

	__u64 cookie = bpf_get_socket_cookie(skb);
	struct dns_owner owner = {};
	struct dns_owner *known = bpf_map_lookup_elem(&DNS_OWNERS, &cookie);
	if (known) {
		owner = *known;
	} else if (egress) {
		/* The first packet of a socket (a UDP query, a TCP SYN) leaves in its owner's context. */
		__u64 id = bpf_get_current_pid_tgid();
		owner.pid = (__u32)id;
		owner.tgid = id >> 32;
		if (owner.tgid)
			bpf_map_update_elem(&DNS_OWNERS, &cookie, &owner, BPF_ANY);
	}
	if (is_agent(owner.tgid))
		return;

	if (proto == WARD_IPPROTO_UDP) {
		off += 8;
	} else {
		__u8 doff;
		if (bpf_skb_load_bytes(skb, off + 12, &doff, 1))
			return;
		/* DNS over TCP: each message is prefixed by its 2-byte length. */
		off += (doff >> 4) * 4 + 2;
	}
	if (skb->len <= off)
		return;
	__u32 len = skb->len - off;

	struct ward_dns_event *e = reserve(sizeof(*e), WARD_EVENT_DNS);
	if (!e)
		return;
	e->hdr.kind = WARD_EVENT_DNS;
	e->hdr.flags = 0;
	e->hdr.cpu = bpf_get_smp_processor_id();
	e->hdr.time_ns = bpf_ktime_get_boot_ns();
	e->hdr.pid = owner.pid;
	e->hdr.tgid = owner.tgid;
	/* Not readable here: the agent looks the process up by pid. */
	e->hdr.start_ns = 0;
	e->cookie = cookie;
	e->egress = egress;
	e->len = len;
	s.sock_type = proto == WARD_IPPROTO_UDP ? 2 : 1;
	s.protocol = proto;
	s.sport = egress ? sport : dport;
	s.dport = egress ? dport : sport;
	__u8 *local = egress ? src : dst, *remote = egress ? dst : src;
	if (addr_len == 4) {
		__builtin_memcpy(s.saddr, local, 4);
		__builtin_memcpy(s.daddr, remote, 4);
	} else {
		__builtin_memcpy(s.saddr, local, 16);
		__builtin_memcpy(s.daddr, remote, 16);
	}
	e->sock = s;
	/* A size the verifier can bound to [1, WARD_DNS_PAYLOAD]. */
	__u32 n = len > WARD_DNS_PAYLOAD ? WARD_DNS_PAYLOAD : len;
	n = ((n - 1) & (WARD_DNS_PAYLOAD - 1)) + 1;
	e->captured = bpf_skb_load_bytes(skb, off, e->payload, n) == 0 ? n : 0;
	submit(e);
}

SEC("cgroup_skb/egress")
int ward_dns_egress(struct __sk_buff *skb)
{
	dns_packet(skb, 1);
	return 1;
}

SEC("cgroup_skb/ingress")
int ward_dns_ingress(struct __sk_buff *skb)
{
	dns_packet(skb, 0);
	return 1;
}
