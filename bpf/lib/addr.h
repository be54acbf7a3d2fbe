/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* 16-byte addresses in network byte order, IPv4 stored IPv4-mapped. */
#ifndef SLUICE_BPF_LIB_ADDR_H
#define SLUICE_BPF_LIB_ADDR_H

#include "common.h"

static __always_inline void sluice_addr_from_v4(__u32 out[4], __u32 ip4)
{
	out[0] = 0;
	out[1] = 0;
	out[2] = bpf_htonl(0x0000ffff);
	out[3] = ip4;
}

static __always_inline bool sluice_addr_is_v4_mapped(const __u32 addr[4])
{
	return addr[0] == 0 && addr[1] == 0 && addr[2] == bpf_htonl(0x0000ffff);
}

/*
 * Destinations that never leave the pod: 127.0.0.0/8 and ::1, and the
 * unspecified addresses, which Linux connects to the local host.
 */
static __always_inline bool sluice_addr_is_local(const __u32 addr[4])
{
	if (sluice_addr_is_v4_mapped(addr))
		return (bpf_ntohl(addr[3]) >> 24) == 127 || addr[3] == 0;
	return addr[0] == 0 && addr[1] == 0 && addr[2] == 0 &&
	       (addr[3] == 0 || addr[3] == bpf_htonl(1));
}

#endif /* SLUICE_BPF_LIB_ADDR_H */
