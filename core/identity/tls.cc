#include "core/identity/tls.h"

#include <algorithm>
#include <optional>

namespace sluice::identity {
namespace {

// What a context checks; attached to the SSL_CTX so the C callbacks can find it.
struct ContextPolicy {
  bool is_server = false;
  std::string trust_domain;
};

// Per-connection data: who the client expects, and the first reason the handshake failed.
struct ConnectionState {
  std::optional<std::vector<SpiffeId>> expected;
  std::string failure;
};

void freePolicy(void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) {
  delete static_cast<ContextPolicy*>(ptr);
}

void freeConnectionState(void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) {
  delete static_cast<ConnectionState*>(ptr);
}

// SSL_dup copies ex_data pointers; give the copy its own state so each is freed once.
int dupConnectionState(CRYPTO_EX_DATA*, const CRYPTO_EX_DATA*, void** from_d, int, long, void*) {
  auto** slot = reinterpret_cast<ConnectionState**>(from_d);
  if (*slot != nullptr) *slot = new ConnectionState(**slot);
  return 1;
}

int policyIndex() {
  static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, freePolicy);
  return index;
}

int connectionIndex() {
  static const int index =
      SSL_get_ex_new_index(0, nullptr, nullptr, dupConnectionState, freeConnectionState);
  return index;
}

const ContextPolicy* policyOf(const SSL* ssl) {
  return static_cast<const ContextPolicy*>(
      SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), policyIndex()));
}

const ConnectionState* findState(const SSL* ssl) {
  return static_cast<const ConnectionState*>(SSL_get_ex_data(ssl, connectionIndex()));
}

// Callbacks get a const SSL* at times; the ex_data slot is ours to fill all the same.
ConnectionState* stateOf(const SSL* ssl) {
  SSL* mutable_ssl = const_cast<SSL*>(ssl);
  auto* state = static_cast<ConnectionState*>(SSL_get_ex_data(mutable_ssl, connectionIndex()));
  if (state == nullptr) {
    state = new ConnectionState();
    if (SSL_set_ex_data(mutable_ssl, connectionIndex(), state) != 1) {
      delete state;
      return nullptr;
    }
  }
  return state;
}

// The first reason wins: later alerts are consequences of it.
void recordFailure(const SSL* ssl, std::string reason) {
  ConnectionState* state = stateOf(ssl);
  if (state != nullptr && state->failure.empty()) state->failure = std::move(reason);
}

std::string nameOf(const X509_NAME* name) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253) < 0) return "?";
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  std::string text(data, len > 0 ? static_cast<std::size_t>(len) : 0);
  return text.empty() ? "<empty>" : text;
}

// " (presented as spiffe://...)" when the certificate carries an id, to name the culprit.
std::string presentedAs(const X509* cert) {
  auto id = spiffeIdOf(cert);
  return id ? " (presented as " + id->str() + ")" : "";
}

std::string describeVerifyError(int err, int depth, X509* cert) {
  const std::string who =
      depth == 0 ? "peer certificate"
                 : "peer's issuing certificate at depth " + std::to_string(depth) + " (" +
                       (cert != nullptr ? nameOf(X509_get_subject_name(cert)) : "?") + ")";
  switch (err) {
    case X509_V_ERR_CERT_HAS_EXPIRED:
      return who + " has expired (notAfter " + formatUtc(toTimePoint(X509_get0_notAfter(cert))) +
             ")" + (depth == 0 ? presentedAs(cert) : "");
    case X509_V_ERR_CERT_NOT_YET_VALID:
      return who + " is not yet valid (notBefore " +
             formatUtc(toTimePoint(X509_get0_notBefore(cert))) + "); check that the clocks agree";
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
      return "self-signed certificate not issued by the mesh CA" + presentedAs(cert);
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
      return "peer certificate chains to a self-signed root that is not the mesh CA (" +
             nameOf(X509_get_subject_name(cert)) + ")";
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
      return who + " not issued by the mesh CA (issuer " + nameOf(X509_get_issuer_name(cert)) +
             ")" + presentedAs(cert) + "; check that both sides trust the same root";
    case X509_V_ERR_CERT_SIGNATURE_FAILURE:
      return who + " has a signature that does not verify; it was not issued by the mesh CA";
    case X509_V_ERR_INVALID_PURPOSE:
      return who + " is not valid for TLS client and server authentication (extendedKeyUsage)";
    default:
      return who + " rejected: " + X509_verify_cert_error_string(err);
  }
}

