// TLS contexts for mesh mTLS (HBONE), in plain OpenSSL: TLS 1.3 only, AES-GCM suites, ALPN "h2",
// no SNI, no session tickets or resumption, SPIFFE identity checks inside certificate
// verification so a wrong peer fails the handshake itself.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/identity/certificate.h"
#include "core/identity/openssl_ptr.h"
#include "core/identity/spiffe_id.h"
#include "core/result.h"

namespace sluice::identity {

inline constexpr std::string_view kAlpnH2 = "h2";
inline constexpr const char* kTls13Ciphersuites = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384";
inline constexpr const char* kTlsGroups = "X25519:P-256:P-384";

// A server context presenting `cert`. It requires a client certificate, verifies its chain
// against cert.roots and that its one URI SAN is a valid SPIFFE id in cert.id.trustDomain()
// (which workload it is, is left to authorization: read it with peerIdentity()). It selects ALPN
// h2 and refuses clients that do not offer it. The context holds its own references to the
// certificate, key and roots; build a new context when the certificate rotates.
Result<SslCtxPtr> serverContext(const WorkloadCertificate& cert);

// A client context presenting `cert`. It verifies the server chain against cert.roots, offers
// ALPN h2 (and fails unless the server selects it) and sends no SNI. Every SSL made from it must
// be given its expected server identities with expectPeer() before the handshake; without them
// the handshake fails closed.
Result<SslCtxPtr> clientContext(const WorkloadCertificate& cert);

// Client side, before the handshake: the server's SPIFFE id must be one of `allowed`.
void expectPeer(SSL* ssl, std::vector<SpiffeId> allowed);

// After a successful handshake: the verified peer's SPIFFE id.
Result<SpiffeId> peerIdentity(const SSL* ssl);

// After a failed handshake: why, for an operator, e.g. "peer certificate has expired (notAfter
// 2026-01-02T03:04:05Z)", "peer identity spiffe://cluster.local/ns/a/sa/b is not one of the
// expected [spiffe://cluster.local/ns/a/sa/c]", "peer trust domain evil.org does not match
// cluster.local", "self-signed certificate not issued by the mesh CA", "peer sent no
// certificate", or, on the side that was refused, "peer rejected the handshake (alert ...)".
// Empty if verification did not fail (e.g. the connection just closed).
std::string verificationFailure(const SSL* ssl);

}  // namespace sluice::identity
