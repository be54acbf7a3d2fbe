// CertificateSpec + buildCertificate(): the one place that mints X.509 certificates (the CA's root
// and workload leaves; tests use it to forge certificates the mesh must reject).
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "core/identity/openssl_ptr.h"
#include "core/result.h"

namespace sluice::identity {

struct CertificateSpec {
  std::string organization;            // subject O (omitted when empty)
  std::string common_name;             // subject CN (omitted when empty)
  std::optional<std::string> uri_san;  // the SPIFFE id of a leaf
  bool is_ca = false;  // CA: basicConstraints CA:TRUE, keyCertSign; leaf: serverAuth+clientAuth EKU
  std::chrono::system_clock::time_point not_before;
  std::chrono::system_clock::time_point not_after;
};

// A fresh ECDSA P-256 key pair.
Result<EvpPkeyPtr> generateP256Key();

// A version-3 certificate for `subject_key` with a random 127-bit serial, signed with SHA-256 by
// `issuer_key`. `issuer` == nullptr makes it self-signed (then issuer_key must be subject_key).
Result<X509Ptr> buildCertificate(const CertificateSpec& spec, EVP_PKEY* subject_key,
                                 const X509* issuer, EVP_PKEY* issuer_key);

}  // namespace sluice::identity
