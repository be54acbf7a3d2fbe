// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Outbound capture: cgroup/connect4 and cgroup/connect6 send the TCP
 * connections of enrolled pods to ztunnel's pod-local outbound listener, and
 * sockops records where each one was going so ztunnel can find out.
 *
 * Original destination, step by step:
 *  1. connect4/6 (before the kernel binds the socket) keeps the destination in
 *     the connecting socket's storage (connect_state). Socket storage dies with
 *     the socket, so a connect that fails early leaves nothing behind.
 *  2. sockops TCP_CONNECT_CB runs inside connect() once the source address and
 *     ephemeral port are chosen and before the SYN is sent. It copies the entry
 *     into orig_dst under the connection's 4-tuple and netns cookie, which is
 *     exactly what ztunnel can read from the accepted socket (getpeername,
 *     getsockname, SO_NETNS_COOKIE). The accepted socket is a different socket
 *     from the connecting one, so socket storage alone cannot be shared.
 *     Publishing before the SYN means ztunnel can never accept a connection
 *     whose entry is not there yet.
 *  3. ztunnel takes the entry (lookup and delete) right after accept(). The
 *     connecting socket cannot decide when the entry is no longer needed: a
 *     client may connect, write and close() before ztunnel accepts, and the
 *     kernel then finishes its side (FIN_WAIT2 -> time-wait, TCP_CLOSE) while
 *     the accepted connection with the data still waits in the queue.
 *  4. sockops STATE_CB (enabled only on captured sockets) deletes the entry of
 *     a connection that never got established (refused, timed out, closed
 *     while connecting): no accepted socket will ever ask for it. What is left
 *     (established, never accepted: the listener closed with a full queue)
 *     ages out of orig_dst, an LRU map, ahead of live entries.
 *
 * Kernel facts this relies on (all in 6.1): bpf_get_netns_cookie in sock_addr
 * and sockops programs, bpf_sk_storage_get in both, ctx->sk in sock_addr.
 */
#include "lib/common.h"
#include "lib/addr.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Tunables, set by user space through skel->rodata before load. */
const volatile __u32 ztunnel_mark = SLUICE_ZTUNNEL_MARK_DEFAULT;
const volatile __u16 outbound_port = SLUICE_OUTBOUND_PORT_DEFAULT;
const volatile __u16 ztunnel_ports[SLUICE_MAX_PORTS] = {
	15001, 15006, 15008, 15020, 15021, 15000,
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SLUICE_ENROLLED_MAX);
	__type(key, __u64); /* netns cookie */
	__type(value, struct sluice_enrolled_value);
} enrolled SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, SLUICE_EXCLUDE_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct sluice_exclude_key);
	__type(value, struct sluice_exclude_value);
} exclude SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct sluice_connect_state);
} connect_state SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SLUICE_ORIG_DST_MAX);
	__type(key, struct sluice_conn_key);
	__type(value, struct sluice_orig_dst);
} orig_dst SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SLUICE_CAPTURE_DECISION_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} capture_counters SEC(".maps");

static __always_inline bool dst_excluded(const struct sluice_orig_dst *dst)
{
	struct sluice_exclude_key key = {
		.prefixlen = 16 + 128,
		.port = dst->port,
	};

	__builtin_memcpy(key.addr, dst->addr, sizeof(key.addr));
	if (bpf_map_lookup_elem(&exclude, &key))
		return true;
	key.port = 0;
	return bpf_map_lookup_elem(&exclude, &key) != NULL;
}

/* Which rule decides this connect; most sockets on a node are not in an enrolled pod. */
static __always_inline enum sluice_capture_decision
classify_connect(struct bpf_sock_addr *ctx, const struct sluice_orig_dst *dst)
{
	__u64 netns = bpf_get_netns_cookie(ctx);
	struct bpf_sock *sk = ctx->sk;

	if (!bpf_map_lookup_elem(&enrolled, &netns))
		return SLUICE_BYPASS_NOT_ENROLLED;
	if (sk->mark == ztunnel_mark)
		return SLUICE_BYPASS_MARK;
	if (ctx->type != SLUICE_SOCK_STREAM || ctx->protocol != IPPROTO_TCP)
		return SLUICE_BYPASS_PROTOCOL;
	if (sluice_addr_is_local(dst->addr))
		return SLUICE_BYPASS_LOOPBACK;
	if (sluice_port_listed(ztunnel_ports, bpf_ntohs(dst->port)))
		return SLUICE_BYPASS_PORT;
	if (dst_excluded(dst))
		return SLUICE_BYPASS_EXCLUDED;
	return SLUICE_CAPTURED;
}

/*
 * Decides, and for a captured connect remembers @dst in the socket's storage.
 * Returns the decision, or SLUICE_ERROR_NO_STORAGE when the destination could
 * not be kept: the caller then refuses the connect rather than let the
 * connection bypass the mesh or reach ztunnel without a destination.
 */
static __always_inline enum sluice_capture_decision
capture_connect(struct bpf_sock_addr *ctx, const struct sluice_orig_dst *dst, __u32 wire_flags)
{
	enum sluice_capture_decision decision = classify_connect(ctx, dst);
	struct sluice_connect_state *state;

	if (decision != SLUICE_CAPTURED)
		return decision;
	state = bpf_sk_storage_get(&connect_state, ctx->sk, NULL, BPF_SK_STORAGE_GET_F_CREATE);
	if (!state)
		return SLUICE_ERROR_NO_STORAGE;
	state->dst = *dst;
	/* A socket can connect again after a failed attempt; start clean. */
	__builtin_memset(&state->key, 0, sizeof(state->key));
	state->flags = wire_flags;
	return SLUICE_CAPTURED;
}