std::string joinIds(const std::vector<SpiffeId>& ids) {
  std::string out = "[";
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (i > 0) out += ", ";
    out += ids[i].str();
  }
  return out + "]";
}

std::string_view selectedAlpn(const SSL* ssl) {
  const unsigned char* data = nullptr;
  unsigned int len = 0;
  SSL_get0_alpn_selected(ssl, &data, &len);
  return {reinterpret_cast<const char*>(data), data != nullptr ? len : 0};
}

// Checks the leaf's identity once OpenSSL has verified the chain; returns the failure or "".
std::string checkPeerIdentity(SSL* ssl, const ContextPolicy& policy, X509* leaf) {
  // An X509-SVID is a leaf (SPIFFE X509-SVID: CA:FALSE, neither keyCertSign nor cRLSign): a CA
  // certificate the mesh root signed, say for an intermediate, must not pass for a workload.
  const bool signs_certificates =
      (X509_get_extension_flags(leaf) & EXFLAG_KUSAGE) != 0 &&
      (X509_get_key_usage(leaf) & (KU_KEY_CERT_SIGN | KU_CRL_SIGN)) != 0;
  if (X509_check_ca(leaf) != 0 || signs_certificates)
    return "peer certificate is a CA certificate (basicConstraints CA:TRUE or a "
           "certificate-signing "
           "key usage), not a workload leaf";
  auto id = spiffeIdOf(leaf);
  if (!id) return "peer certificate carries no valid SPIFFE id: " + id.message();
  if (policy.is_server) {
    if (id->trustDomain() != policy.trust_domain) {
      return "peer trust domain " + id->trustDomain() + " does not match " + policy.trust_domain +
             " (peer " + id->str() + ")";
    }
    return {};
  }
  const ConnectionState* state = findState(ssl);
  if (state == nullptr || !state->expected) {
    return "no expected server identities were set for this connection (expectPeer), so peer " +
           id->str() + " cannot be trusted";
  }
  const auto& expected = *state->expected;
  if (std::find(expected.begin(), expected.end(), *id) == expected.end()) {
    return "peer identity " + id->str() + " is not one of the expected " + joinIds(expected);
  }
  // TLS 1.3 sends EncryptedExtensions (with ALPN) before the Certificate, so this is known.
  if (selectedAlpn(ssl) != kAlpnH2) {
    return "peer " + id->str() + " did not select ALPN h2";
  }
  return {};
}

