// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Local-hop acceleration (optional, off unless user space loads it): the bytes
 * of a connection between two sockets of the same pod netns over loopback
 * (the application's captured connection to ztunnel's 127.0.0.1:15001) are
 * handed from the sender straight to the peer socket's receive queue, skipping
 * the TCP/IP stack and the loopback device.
 *
 *  1. sockops, on ACTIVE_ and PASSIVE_ESTABLISHED_CB, puts each end of such a
 *     connection (netns enrolled, loopback address, port in accel_ports on the
 *     listener's side) into accel_sockets, a SOCKHASH keyed by the end's own
 *     view (netns cookie, local, remote). The kernel removes a socket from the
 *     map when it closes.
 *  2. sk_msg, attached to accel_sockets, runs for every sendmsg() of a socket
 *     in the map. It redirects the message to the peer (the key with local and
 *     remote swapped) with BPF_F_INGRESS, only if the peer is in the map, and
 *     otherwise lets it take the normal TCP path (SK_PASS).
 *
 * Conservative by design (kernels have had bugs here): a socket that sent one
 * message the normal way never redirects again (SLUICE_ACCEL_PASSED), because
 * the receiver reads redirected bytes before those waiting in its TCP receive
 * queue. The client end enters the map first (it is established one round trip
 * earlier), so its first messages may pass while ztunnel's end is not there
 * yet; nothing is lost, that connection is just not accelerated. Control
 * (shutdown, close, FIN) always takes the normal path.
 *
 * Kernel features used (all in 6.1): SOCKHASH with sockops
 * bpf_sock_hash_update (4.18), sk_msg + bpf_msg_redirect_hash (4.18),
 * sk_msg_md->sk and socket storage in sk_msg, bpf_get_netns_cookie in sockops
 * and sk_msg (5.15). No BPF link for map programs (6.10): sk_msg is attached
 * to the map with BPF_PROG_ATTACH. LocalAcceleration::checkKernelSupport()
 * probes them; the VM suite loads and runs this on Debian's 6.1 and 6.12.
 */
#include "lib/common.h"
#include "lib/addr.h"
#include "sluice_accel.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Ports of the listeners whose local connections are accelerated (ztunnel's outbound). */
const volatile __u16 accel_ports[SLUICE_MAX_PORTS] = { SLUICE_OUTBOUND_PORT_DEFAULT };

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SLUICE_ENROLLED_MAX);
	__type(key, __u64); /* netns cookie */
	__type(value, struct sluice_enrolled_value);
} accel_enrolled SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, SLUICE_ACCEL_SOCKETS_MAX);
	__type(key, struct sluice_conn_key);
	__type(value, __u64); /* socket cookie (user space reads it) / fd (user space writes it) */
} accel_sockets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct sluice_accel_state);
} accel_state SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SLUICE_ACCEL_DECISION_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} accel_counters SEC(".maps");

static __always_inline void count_by(__u32 decision, __u64 amount)
{
	__u64 *value = bpf_map_lookup_elem(&accel_counters, &decision);

	if (value)
		*value += amount;
}

static __always_inline void copy_addr(__u32 out[4], const __u32 in[4])
{
	out[0] = in[0];
	out[1] = in[1];
	out[2] = in[2];
	out[3] = in[3];
}

/*
 * The socket's own view of its connection. Both context types give the same
 * fields: ports local in host order, remote in network order shifted into the
 * upper half (bpf_ntohl yields host order on little-endian). Every field is
 * read, unconditionally, into a local first, behind an empty asm: clang
 * otherwise merges the loads of the two branches into one load through a
 * computed context pointer, which the verifier rejects ("dereference of
 * modified ctx ptr").
 */
#define SLUICE_CTX_LOAD(field)                                                     \
	({                                                                         \
		__u32 value_ = (field);                                            \
		asm volatile("" : "+r"(value_));                                   \
		value_;                                                            \
	})

#define SLUICE_ACCEL_KEY(ctx, key)                                                 \
	do {                                                                       \
		__u32 family_ = SLUICE_CTX_LOAD((ctx)->family);                    \
		__u32 local4_ = SLUICE_CTX_LOAD((ctx)->local_ip4);                 \
		__u32 remote4_ = SLUICE_CTX_LOAD((ctx)->remote_ip4);               \
		__u32 local6_[4] = { SLUICE_CTX_LOAD((ctx)->local_ip6[0]),         \
				     SLUICE_CTX_LOAD((ctx)->local_ip6[1]),         \
				     SLUICE_CTX_LOAD((ctx)->local_ip6[2]),         \
				     SLUICE_CTX_LOAD((ctx)->local_ip6[3]) };       \
		__u32 remote6_[4] = { SLUICE_CTX_LOAD((ctx)->remote_ip6[0]),       \
				      SLUICE_CTX_LOAD((ctx)->remote_ip6[1]),       \
				      SLUICE_CTX_LOAD((ctx)->remote_ip6[2]),       \
				      SLUICE_CTX_LOAD((ctx)->remote_ip6[3]) };     \
		__u32 local_port_ = SLUICE_CTX_LOAD((ctx)->local_port);            \
		__u32 remote_port_ = SLUICE_CTX_LOAD((ctx)->remote_port);          \
                                                                                   \
		(key)->netns_cookie = bpf_get_netns_cookie(ctx);                   \
		if (family_ == SLUICE_AF_INET) {                                   \
			sluice_addr_from_v4((key)->src_addr, local4_);             \
			sluice_addr_from_v4((key)->dst_addr, remote4_);            \
		} else {                                                           \
			copy_addr((key)->src_addr, local6_);                       \
			copy_addr((key)->dst_addr, remote6_);                      \
		}                                                                  \
		(key)->src_port = bpf_htons((__u16)local_port_);                   \
		(key)->dst_port = bpf_htons((__u16)bpf_ntohl(remote_port_));       \
		(key)->pad = 0;                                                    \
	} while (0)