SEC("cgroup/connect4")
int sluice_connect4(struct bpf_sock_addr *ctx)
{
	struct sluice_orig_dst dst = {
		.port = (__be16)ctx->user_port,
	};
	enum sluice_capture_decision decision;

	sluice_addr_from_v4(dst.addr, ctx->user_ip4);
	decision = capture_connect(ctx, &dst, SLUICE_CONNECT_WIRE_V4);
	sluice_count(&capture_counters, decision);
	if (decision == SLUICE_ERROR_NO_STORAGE)
		return 0;
	if (decision == SLUICE_CAPTURED) {
		ctx->user_ip4 = bpf_htonl(0x7f000001);
		ctx->user_port = bpf_htons(outbound_port);
	}
	return 1;
}

/*
 * An AF_INET6 socket may connect to an IPv4-mapped address (Java does this for
 * every IPv4 connection). Such a connection runs over IPv4, so it is treated as
 * IPv4: classified by its IPv4 address and sent to ::ffff:127.0.0.1, the IPv4
 * outbound listener.
 */
SEC("cgroup/connect6")
int sluice_connect6(struct bpf_sock_addr *ctx)
{
	struct sluice_orig_dst dst = {
		.addr = { ctx->user_ip6[0], ctx->user_ip6[1], ctx->user_ip6[2], ctx->user_ip6[3] },
		.port = (__be16)ctx->user_port,
	};
	bool mapped = sluice_addr_is_v4_mapped(dst.addr);
	enum sluice_capture_decision decision;

	decision = capture_connect(ctx, &dst, mapped ? SLUICE_CONNECT_WIRE_V4 : 0);
	sluice_count(&capture_counters, decision);
	if (decision == SLUICE_ERROR_NO_STORAGE)
		return 0;
	if (decision == SLUICE_CAPTURED) {
		ctx->user_ip6[0] = 0;
		ctx->user_ip6[1] = 0;
		ctx->user_ip6[2] = mapped ? bpf_htonl(0x0000ffff) : 0;
		ctx->user_ip6[3] = mapped ? bpf_htonl(0x7f000001) : bpf_htonl(1);
		ctx->user_port = bpf_htons(outbound_port);
	}
	return 1;
}

/*
 * The 4-tuple as the accepting side will see it. For IPv4 on the wire the
 * IPv4 fields are used even on an AF_INET6 socket: during TCP_CONNECT_CB of a
 * v4-mapped connect the kernel has not yet copied the source address into the
 * socket's IPv6 fields (tcp_v6_connect does that after tcp_v4_connect returns).
 */
static __always_inline void conn_key_from_sockops(struct bpf_sock_ops *skops, __u32 flags,
						  struct sluice_conn_key *key)
{
	key->netns_cookie = bpf_get_netns_cookie(skops);
	if (flags & SLUICE_CONNECT_WIRE_V4) {
		sluice_addr_from_v4(key->src_addr, skops->local_ip4);
		sluice_addr_from_v4(key->dst_addr, skops->remote_ip4);
	} else {
		key->src_addr[0] = skops->local_ip6[0];
		key->src_addr[1] = skops->local_ip6[1];
		key->src_addr[2] = skops->local_ip6[2];
		key->src_addr[3] = skops->local_ip6[3];
		key->dst_addr[0] = skops->remote_ip6[0];
		key->dst_addr[1] = skops->remote_ip6[1];
		key->dst_addr[2] = skops->remote_ip6[2];
		key->dst_addr[3] = skops->remote_ip6[3];
	}
	/* local_port is in host byte order; remote_port holds the network-order port
	 * in the upper half on little-endian, so bpf_ntohl yields it in host order. */
	key->src_port = bpf_htons((__u16)skops->local_port);
	key->dst_port = bpf_htons((__u16)bpf_ntohl(skops->remote_port));
	key->pad = 0;
}

static __always_inline void publish_orig_dst(struct bpf_sock_ops *skops)
{
	struct sluice_connect_state *state;
	struct bpf_sock *sk = skops->sk;

	if (!sk)
		return;
	state = bpf_sk_storage_get(&connect_state, sk, NULL, 0);
	if (!state)
		return; /* not a captured socket */
	conn_key_from_sockops(skops, state->flags, &state->key);
	if (bpf_map_update_elem(&orig_dst, &state->key, &state->dst, BPF_ANY)) {
		sluice_count(&capture_counters, SLUICE_ERROR_ORIG_DST_UPDATE);
		return;
	}
	state->flags |= SLUICE_CONNECT_PUBLISHED;
	bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags | BPF_SOCK_OPS_STATE_CB_FLAG);
	sluice_count(&capture_counters, SLUICE_ORIG_DST_PUBLISHED);
}

/* args[0] is the old state, args[1] the new one. */
static __always_inline void discard_unconnected(struct bpf_sock_ops *skops)
{
	struct sluice_connect_state *state;
	struct bpf_sock *sk = skops->sk;

	if (skops->args[0] != BPF_TCP_SYN_SENT || skops->args[1] != BPF_TCP_CLOSE || !sk)
		return;
	state = bpf_sk_storage_get(&connect_state, sk, NULL, 0);
	if (!state || !(state->flags & SLUICE_CONNECT_PUBLISHED))
		return;
	bpf_map_delete_elem(&orig_dst, &state->key);
	state->flags &= ~SLUICE_CONNECT_PUBLISHED;
	sluice_count(&capture_counters, SLUICE_ORIG_DST_DISCARDED);
}

SEC("sockops")
int sluice_sockops(struct bpf_sock_ops *skops)
{
	switch (skops->op) {
	case BPF_SOCK_OPS_TCP_CONNECT_CB:
		publish_orig_dst(skops);
		break;
	case BPF_SOCK_OPS_STATE_CB:
		discard_unconnected(skops);
		break;
	}
	return 1;
}
