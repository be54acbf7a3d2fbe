// WorkloadCertificate: a SPIFFE X.509 identity (leaf, intermediates, key, trust bundle), plus the
// X.509/PEM helpers shared by the CA, the certificate manager and the TLS contexts.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/identity/openssl_ptr.h"
#include "core/identity/spiffe_id.h"
#include "core/result.h"

namespace sluice::identity {

// One workload's X.509-SVID. Immutable once built and shared as
// std::shared_ptr<const WorkloadCertificate>; a connection keeps its snapshot alive for as long as
// it needs it, so rotation never pulls a certificate from under a live connection.
// When made by makeWorkloadCertificate() (and so by CertificateAuthority::issue()), it guarantees:
// `id` is the leaf's only URI SAN, `key` is an ECDSA P-256 key matching the leaf, the leaf chains
// to one of `roots` through `chain`, and not_before/not_after are the leaf's validity period.
struct WorkloadCertificate {
  SpiffeId id;
  X509Ptr leaf;
  std::vector<X509Ptr> chain;  // intermediates, leaf-side first (may be empty)
  EvpPkeyPtr key;              // ECDSA P-256
  std::vector<X509Ptr> roots;  // trust bundle
  std::chrono::system_clock::time_point not_before;
  std::chrono::system_clock::time_point not_after;

  std::string leafPem() const;
  std::string chainPem() const;  // leaf followed by the intermediates
  std::string rootsPem() const;
};

// Checks and assembles a WorkloadCertificate (see the guarantees above). The validity period is
// not checked against the clock: an expired certificate is still well-formed.
Result<std::shared_ptr<const WorkloadCertificate>> makeWorkloadCertificate(
    X509Ptr leaf, std::vector<X509Ptr> chain, EvpPkeyPtr key, std::vector<X509Ptr> roots);

// The same from PEM text: `chain_pem` holds the leaf first, then any intermediates.
Result<std::shared_ptr<const WorkloadCertificate>> workloadCertificateFromPem(
    std::string_view chain_pem, std::string_view key_pem, std::string_view roots_pem);

// The SPIFFE id of a certificate: its one and only URI SAN, parsed and validated.
Result<SpiffeId> spiffeIdOf(const X509* cert);

bool isP256(const EVP_PKEY* key);

std::string toPem(const X509* cert);
std::string privateKeyPem(const EVP_PKEY* key);                          // unencrypted PKCS#8
Result<std::vector<X509Ptr>> certificatesFromPem(std::string_view pem);  // at least one
Result<EvpPkeyPtr> privateKeyFromPem(std::string_view pem);

std::chrono::system_clock::time_point toTimePoint(const ASN1_TIME* time);
std::string formatUtc(std::chrono::system_clock::time_point t);  // "2026-01-31T12:00:00Z"

}  // namespace sluice::identity