/* An end of a local hop: loopback both ways, and the listener's port is one of accel_ports. */
static __always_inline bool is_local_hop(const struct sluice_conn_key *key, bool passive)
{
	__u16 listener_port = bpf_ntohs(passive ? key->src_port : key->dst_port);

	if (!sluice_addr_is_local(key->src_addr) || !sluice_addr_is_local(key->dst_addr))
		return false;
	return sluice_port_listed(accel_ports, listener_port);
}

static __always_inline void add_socket(struct bpf_sock_ops *skops, bool passive)
{
	struct sluice_conn_key key = {};
	struct sluice_accel_state *state;
	struct bpf_sock *sk = skops->sk;

	if (!sk || (skops->family != SLUICE_AF_INET && skops->family != SLUICE_AF_INET6))
		return;
	SLUICE_ACCEL_KEY(skops, &key);
	if (!bpf_map_lookup_elem(&accel_enrolled, &key.netns_cookie) || !is_local_hop(&key, passive))
		return;
	/* The state must exist before the socket can send through sk_msg: without it
	 * a pass could not be remembered, and a later redirect could overtake it. */
	state = bpf_sk_storage_get(&accel_state, sk, NULL, BPF_SK_STORAGE_GET_F_CREATE);
	if (!state) {
		count_by(SLUICE_ACCEL_ERROR_NO_STORAGE, 1);
		return;
	}
	state->flags = 0;
	if (bpf_sock_hash_update(skops, &accel_sockets, &key, BPF_ANY)) {
		count_by(SLUICE_ACCEL_ERROR_MAP_UPDATE, 1);
		return;
	}
	state->flags = SLUICE_ACCEL_IN_MAP;
	bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags | BPF_SOCK_OPS_STATE_CB_FLAG);
	count_by(SLUICE_ACCEL_SOCKET_ADDED, 1);
}

/* STATE_CB is also enabled by capture's sockops on its sockets: count only ours. */
static __always_inline void count_closed(struct bpf_sock_ops *skops)
{
	struct sluice_accel_state *state;
	struct bpf_sock *sk = skops->sk;

	if (skops->args[1] != BPF_TCP_CLOSE || !sk)
		return;
	state = bpf_sk_storage_get(&accel_state, sk, NULL, 0);
	if (!state || !(state->flags & SLUICE_ACCEL_IN_MAP))
		return;
	state->flags &= ~SLUICE_ACCEL_IN_MAP;
	count_by(SLUICE_ACCEL_SOCKET_CLOSED, 1);
}

SEC("sockops")
int sluice_accel_sockops(struct bpf_sock_ops *skops)
{
	switch (skops->op) {
	case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
		add_socket(skops, false);
		break;
	case BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB:
		add_socket(skops, true);
		break;
	case BPF_SOCK_OPS_STATE_CB:
		count_closed(skops); /* the kernel itself unlinks a closing socket */
		break;
	}
	return 1;
}

SEC("sk_msg")
int sluice_accel_msg(struct sk_msg_md *msg)
{
	struct sluice_conn_key self = {};
	struct sluice_conn_key peer = {};
	struct sluice_accel_state *state;
	struct bpf_sock *sk = msg->sk;

	if (!sk)
		return SK_PASS;
	state = bpf_sk_storage_get(&accel_state, sk, NULL, 0);
	if (!state || (state->flags & SLUICE_ACCEL_PASSED)) {
		count_by(SLUICE_ACCEL_PASS_STICKY, 1);
		return SK_PASS;
	}
	SLUICE_ACCEL_KEY(msg, &self);
	peer.netns_cookie = self.netns_cookie;
	copy_addr(peer.src_addr, self.dst_addr);
	copy_addr(peer.dst_addr, self.src_addr);
	peer.src_port = self.dst_port;
	peer.dst_port = self.src_port;
	/* SK_DROP here only means "peer not in the map": nothing was set, so the
	 * message still goes the normal way when the program returns SK_PASS. */
	if (bpf_msg_redirect_hash(msg, &accel_sockets, &peer, BPF_F_INGRESS) == SK_PASS) {
		count_by(SLUICE_ACCEL_REDIRECTED, 1);
		count_by(SLUICE_ACCEL_REDIRECTED_BYTES, msg->size);
		return SK_PASS;
	}
	state->flags |= SLUICE_ACCEL_PASSED;
	count_by(SLUICE_ACCEL_PASS_NO_PEER, 1);
	return SK_PASS;
}
