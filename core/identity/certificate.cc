#include "core/identity/certificate.h"

#include <openssl/core_names.h>
#include <openssl/pem.h>

#include <ctime>

namespace sluice::identity {
namespace {

std::string bioToString(BIO* bio) {
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  return std::string(data, len > 0 ? static_cast<std::size_t>(len) : 0);
}

BioPtr memoryBio(std::string_view text) {
  return BioPtr(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
}

// Verifies the chain's signatures and CA constraints but not the dates: an expired certificate is
// still the workload's certificate, and the TLS peer is the one who rejects it.
Result<void> verifyChain(X509* leaf, const std::vector<X509Ptr>& chain,
                         const std::vector<X509Ptr>& roots) {
  X509StorePtr store(X509_STORE_new());
  if (!store) return opensslError("cannot allocate X509_STORE");
  for (const auto& root : roots) {
    if (X509_STORE_add_cert(store.get(), root.get()) != 1) {
      return opensslError("cannot add root certificate to the trust store");
    }
  }
  // The stack borrows the certificates: sk_X509_free releases the stack, not its elements.
  struct StackFree {
    void operator()(STACK_OF(X509) * s) const { sk_X509_free(s); }
  };
  std::unique_ptr<STACK_OF(X509), StackFree> untrusted(sk_X509_new_null());
  for (const auto& cert : chain) sk_X509_push(untrusted.get(), cert.get());
  X509StoreCtxPtr ctx(X509_STORE_CTX_new());
  if (!ctx || X509_STORE_CTX_init(ctx.get(), store.get(), leaf, untrusted.get()) != 1) {
    return opensslError("cannot set up certificate verification");
  }
  X509_STORE_CTX_set_flags(ctx.get(), X509_V_FLAG_NO_CHECK_TIME);
  if (X509_verify_cert(ctx.get()) != 1) {
    int err = X509_STORE_CTX_get_error(ctx.get());
    ERR_clear_error();
    return Error{std::string("certificate does not chain to the trust bundle: ") +
                 X509_verify_cert_error_string(err)};
  }
  return success();
}

}  // namespace

std::string WorkloadCertificate::leafPem() const { return toPem(leaf.get()); }

std::string WorkloadCertificate::chainPem() const {
  std::string pem = toPem(leaf.get());
  for (const auto& cert : chain) pem += toPem(cert.get());
  return pem;
}

std::string WorkloadCertificate::rootsPem() const {
  std::string pem;
  for (const auto& root : roots) pem += toPem(root.get());
  return pem;
}

Result<std::shared_ptr<const WorkloadCertificate>> makeWorkloadCertificate(
    X509Ptr leaf, std::vector<X509Ptr> chain, EvpPkeyPtr key, std::vector<X509Ptr> roots) {
  if (!leaf) return Error{"workload certificate is missing its leaf certificate"};
  if (!key) return Error{"workload certificate is missing its private key"};
  if (roots.empty()) return Error{"workload certificate has an empty trust bundle"};
  auto id = spiffeIdOf(leaf.get());
  if (!id) return Error{"workload certificate: " + id.message()};
  if (!isP256(key.get())) {
    return Error{"workload certificate for " + id->str() + ": key is not ECDSA P-256"};
  }
  if (X509_check_private_key(leaf.get(), key.get()) != 1) {
    ERR_clear_error();
    return Error{"workload certificate for " + id->str() +
                 ": private key does not match the certificate"};
  }
  if (auto ok = verifyChain(leaf.get(), chain, roots); !ok) {
    return Error{"workload certificate for " + id->str() + ": " + ok.message()};
  }
  auto cert = std::make_shared<WorkloadCertificate>();
  cert->id = std::move(*id);
  cert->not_before = toTimePoint(X509_get0_notBefore(leaf.get()));
  cert->not_after = toTimePoint(X509_get0_notAfter(leaf.get()));
  cert->leaf = std::move(leaf);
  cert->chain = std::move(chain);
  cert->key = std::move(key);
  cert->roots = std::move(roots);
  return std::shared_ptr<const WorkloadCertificate>(std::move(cert));
}

Result<std::shared_ptr<const WorkloadCertificate>> workloadCertificateFromPem(
    std::string_view chain_pem, std::string_view key_pem, std::string_view roots_pem) {
  auto chain = certificatesFromPem(chain_pem);
  if (!chain) return Error{"workload certificate chain: " + chain.message()};
  auto key = privateKeyFromPem(key_pem);
  if (!key) return Error{"workload private key: " + key.message()};
  auto roots = certificatesFromPem(roots_pem);
  if (!roots) return Error{"trust bundle: " + roots.message()};
  X509Ptr leaf = std::move(chain->front());
  chain->erase(chain->begin());
  return makeWorkloadCertificate(std::move(leaf), std::move(*chain), std::move(*key),
                                 std::move(*roots));
}

Result<SpiffeId> spiffeIdOf(const X509* cert) {
  if (cert == nullptr) return Error{"no certificate"};
  GeneralNamesPtr names(
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr)));
  std::vector<std::string_view> uris;
  for (int i = 0; names && i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names.get(), i);
    if (name->type != GEN_URI) continue;
    const ASN1_IA5STRING* uri = name->d.uniformResourceIdentifier;
    uris.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(uri)),
                      static_cast<std::size_t>(ASN1_STRING_length(uri)));
  }
  if (uris.empty()) return Error{"certificate has no URI SAN, so it carries no SPIFFE id"};
  if (uris.size() > 1) {
    return Error{"certificate has " + std::to_string(uris.size()) +
                 " URI SANs; a SPIFFE certificate has exactly one"};
  }
  return SpiffeId::parse(uris.front());
}

bool isP256(const EVP_PKEY* key) {
  if (key == nullptr || EVP_PKEY_get_base_id(key) != EVP_PKEY_EC) return false;
  char group[64] = {};
  std::size_t len = 0;
  if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), &len) !=
      1) {
    ERR_clear_error();
    return false;
  }
  return std::string_view(group, len) == "prime256v1";
}

std::string toPem(const X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), cert) != 1) return {};
  return bioToString(bio.get());
}

std::string privateKeyPem(const EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio ||
      PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return {};
  }
  return bioToString(bio.get());
}

Result<std::vector<X509Ptr>> certificatesFromPem(std::string_view pem) {
  BioPtr bio = memoryBio(pem);
  if (!bio) return opensslError("cannot allocate BIO");
  std::vector<X509Ptr> certs;
  while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    certs.emplace_back(cert);
  }
  // The loop ends with a "no start line" error at end of input; anything else is real damage.
  unsigned long err = ERR_peek_last_error();
  if (ERR_GET_LIB(err) == ERR_LIB_PEM && ERR_GET_REASON(err) == PEM_R_NO_START_LINE) {
    ERR_clear_error();
  }
  if (ERR_peek_error() != 0) return opensslError("malformed PEM certificate");
  if (certs.empty()) return Error{"no PEM certificate found"};
  return certs;
}

Result<EvpPkeyPtr> privateKeyFromPem(std::string_view pem) {
  BioPtr bio = memoryBio(pem);
  if (!bio) return opensslError("cannot allocate BIO");
  EvpPkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!key) return opensslError("no valid PEM private key found");
  return key;
}

std::chrono::system_clock::time_point toTimePoint(const ASN1_TIME* time) {
  std::tm tm{};
  if (time == nullptr || ASN1_TIME_to_tm(time, &tm) != 1) return {};
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

std::string formatUtc(std::chrono::system_clock::time_point t) {
  std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace sluice::identity