int verifyCallback(int preverify_ok, X509_STORE_CTX* store) {
  auto* ssl =
      static_cast<SSL*>(X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
  if (ssl == nullptr) return 0;
  const ContextPolicy* policy = policyOf(ssl);
  if (policy == nullptr) {
    recordFailure(ssl, "internal error: TLS context has no mesh policy");
    return 0;
  }
  const int depth = X509_STORE_CTX_get_error_depth(store);
  X509* cert = X509_STORE_CTX_get_current_cert(store);
  if (preverify_ok == 0) {
    recordFailure(ssl, describeVerifyError(X509_STORE_CTX_get_error(store), depth, cert));
    return 0;
  }
  if (depth != 0) return 1;
  std::string failure = checkPeerIdentity(ssl, *policy, cert);
  if (!failure.empty()) {
    // CERT_REJECTED makes OpenSSL send "bad certificate", telling the peer what to look at.
    X509_STORE_CTX_set_error(store, X509_V_ERR_CERT_REJECTED);
    recordFailure(ssl, std::move(failure));
    return 0;
  }
  return 1;
}

std::string alertText(int value) { return SSL_alert_desc_string_long(value); }

void infoCallback(const SSL* ssl, int where, int value) {
  if ((where & SSL_CB_ALERT) == 0 || (value >> 8) != SSL3_AL_FATAL) return;
  const int alert = value & 0xff;
  if ((where & SSL_CB_WRITE) != 0) {
    switch (alert) {
      case SSL_AD_CERTIFICATE_REQUIRED:
        return recordFailure(ssl, "peer sent no certificate");
      case SSL_AD_PROTOCOL_VERSION:
        return recordFailure(ssl, "peer does not support TLS 1.3");
      case SSL_AD_NO_APPLICATION_PROTOCOL:
        return recordFailure(ssl, "peer did not offer ALPN h2");
      case SSL_AD_HANDSHAKE_FAILURE:
        return recordFailure(ssl,
                             "no cipher suite, group or signature algorithm in common with the "
                             "peer (mesh TLS: 1.3, AES-GCM, X25519/P-256/P-384)");
      default:
        return recordFailure(ssl, "handshake aborted with alert '" + alertText(value) + "'");
    }
  }
  switch (alert) {
    case SSL_AD_BAD_CERTIFICATE:
    case SSL_AD_UNSUPPORTED_CERTIFICATE:
    case SSL_AD_CERTIFICATE_EXPIRED:
    case SSL_AD_CERTIFICATE_REVOKED:
    case SSL_AD_CERTIFICATE_UNKNOWN:
    case SSL_AD_UNKNOWN_CA:
    case SSL_AD_ACCESS_DENIED:
    case SSL_AD_CERTIFICATE_REQUIRED:
      return recordFailure(ssl, "peer rejected the handshake (alert '" + alertText(value) +
                                    "'): it did not accept our certificate; see the peer's log");
    default:
      return recordFailure(ssl, "peer rejected the handshake (alert '" + alertText(value) + "')");
  }
}

// Refuses, with a precise reason, clients the mesh cannot talk to, before OpenSSL's own
// version negotiation would fail with a generic one.
int clientHelloCallback(SSL* ssl, int* alert, void*) {
  const unsigned char* data = nullptr;
  std::size_t len = 0;
  bool tls13 = false;
  if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_supported_versions, &data, &len) == 1 &&
      len >= 1) {
    std::size_t list_len = std::min<std::size_t>(data[0], len - 1);
    for (std::size_t i = 1; i + 1 <= list_len; i += 2) {
      if (data[i] == 0x03 && data[i + 1] == 0x04) tls13 = true;
    }
  }
  if (!tls13) {
    recordFailure(ssl, "peer does not support TLS 1.3 (it offered TLS 1.2 or older)");
    *alert = SSL_AD_PROTOCOL_VERSION;
    return SSL_CLIENT_HELLO_ERROR;
  }
  if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_application_layer_protocol_negotiation, &data,
                                &len) != 1) {
    recordFailure(ssl, "peer did not offer ALPN h2 (no ALPN extension)");
    *alert = SSL_AD_NO_APPLICATION_PROTOCOL;
    return SSL_CLIENT_HELLO_ERROR;
  }
  return SSL_CLIENT_HELLO_SUCCESS;
}

int alpnSelectCallback(SSL* ssl, const unsigned char** out, unsigned char* outlen,
                       const unsigned char* in, unsigned int inlen, void*) {
  std::string offered;
  for (unsigned int i = 0; i < inlen;) {
    unsigned int n = in[i];
    if (n == 0 || i + 1 + n > inlen) break;
    std::string_view proto(reinterpret_cast<const char*>(in + i + 1), n);
    if (proto == kAlpnH2) {
      *out = in + i + 1;
      *outlen = static_cast<unsigned char>(n);
      return SSL_TLSEXT_ERR_OK;
    }
    if (!offered.empty()) offered += ", ";
    offered += proto;
    i += 1 + n;
  }
  recordFailure(ssl, "peer did not offer ALPN h2 (offered: " + offered + ")");
  return SSL_TLSEXT_ERR_ALERT_FATAL;
}

