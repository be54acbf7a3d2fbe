/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Includes and small helpers every Sluice BPF program uses. Only uapi context
 * fields (struct bpf_sock_addr, bpf_sock_ops, bpf_sk_lookup) are read: the
 * verifier rewrites those accesses for the running kernel, so the programs
 * need no kernel-internal struct layout and run unchanged from 6.1 on.
 */
#ifndef SLUICE_BPF_LIB_COMMON_H
#define SLUICE_BPF_LIB_COMMON_H

#include "vmlinux.h"
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "sluice_shared.h"

/* Macros from uapi headers that vmlinux.h (types only) does not carry. */
#define SLUICE_AF_INET 2
#define SLUICE_AF_INET6 10
#define SLUICE_SOCK_STREAM 1
#define SLUICE_LOOPBACK_IFINDEX 1 /* lo is ifindex 1 in every netns */

/* Adds one to a per-CPU counter; per-CPU slots need no atomics. */
static __always_inline void sluice_count(void *counters, __u32 decision)
{
	__u64 *value = bpf_map_lookup_elem(counters, &decision);

	if (value)
		*value += 1;
}

/* True when @port (host byte order) is in @ports, a rodata list padded with 0. */
static __always_inline bool sluice_port_listed(const volatile __u16 *ports, __u16 port)
{
#pragma unroll
	for (int i = 0; i < SLUICE_MAX_PORTS; i++) {
		if (ports[i] != 0 && ports[i] == port)
			return true;
	}
	return false;
}

#endif /* SLUICE_BPF_LIB_COMMON_H */
