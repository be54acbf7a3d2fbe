// Owning smart pointers for OpenSSL objects, and the error-queue helpers that go with them.
#pragma once

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>
#include <string>
#include <string_view>

#include "core/result.h"

namespace sluice::identity {

// Calls an OpenSSL free function; a stateless deleter keeps the unique_ptr pointer-sized.
template <auto FreeFn>
struct OpensslDeleter {
  template <class T>
  void operator()(T* p) const {
    FreeFn(p);
  }
};

template <class T, auto FreeFn>
using OpensslPtr = std::unique_ptr<T, OpensslDeleter<FreeFn>>;

using X509Ptr = OpensslPtr<X509, X509_free>;
using EvpPkeyPtr = OpensslPtr<EVP_PKEY, EVP_PKEY_free>;
using EvpPkeyCtxPtr = OpensslPtr<EVP_PKEY_CTX, EVP_PKEY_CTX_free>;
using SslCtxPtr = OpensslPtr<SSL_CTX, SSL_CTX_free>;
using SslPtr = OpensslPtr<SSL, SSL_free>;
using X509StorePtr = OpensslPtr<X509_STORE, X509_STORE_free>;
using X509StoreCtxPtr = OpensslPtr<X509_STORE_CTX, X509_STORE_CTX_free>;
using X509NamePtr = OpensslPtr<X509_NAME, X509_NAME_free>;
using X509ExtensionPtr = OpensslPtr<X509_EXTENSION, X509_EXTENSION_free>;
using GeneralNamesPtr = OpensslPtr<GENERAL_NAMES, GENERAL_NAMES_free>;
using Asn1TimePtr = OpensslPtr<ASN1_TIME, ASN1_TIME_free>;
using BignumPtr = OpensslPtr<BIGNUM, BN_free>;
using BioPtr = OpensslPtr<BIO, BIO_free_all>;

// Takes a new reference on an object someone else owns.
X509Ptr shareX509(X509* cert);
EvpPkeyPtr shareKey(EVP_PKEY* key);

// Drains this thread's OpenSSL error queue into one line ("error:...; error:..."), or "" if empty.
// Call it right after the failing OpenSSL call so stale errors do not leak into the next report.
std::string opensslErrors();

// Error{"<what>: <drained OpenSSL errors>"} (or just <what> when the queue is empty).
Error opensslError(std::string_view what);

}  // namespace sluice::identity