Result<SslCtxPtr> meshContext(const WorkloadCertificate& cert, bool is_server) {
  const char* role = is_server ? "server" : "client";
  std::string what_context = "TLS ";
  what_context.append(role).append(" context for ").append(cert.id.str());
  auto fail = [&](std::string_view what) {
    return opensslError(what_context + ": " + std::string(what));
  };
  if (!cert.leaf || !cert.key || cert.roots.empty()) {
    return Error{what_context + ": certificate, key or trust bundle missing"};
  }
  SslCtxPtr ctx(SSL_CTX_new(is_server ? TLS_server_method() : TLS_client_method()));
  if (!ctx) return fail("cannot allocate SSL_CTX");
  if (SSL_CTX_set_min_proto_version(ctx.get(), TLS1_3_VERSION) != 1 ||
      SSL_CTX_set_max_proto_version(ctx.get(), TLS1_3_VERSION) != 1) {
    return fail("cannot restrict to TLS 1.3");
  }
  if (SSL_CTX_set_ciphersuites(ctx.get(), kTls13Ciphersuites) != 1) {
    return fail("cannot set TLS 1.3 cipher suites");
  }
  if (SSL_CTX_set1_groups_list(ctx.get(), kTlsGroups) != 1) return fail("cannot set groups");
  // No tickets, no cache: every connection is a full handshake with a fresh certificate check.
  SSL_CTX_set_options(ctx.get(), SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION |
                                     SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  SSL_CTX_set_num_tickets(ctx.get(), 0);
  SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_OFF);

  if (SSL_CTX_use_certificate(ctx.get(), cert.leaf.get()) != 1 ||
      SSL_CTX_use_PrivateKey(ctx.get(), cert.key.get()) != 1 ||
      SSL_CTX_check_private_key(ctx.get()) != 1) {
    return fail("cannot use the workload certificate and key");
  }
  for (const auto& intermediate : cert.chain) {
    if (SSL_CTX_add1_chain_cert(ctx.get(), intermediate.get()) != 1) {
      return fail("cannot add intermediate certificate");
    }
  }
  X509_STORE* store = SSL_CTX_get_cert_store(ctx.get());
  for (const auto& root : cert.roots) {
    if (X509_STORE_add_cert(store, root.get()) != 1) return fail("cannot add trust root");
  }

  auto policy = std::make_unique<ContextPolicy>();
  policy->is_server = is_server;
  policy->trust_domain = cert.id.trustDomain();
  if (SSL_CTX_set_ex_data(ctx.get(), policyIndex(), policy.get()) != 1) {
    return fail("cannot attach policy");
  }
  policy.release();  // freed by freePolicy with the context
  SSL_CTX_set_info_callback(ctx.get(), infoCallback);

  if (is_server) {
    SSL_CTX_set_verify(ctx.get(),
                       SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT | SSL_VERIFY_CLIENT_ONCE,
                       verifyCallback);
    static const unsigned char kSessionContext[] = "sluice-hbone";
    SSL_CTX_set_session_id_context(ctx.get(), kSessionContext, sizeof(kSessionContext) - 1);
    SSL_CTX_set_client_hello_cb(ctx.get(), clientHelloCallback, nullptr);
    SSL_CTX_set_alpn_select_cb(ctx.get(), alpnSelectCallback, nullptr);
  } else {
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, verifyCallback);
    static const unsigned char kAlpn[] = {2, 'h', '2'};
    if (SSL_CTX_set_alpn_protos(ctx.get(), kAlpn, sizeof(kAlpn)) != 0) {  // 0 is success here
      return fail("cannot set ALPN");
    }
  }
  return ctx;
}

}  // namespace

Result<SslCtxPtr> serverContext(const WorkloadCertificate& cert) { return meshContext(cert, true); }

Result<SslCtxPtr> clientContext(const WorkloadCertificate& cert) {
  return meshContext(cert, false);
}

void expectPeer(SSL* ssl, std::vector<SpiffeId> allowed) {
  if (ConnectionState* state = stateOf(ssl)) state->expected = std::move(allowed);
}

Result<SpiffeId> peerIdentity(const SSL* ssl) {
  if (ssl == nullptr) return Error{"no TLS connection"};
  if (SSL_is_init_finished(ssl) == 0) return Error{"TLS handshake has not completed"};
  const X509* cert = SSL_get0_peer_certificate(ssl);
  if (cert == nullptr) return Error{"peer sent no certificate"};
  const long verified = SSL_get_verify_result(ssl);
  if (verified != X509_V_OK) {
    return Error{std::string("peer certificate was not verified: ") +
                 X509_verify_cert_error_string(verified)};
  }
  auto id = spiffeIdOf(cert);
  if (!id) return Error{"peer certificate: " + id.message()};
  return id;
}

std::string verificationFailure(const SSL* ssl) {
  const ConnectionState* state = ssl != nullptr ? findState(ssl) : nullptr;
  return state != nullptr ? state->failure : std::string();
}

}  // namespace sluice::identity
