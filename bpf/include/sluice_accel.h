/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Keys, values and counter indexes of the local-hop acceleration (accel.bpf.c),
 * shared with user space (core/bpf/local_acceleration.h). Kept apart from
 * sluice_shared.h while the feature is optional; same conventions: addresses
 * are 16 bytes in network byte order, IPv4 stored IPv4-mapped.
 */
#ifndef SLUICE_BPF_ACCEL_H
#define SLUICE_BPF_ACCEL_H

#include "sluice_shared.h"

/* Sockets the SOCKHASH can hold: two per accelerated connection. */
#define SLUICE_ACCEL_SOCKETS_MAX 65536

/*
 * accel_sockets (SOCKHASH): key = one end of a local connection as that end
 * sees it: netns cookie, its own address and port (local), its peer's
 * (remote). The peer of the same connection is found under the same key with
 * local and remote swapped. struct sluice_conn_key is reused with src = local,
 * dst = remote.
 */
#define sluice_accel_key sluice_conn_key

/* accel_state (socket storage of every socket put into accel_sockets). */
enum sluice_accel_flags {
	/*
	 * A message of this socket went the normal TCP way (the peer was not in
	 * the map yet). From then on the socket never redirects: bytes queued on
	 * the peer's TCP receive queue would otherwise be overtaken by redirected
	 * ones, which the receiver reads first.
	 */
	SLUICE_ACCEL_PASSED = 1,
	/* The socket is in accel_sockets (until it closes). */
	SLUICE_ACCEL_IN_MAP = 2,
};

struct sluice_accel_state {
	__u32 flags; /* enum sluice_accel_flags */
	__u32 pad;
};

/* Index of the per-CPU counters of the acceleration programs. */
enum sluice_accel_decision {
	SLUICE_ACCEL_SOCKET_ADDED = 0,   /* sockops: an end of a local hop entered the map */
	SLUICE_ACCEL_SOCKET_CLOSED,      /* sockops: a socket of the map closed (the kernel removes it) */
	SLUICE_ACCEL_REDIRECTED,         /* sk_msg: message handed to the peer's receive queue */
	SLUICE_ACCEL_REDIRECTED_BYTES,   /* sk_msg: bytes of those messages */
	SLUICE_ACCEL_PASS_NO_PEER,       /* sk_msg: peer not in the map: normal TCP path */
	SLUICE_ACCEL_PASS_STICKY,        /* sk_msg: this socket passed before: normal TCP path */
	SLUICE_ACCEL_ERROR_NO_STORAGE,   /* sockops: no socket storage: socket left out */
	SLUICE_ACCEL_ERROR_MAP_UPDATE,   /* sockops: SOCKHASH update failed (full?): left out */
	SLUICE_ACCEL_DECISION_COUNT,
};

#endif /* SLUICE_BPF_ACCEL_H */
