/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Every map key, map value, counter index and default shared by the BPF
 * programs (bpf/NAME.bpf.c) and user space (core/bpf/). Defined once, here, so
 * the two sides cannot drift apart.
 *
 * Addresses are always 16 bytes in network byte order; an IPv4 address is
 * stored IPv4-mapped (::ffff:a.b.c.d). One key layout then serves both
 * families, and a dual-stack AF_INET6 socket talking to a v4-mapped address
 * produces the same key as the AF_INET listener that accepts it.
 */
#ifndef SLUICE_BPF_SHARED_H
#define SLUICE_BPF_SHARED_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* Defaults of the tunables (const volatile globals set through skel->rodata). */
#define SLUICE_ZTUNNEL_MARK_DEFAULT 1337 /* 0x539: SO_MARK on ztunnel's own sockets */
#define SLUICE_OUTBOUND_PORT_DEFAULT 15001
#define SLUICE_INBOUND_PORT_DEFAULT 15006
#define SLUICE_HBONE_PORT_DEFAULT 15008
#define SLUICE_MAX_PORTS 8 /* size of the port lists; 0 marks an unused slot */

/* Map sizes (user space may lower or raise them before load). */
#define SLUICE_ENROLLED_MAX 16384
#define SLUICE_EXCLUDE_MAX 1024
#define SLUICE_ORIG_DST_MAX 65536

/* enrolled: key = netns cookie (__u64, bpf_get_netns_cookie / SO_NETNS_COOKIE). */
struct sluice_enrolled_value {
	__u32 flags; /* reserved, 0 */
};

/*
 * exclude: LPM trie of destinations left alone. The port comes first so one
 * trie holds both "CIDR, any port" (port 0) and "CIDR, this port" entries:
 * prefixlen = 16 + address prefix bits (96 + n for an IPv4 /n), and the
 * program looks up the real port first, then port 0.
 */
struct sluice_exclude_key {
	__u32 prefixlen;
	__be16 port;   /* network byte order; 0 = any port */
	__u8 addr[16]; /* IPv4-mapped for IPv4 */
	__u8 pad[2];   /* zero */
};

struct sluice_exclude_value {
	__u32 flags; /* reserved, 0 */
};

/*
 * The destination the application asked for, before the rewrite. An IPv4
 * destination (connect4, or connect6 to a v4-mapped address) is IPv4-mapped.
 */
struct sluice_orig_dst {
	__u32 addr[4]; /* network byte order */
	__be16 port;
	__u16 pad; /* zero */
};

/*
 * orig_dst (LRU hash): key = the captured connection as the accepting side
 * sees it, so ztunnel can find the entry from the accepted socket alone:
 * netns cookie (SO_NETNS_COOKIE), peer address (getpeername) and local
 * address (getsockname). The client's ephemeral port is only known once the
 * kernel has bound the socket, which is why sockops (TCP_CONNECT_CB), not
 * connect4, publishes the entry. ztunnel deletes the entry when it reads it.
 */
struct sluice_conn_key {
	__u64 netns_cookie;
	__u32 src_addr[4]; /* client = accepted socket's peer */
	__u32 dst_addr[4]; /* listener = accepted socket's local address */
	__be16 src_port;
	__be16 dst_port;
	__u32 pad; /* zero */
};

/* connect_state (socket storage of the connecting socket). */
enum sluice_connect_flags {
	SLUICE_CONNECT_WIRE_V4 = 1,   /* the rewritten connection runs over IPv4 */
	SLUICE_CONNECT_PUBLISHED = 2, /* key is in orig_dst (until ztunnel takes it) */
};

struct sluice_connect_state {
	struct sluice_orig_dst dst;
	struct sluice_conn_key key;
	__u32 flags; /* enum sluice_connect_flags */
	__u32 pad;
};

/* Index of the per-CPU counters of cgroup/connect4, cgroup/connect6 and sockops. */
enum sluice_capture_decision {
	SLUICE_CAPTURED = 0,           /* rewritten to the outbound listener */
	SLUICE_BYPASS_MARK,            /* ztunnel's own socket (SO_MARK) */
	SLUICE_BYPASS_NOT_ENROLLED,    /* netns not in `enrolled` */
	SLUICE_BYPASS_PROTOCOL,        /* not TCP (UDP connect, MPTCP, ...) */
	SLUICE_BYPASS_LOOPBACK,        /* 127.0.0.0/8, ::1, unspecified */
	SLUICE_BYPASS_PORT,            /* one of ztunnel's own ports */
	SLUICE_BYPASS_EXCLUDED,        /* matched `exclude` */
	SLUICE_ORIG_DST_PUBLISHED,     /* sockops put the 4-tuple into orig_dst */
	SLUICE_ORIG_DST_DISCARDED,     /* removed: the connection was never established */
	SLUICE_ERROR_NO_STORAGE,       /* socket storage full: connect refused (EPERM) */
	SLUICE_ERROR_ORIG_DST_UPDATE,  /* orig_dst update failed: ztunnel cannot recover it */
	SLUICE_CAPTURE_DECISION_COUNT,
};

/* sk_lookup: SOCKMAP slots of ztunnel's inbound listener in one pod netns. */
enum sluice_inbound_slot {
	SLUICE_INBOUND_LISTENER = 0,  /* AF_INET or dual-stack AF_INET6 listener */
	SLUICE_INBOUND_LISTENER6 = 1, /* optional IPV6_V6ONLY listener for IPv6 */
	SLUICE_INBOUND_SLOT_COUNT,
};

/* Index of the per-CPU counters of sk_lookup. */
enum sluice_inbound_decision {
	SLUICE_INBOUND_STEERED = 0,        /* assigned to the inbound listener */
	SLUICE_INBOUND_PASS_LOCAL,         /* from inside the pod (lo, or pod IP to itself) */
	SLUICE_INBOUND_PASS_PORT,          /* HBONE or another port ztunnel serves itself */
	SLUICE_INBOUND_PASS_PROTOCOL,      /* not TCP */
	SLUICE_INBOUND_DROP_NO_LISTENER,   /* fail closed: no inbound listener registered */
	SLUICE_INBOUND_DROP_ASSIGN_FAILED, /* fail closed: bpf_sk_assign refused the listener */
	SLUICE_INBOUND_DECISION_COUNT,
};

#endif /* SLUICE_BPF_SHARED_H */
