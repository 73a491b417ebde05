/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/* Socket addresses from a struct sock. */
#ifndef WARD_SOCKET_H
#define WARD_SOCKET_H

#include "common.h"

#define WARD_AF_UNIX 1
#define WARD_AF_INET 2
#define WARD_AF_INET6 10
#define WARD_S_IFMT 00170000
#define WARD_S_IFSOCK 0140000

static __always_inline void read_sock(struct sock *sk, struct ward_socket *out)
{
	out->family = BPF_CORE_READ(sk, __sk_common.skc_family);
	out->sock_type = BPF_CORE_READ(sk, sk_type);
	out->protocol = BPF_CORE_READ(sk, sk_protocol);
	out->sport = BPF_CORE_READ(sk, __sk_common.skc_num);
	out->dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (out->family == WARD_AF_INET) {
		__be32 s = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		__be32 d = BPF_CORE_READ(sk, __sk_common.skc_daddr);
		__builtin_memcpy(out->saddr, &s, 4);
		__builtin_memcpy(out->daddr, &d, 4);
	} else if (out->family == WARD_AF_INET6) {
		BPF_CORE_READ_INTO(&out->saddr, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8);
		BPF_CORE_READ_INTO(&out->daddr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr8);
	}
}

/* The socket behind an open file, or NULL when the file is not a socket. */
static __always_inline struct sock *file_sock(struct file *file)
{
	if (!file)
		return 0;
	__u32 mode = BPF_CORE_READ(file, f_inode, i_mode);
	if ((mode & WARD_S_IFMT) != WARD_S_IFSOCK)
		return 0;
	struct socket *sock = BPF_CORE_READ(file, private_data);
	return BPF_CORE_READ(sock, sk);
}

#endif
