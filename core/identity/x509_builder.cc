#include "core/identity/x509_builder.h"

namespace sluice::identity {
namespace {

Result<void> addExtension(X509* cert, X509V3_CTX* ctx, int nid, const char* value) {
  X509ExtensionPtr ext(X509V3_EXT_nconf_nid(nullptr, ctx, nid, value));
  if (!ext || X509_add_ext(cert, ext.get(), -1) != 1) {
    return opensslError(std::string("cannot add certificate extension ") + OBJ_nid2sn(nid));
  }
  return success();
}

Result<void> addUriSan(X509* cert, const std::string& uri) {
  GeneralNamesPtr names(GENERAL_NAMES_new());
  GENERAL_NAME* name = GENERAL_NAME_new();
  ASN1_IA5STRING* value = ASN1_IA5STRING_new();
  if (!names || name == nullptr || value == nullptr ||
      ASN1_STRING_set(value, uri.data(), static_cast<int>(uri.size())) != 1) {
    GENERAL_NAME_free(name);
    ASN1_IA5STRING_free(value);
    return opensslError("cannot build URI SAN");
  }
  GENERAL_NAME_set0_value(name, GEN_URI, value);  // name owns value now
  if (sk_GENERAL_NAME_push(names.get(), name) == 0) {
    GENERAL_NAME_free(name);
    return opensslError("cannot build URI SAN");
  }
  // Critical only when the subject is empty (RFC 5280 4.2.1.6); ours always has one.
  if (X509_add1_ext_i2d(cert, NID_subject_alt_name, names.get(), 0, X509V3_ADD_DEFAULT) != 1) {
    return opensslError("cannot add URI SAN");
  }
  return success();
}

Result<void> setName(X509_NAME* name, const CertificateSpec& spec) {
  auto add = [&](const char* field, const std::string& value) {
    return value.empty() ||
           X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8,
                                      reinterpret_cast<const unsigned char*>(value.data()),
                                      static_cast<int>(value.size()), -1, 0) == 1;
  };
  if (!add("O", spec.organization) || !add("CN", spec.common_name)) {
    return opensslError("cannot set certificate subject");
  }
  return success();
}

}  // namespace

Result<EvpPkeyPtr> generateP256Key() {
  EvpPkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  if (!key) return opensslError("cannot generate ECDSA P-256 key");
  return key;
}

Result<X509Ptr> buildCertificate(const CertificateSpec& spec, EVP_PKEY* subject_key,
                                 const X509* issuer, EVP_PKEY* issuer_key) {
  if (subject_key == nullptr || issuer_key == nullptr) {
    return Error{"buildCertificate: missing key"};
  }
  X509Ptr cert(X509_new());
  if (!cert) return opensslError("cannot allocate certificate");
  if (X509_set_version(cert.get(), X509_VERSION_3) != 1) return opensslError("X509_set_version");

  // Random positive serial below 2^127 (RFC 5280 allows 20 octets; CAs use >= 64 random bits).
  BignumPtr serial(BN_new());
  if (!serial || BN_rand(serial.get(), 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1 ||
      BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert.get())) == nullptr) {
    return opensslError("cannot set certificate serial");
  }

  using std::chrono::system_clock;
  if (ASN1_TIME_set(X509_getm_notBefore(cert.get()), system_clock::to_time_t(spec.not_before)) ==
          nullptr ||
      ASN1_TIME_set(X509_getm_notAfter(cert.get()), system_clock::to_time_t(spec.not_after)) ==
          nullptr) {
    return opensslError("cannot set certificate validity");
  }

  if (auto ok = setName(X509_get_subject_name(cert.get()), spec); !ok) return ok.error();
  X509_NAME* issuer_name =
      issuer != nullptr ? X509_get_subject_name(issuer) : X509_get_subject_name(cert.get());
  if (X509_set_issuer_name(cert.get(), issuer_name) != 1 ||
      X509_set_pubkey(cert.get(), subject_key) != 1) {
    return opensslError("cannot set certificate issuer or key");
  }

  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer != nullptr ? const_cast<X509*>(issuer) : cert.get(), cert.get(),
                 nullptr, nullptr, 0);
  Result<void> ok = success();
  if (spec.is_ca) {
    if (!(ok = addExtension(cert.get(), &ctx, NID_basic_constraints, "critical,CA:TRUE"))) {
      return ok.error();
    }
    if (!(ok = addExtension(cert.get(), &ctx, NID_key_usage, "critical,keyCertSign,cRLSign"))) {
      return ok.error();
    }
  } else {
    if (!(ok = addExtension(cert.get(), &ctx, NID_basic_constraints, "critical,CA:FALSE"))) {
      return ok.error();
    }
    if (!(ok = addExtension(cert.get(), &ctx, NID_key_usage, "critical,digitalSignature"))) {
      return ok.error();
    }
    if (!(ok = addExtension(cert.get(), &ctx, NID_ext_key_usage, "serverAuth,clientAuth"))) {
      return ok.error();
    }
  }
  if (!(ok = addExtension(cert.get(), &ctx, NID_subject_key_identifier, "hash"))) {
    return ok.error();
  }
  if (issuer != nullptr &&
      !(ok = addExtension(cert.get(), &ctx, NID_authority_key_identifier, "keyid:always"))) {
    return ok.error();
  }
  if (spec.uri_san && !(ok = addUriSan(cert.get(), *spec.uri_san))) return ok.error();

  if (X509_sign(cert.get(), issuer_key, EVP_sha256()) <= 0) {
    return opensslError("cannot sign certificate");
  }
  return cert;
}

}  // namespace sluice::identity
