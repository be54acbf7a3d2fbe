// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Inbound steering: an sk_lookup program attached to one pod netns
 * (bpf_program__attach_netns) hands every TCP connection arriving from outside
 * the pod to ztunnel's inbound plaintext listener (15006), whatever local port
 * it was addressed to. The accepted socket keeps the address the peer dialled
 * as its local address, so ztunnel learns the original destination with
 * getsockname(): no map is needed on this path.
 *
 * sk_lookup runs only when the kernel looks for a listening socket, after the
 * established-socket lookup failed, so packets of open connections (including
 * the pod's own outbound ones) never reach it.
 *
 * Left alone: UDP; connections from inside the pod (ztunnel delivering to the
 * application, the pod talking to itself); the ports ztunnel binds itself
 * (HBONE 15008 and the admin ports).
 *
 * "From inside the pod" takes two checks, because ingress_ifindex is 1 (lo)
 * only for destinations on lo (127.0.0.0/8, ::1). A connection from the pod to
 * its own pod IP also runs over lo, but the kernel reports the interface that
 * owns the address (the route's rt_iif is set to the FIB result device). Its
 * source address is then a local address too, and the kernel picks the
 * destination itself as source, so remote == local identifies it. Packets from
 * outside cannot carry that source: IPv4 drops them as martians; for IPv6 the
 * SYN-ACK of such a spoofed SYN goes back to the pod, so no connection results.
 * (So ztunnel must deliver to the application from the pod IP or loopback, not
 * from the peer's address with IP_TRANSPARENT: that would be steered again.)
 *
 * Fail closed: when no listener is registered (ztunnel not there yet, or gone:
 * closing a socket removes it from the SOCKMAP) the lookup is dropped, which
 * for TCP answers the SYN with a reset, instead of letting the connection
 * reach the application unauthenticated.
 *
 * One instance (program + SOCKMAP) per pod netns: each pod has its own
 * listener, and the program cannot tell netns apart at run time.
 */
#include "lib/common.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Local ports (host byte order) that keep their normal lookup. */
const volatile __u16 bypass_ports[SLUICE_MAX_PORTS] = {
	15008, 15020, 15021, 15000,
};

struct {
	__uint(type, BPF_MAP_TYPE_SOCKMAP);
	__uint(max_entries, SLUICE_INBOUND_SLOT_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} inbound_listener SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SLUICE_INBOUND_DECISION_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} inbound_counters SEC(".maps");

static __always_inline bool from_inside_pod(struct bpf_sk_lookup *ctx)
{
	if (ctx->ingress_ifindex == SLUICE_LOOPBACK_IFINDEX)
		return true;
	if (ctx->family == SLUICE_AF_INET)
		return ctx->remote_ip4 == ctx->local_ip4;
	return ctx->remote_ip6[0] == ctx->local_ip6[0] && ctx->remote_ip6[1] == ctx->local_ip6[1] &&
	       ctx->remote_ip6[2] == ctx->local_ip6[2] && ctx->remote_ip6[3] == ctx->local_ip6[3];
}

static __always_inline enum sluice_inbound_decision classify_lookup(struct bpf_sk_lookup *ctx)
{
	if (ctx->protocol != IPPROTO_TCP)
		return SLUICE_INBOUND_PASS_PROTOCOL;
	if (from_inside_pod(ctx))
		return SLUICE_INBOUND_PASS_LOCAL;
	if (sluice_port_listed(bypass_ports, (__u16)ctx->local_port))
		return SLUICE_INBOUND_PASS_PORT;
	return SLUICE_INBOUND_STEERED;
}

/*
 * Assigns the inbound listener: the IPv6-only slot for IPv6 when filled, else
 * the main slot (an AF_INET listener, or a dual-stack one for both families).
 */
static __always_inline enum sluice_inbound_decision steer(struct bpf_sk_lookup *ctx)
{
	__u32 slot = SLUICE_INBOUND_LISTENER6;
	struct bpf_sock *sk = NULL;
	long err;

	if (ctx->family == SLUICE_AF_INET6)
		sk = bpf_map_lookup_elem(&inbound_listener, &slot);
	if (!sk) {
		slot = SLUICE_INBOUND_LISTENER;
		sk = bpf_map_lookup_elem(&inbound_listener, &slot);
	}
	if (!sk)
		return SLUICE_INBOUND_DROP_NO_LISTENER;
	err = bpf_sk_assign(ctx, sk, 0);
	bpf_sk_release(sk);
	return err ? SLUICE_INBOUND_DROP_ASSIGN_FAILED : SLUICE_INBOUND_STEERED;
}

SEC("sk_lookup")
int sluice_sk_lookup(struct bpf_sk_lookup *ctx)
{
	enum sluice_inbound_decision decision = classify_lookup(ctx);

	if (decision == SLUICE_INBOUND_STEERED)
		decision = steer(ctx);
	sluice_count(&inbound_counters, decision);
	if (decision == SLUICE_INBOUND_DROP_NO_LISTENER ||
	    decision == SLUICE_INBOUND_DROP_ASSIGN_FAILED)
		return SK_DROP;
	return SK_PASS;
}
