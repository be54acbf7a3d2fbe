// CertificateAuthority: the mesh's embedded CA (lab and single-node use), signing workload leaves
// with an ECDSA P-256 root that is generated on first start and kept on disk.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "core/identity/certificate.h"
#include "core/identity/openssl_ptr.h"
#include "core/identity/spiffe_id.h"
#include "core/result.h"

namespace sluice::identity {

// Guarantees: the root is a CA certificate whose key matches; issue() only signs identities of
// this CA's trust domain. Copies share the same immutable root and key, so a copy can be captured
// by value (e.g. in a CertificateManager::Issuer) and used from any thread.
class CertificateAuthority {
 public:
  static constexpr std::chrono::hours kRootLifetime{24 * 3650};  // 10 years
  static constexpr std::chrono::hours kDefaultLeafLifetime{24};
  // Leaves are backdated by this much so a peer whose clock is a little behind accepts them.
  static constexpr std::chrono::minutes kClockSkewAllowance{5};
  static constexpr std::string_view kRootCertFile = "root-cert.pem";
  static constexpr std::string_view kRootKeyFile = "root-key.pem";

  // Loads <dir>/root-cert.pem + <dir>/root-key.pem, or on first start generates a self-signed
  // ECDSA P-256 root valid for 10 years and writes them (key mode 0600, directory created 0700).
  // Processes starting at once on the same dir agree on one root: they serialise on a flock of
  // <dir>/ca.lock and each file appears atomically (temp file + fsync + rename).
  static Result<CertificateAuthority> loadOrCreate(const std::filesystem::path& dir,
                                                   std::string trust_domain);
  // A root from PEM text (e.g. a mounted Kubernetes secret).
  static Result<CertificateAuthority> fromPem(std::string_view root_cert_pem,
                                              std::string_view root_key_pem,
                                              std::string trust_domain);
  // A fresh in-memory root that is never written anywhere (tests, throwaway labs).
  static Result<CertificateAuthority> generate(
      std::string trust_domain,
      std::chrono::system_clock::time_point now = std::chrono::system_clock::now());

  // Issues a leaf for `id`: fresh P-256 key, URI SAN = id.str(), serverAuth+clientAuth EKU,
  // valid from now - kClockSkewAllowance to now + lifetime (never past the root's own expiry),
  // signed by the root. `now` is a parameter so tests can mint expired certificates.
  Result<std::shared_ptr<const WorkloadCertificate>> issue(
      const SpiffeId& id, std::chrono::seconds lifetime = kDefaultLeafLifetime,
      std::chrono::system_clock::time_point now = std::chrono::system_clock::now()) const;

  const std::string& trustDomain() const { return state_->trust_domain; }
  std::string rootPem() const;
  const X509* root() const { return state_->root.get(); }

 private:
  struct State {
    std::string trust_domain;
    X509Ptr root;
    EvpPkeyPtr key;
  };
  explicit CertificateAuthority(std::shared_ptr<const State> state) : state_(std::move(state)) {}

  std::shared_ptr<const State> state_;
};

}  // namespace sluice::identity
