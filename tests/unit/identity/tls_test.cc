#include "core/identity/tls.h"

#include <gtest/gtest.h>
#include <openssl/x509v3.h>

#include <string>
#include <string_view>

#include "core/identity/ca.h"
#include "core/identity/x509_builder.h"
#include "unit/identity/test_support.h"

namespace sluice::identity {
namespace {

using std::chrono::hours;
using std::chrono::system_clock;
using CertPtr = std::shared_ptr<const WorkloadCertificate>;

SpiffeId idOf(std::string_view uri) { return *SpiffeId::parse(uri); }

// A client and a server SSL joined by an in-memory BIO pair, driven by hand: no sockets, no
// threads, fully deterministic.
class TlsPair {
 public:
  TlsPair(SSL_CTX* client_ctx, SSL_CTX* server_ctx)
      : client_(SSL_new(client_ctx)), server_(SSL_new(server_ctx)) {
    BIO* client_bio = nullptr;
    BIO* server_bio = nullptr;
    BIO_new_bio_pair(&client_bio, 0, &server_bio, 0);
    SSL_set_bio(client_.get(), client_bio, client_bio);
    SSL_set_bio(server_.get(), server_bio, server_bio);
    SSL_set_connect_state(client_.get());
    SSL_set_accept_state(server_.get());
  }
  ~TlsPair() { ERR_clear_error(); }  // expected failures leave errors; keep them out of other tests

  SSL* client() { return client_.get(); }
  SSL* server() { return server_.get(); }

  // Runs both handshakes until each has finished or failed, then sends one message each way.
  // A TLS 1.3 client finishes before the server has checked its certificate, so a rejected client
  // only learns it when it reads: the round trip makes both verdicts final.
  void connect() {
    for (int round = 0; round < 20 && (client_state_ == kRunning || server_state_ == kRunning);
         ++round) {
      step(client_.get(), client_state_);
      step(server_.get(), server_state_);
    }
    if (client_state_ == kDone && server_state_ == kDone) {
      exchanged_ =
          send(client_.get(), server_.get(), "ping") && send(server_.get(), client_.get(), "pong");
    } else if (client_state_ == kDone) {
      char c;
      if (SSL_write(client_.get(), "x", 1) <= 0 || SSL_read(client_.get(), &c, 1) <= 0) {
        client_state_ = kFailed;
      }
    } else if (server_state_ == kDone) {
      char c;
      if (SSL_read(server_.get(), &c, 1) <= 0) server_state_ = kFailed;
    }
  }

  bool clientConnected() const { return client_state_ == kDone && exchanged_; }
  bool serverConnected() const { return server_state_ == kDone && exchanged_; }
  bool bothFailed() const { return client_state_ == kFailed && server_state_ == kFailed; }

 private:
  enum State { kRunning, kDone, kFailed };

  static void step(SSL* ssl, State& state) {
    if (state != kRunning) return;
    int rc = SSL_do_handshake(ssl);
    if (rc == 1) {
      state = kDone;
      return;
    }
    int err = SSL_get_error(ssl, rc);
    if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) state = kFailed;
  }

  static bool send(SSL* from, SSL* to, std::string_view text) {
    if (SSL_write(from, text.data(), static_cast<int>(text.size())) !=
        static_cast<int>(text.size())) {
      return false;
    }
    std::string got(text.size(), '\0');
    return SSL_read(to, got.data(), static_cast<int>(got.size())) ==
               static_cast<int>(text.size()) &&
           got == text;
  }

  SslPtr client_;
  SslPtr server_;
  State client_state_ = kRunning;
  State server_state_ = kRunning;
  bool exchanged_ = false;
};

std::string alpnOf(const SSL* ssl) {
  const unsigned char* data = nullptr;
  unsigned int len = 0;
  SSL_get0_alpn_selected(ssl, &data, &len);
  return std::string(reinterpret_cast<const char*>(data), data != nullptr ? len : 0);
}

// The same certificate and key with another trust bundle (e.g. a federated one).
CertPtr withRoots(const WorkloadCertificate& cert, std::vector<const X509*> roots) {
  auto copy = std::make_shared<WorkloadCertificate>();
  copy->id = cert.id;
  copy->leaf = shareX509(cert.leaf.get());
  copy->key = shareKey(cert.key.get());
  for (const X509* root : roots) copy->roots.push_back(shareX509(const_cast<X509*>(root)));
  copy->not_before = cert.not_before;
  copy->not_after = cert.not_after;
  return copy;
}

// A raw TLS client, for peers that do not follow the mesh profile.
SslCtxPtr rawClientContext(const WorkloadCertificate* cert, int max_version, const char* alpn,
                           std::size_t alpn_len) {
  SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()));
  SSL_CTX_set_max_proto_version(ctx.get(), max_version);
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);
  if (alpn != nullptr) {
    SSL_CTX_set_alpn_protos(ctx.get(), reinterpret_cast<const unsigned char*>(alpn),
                            static_cast<unsigned int>(alpn_len));
  }
  if (cert != nullptr) {
    SSL_CTX_use_certificate(ctx.get(), cert->leaf.get());
    SSL_CTX_use_PrivateKey(ctx.get(), cert->key.get());
  }
  return ctx;
}

class MeshTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ca = CertificateAuthority::generate("cluster.local");
    ASSERT_TRUE(ca) << ca.message();
    ca_.emplace(std::move(*ca));
    server_cert_ = issue(server_id_);
    client_cert_ = issue(client_id_);
  }

  CertPtr issue(const SpiffeId& id, std::chrono::seconds lifetime = hours(24),
                system_clock::time_point now = system_clock::now()) {
    auto cert = ca_->issue(id, lifetime, now);
    EXPECT_TRUE(cert) << cert.message();
    return cert ? *cert : nullptr;
  }

  SslCtxPtr server(const WorkloadCertificate& cert) {
    auto ctx = serverContext(cert);
    EXPECT_TRUE(ctx) << ctx.message();
    return ctx ? std::move(*ctx) : nullptr;
  }

  SslCtxPtr client(const WorkloadCertificate& cert) {
    auto ctx = clientContext(cert);
    EXPECT_TRUE(ctx) << ctx.message();
    return ctx ? std::move(*ctx) : nullptr;
  }

  const SpiffeId server_id_ = idOf("spiffe://cluster.local/ns/shop/sa/cart");
  const SpiffeId client_id_ = idOf("spiffe://cluster.local/ns/web/sa/frontend");
  std::optional<CertificateAuthority> ca_;
  CertPtr server_cert_;
  CertPtr client_cert_;
};

TEST_F(MeshTlsTest, MutualTlsSucceedsAndBothSidesSeeEachOthersIdentity) {
  auto server_ctx = server(*server_cert_);
  auto client_ctx = client(*client_cert_);
  TlsPair pair(client_ctx.get(), server_ctx.get());
  expectPeer(pair.client(), {server_id_});

  pair.connect();

  ASSERT_TRUE(pair.clientConnected()) << verificationFailure(pair.client());
  ASSERT_TRUE(pair.serverConnected()) << verificationFailure(pair.server());
  auto seen_by_client = peerIdentity(pair.client());
  auto seen_by_server = peerIdentity(pair.server());
  ASSERT_TRUE(seen_by_client) << seen_by_client.message();
  ASSERT_TRUE(seen_by_server) << seen_by_server.message();
  EXPECT_EQ(*seen_by_client, server_id_);
  EXPECT_EQ(*seen_by_server, client_id_);
  EXPECT_EQ(SSL_version(pair.client()), TLS1_3_VERSION);
  EXPECT_EQ(SSL_version(pair.server()), TLS1_3_VERSION);
  EXPECT_EQ(alpnOf(pair.client()), "h2");
  EXPECT_EQ(alpnOf(pair.server()), "h2");
  EXPECT_EQ(SSL_get_servername(pair.server(), TLSEXT_NAMETYPE_host_name), nullptr)
      << "client sent SNI";
  const std::string cipher = SSL_get_cipher_name(pair.client());
  EXPECT_TRUE(cipher == "TLS_AES_128_GCM_SHA256" || cipher == "TLS_AES_256_GCM_SHA384") << cipher;
  EXPECT_EQ(verificationFailure(pair.client()), "");
  EXPECT_EQ(verificationFailure(pair.server()), "");
}

TEST_F(MeshTlsTest, IssuesNoSessionTicketsSoNothingCanBeResumed) {
  auto server_ctx = server(*server_cert_);
  auto client_ctx = client(*client_cert_);
  TlsPair pair(client_ctx.get(), server_ctx.get());
  expectPeer(pair.client(), {server_id_});

  pair.connect();

  ASSERT_TRUE(pair.clientConnected()) << verificationFailure(pair.client());
  SSL_SESSION* session = SSL_get_session(pair.client());
  ASSERT_NE(session, nullptr);
  EXPECT_EQ(SSL_SESSION_has_ticket(session), 0);
  EXPECT_EQ(SSL_SESSION_is_resumable(session), 0);
  EXPECT_EQ(SSL_CTX_sess_number(server_ctx.get()), 0);
  EXPECT_EQ(SSL_session_reused(pair.client()), 0);
}

TEST_F(MeshTlsTest, AcceptsClientsThatOfferOnlyX25519OrOnlyP256) {
  auto server_ctx = server(*server_cert_);
  auto client_ctx = client(*client_cert_);
  for (const char* group : {"X25519", "P-256"}) {
    TlsPair pair(client_ctx.get(), server_ctx.get());
    ASSERT_EQ(SSL_set1_groups_list(pair.client(), group), 1);
    expectPeer(pair.client(), {server_id_});

    pair.connect();

    EXPECT_TRUE(pair.clientConnected()) << group << ": " << verificationFailure(pair.server());
  }
}

TEST_F(MeshTlsTest, ServerRejectsClientFromAnotherTrustDomain) {
  // Given a server that trusts evil.org's root too (a federated bundle), the chain is fine,
  // but the client's identity is not in the server's trust domain.
  auto evil_ca = CertificateAuthority::generate("evil.org");
  ASSERT_TRUE(evil_ca);
  auto evil_client = evil_ca->issue(idOf("spiffe://evil.org/ns/a/sa/b"));
  ASSERT_TRUE(evil_client);
  auto server_ctx = server(*withRoots(*server_cert_, {ca_->root(), evil_ca->root()}));
  auto client_ctx = client(*withRoots(**evil_client, {ca_->root()}));
  TlsPair pair(client_ctx.get(), server_ctx.get());
  expectPeer(pair.client(), {server_id_});

  pair.connect();

  EXPECT_TRUE(pair.bothFailed());
  EXPECT_NE(verificationFailure(pair.server())
                .find("peer trust domain evil.org does not match cluster.local"),
            std::string::npos)
      << verificationFailure(pair.server());
  EXPECT_NE(verificationFailure(pair.client()).find("peer rejected the handshake"),
            std::string::npos)
      << verificationFailure(pair.client());
}

TEST_F(MeshTlsTest, ClientRejectsServerWhoseIdentityIsNotExpected) {
  auto server_ctx = server(*server_cert_);
  auto client_ctx = client(*client_cert_);
  TlsPair pair(client_ctx.get(), server_ctx.get());
  const auto expected = idOf("spiffe://cluster.local/ns/shop/sa/payments");
  expectPeer(pair.client(), {expected});

  pair.connect();

  EXPECT_TRUE(pair.bothFailed());
  EXPECT_NE(verificationFailure(pair.client())
                .find("peer identity spiffe://cluster.local/ns/shop/sa/cart is not one of the "
                      "expected [spiffe://cluster.local/ns/shop/sa/payments]"),
            std::string::npos)
      << verificationFailure(pair.client());
  EXPECT_FALSE(peerIdentity(pair.client()));
}

TEST_F(MeshTlsTest, ClientWithoutExpectedIdentitiesFailsClosed) {
  auto server_ctx = server(*server_cert_);
  auto client_ctx = client(*client_cert_);
  TlsPair pair(client_ctx.get(), server_ctx.get());

  pair.connect();

  EXPECT_TRUE(pair.bothFailed());
  EXPECT_NE(verificationFailure(pair.client()).find("no expected server identities"),
            std::string::npos)
      << verificationFailure(pair.client());
}

TEST_F(MeshTlsTest, ServerRejectsExpiredClientCertificate) {
  auto expired = issue(client_id_, hours(24), system_clock::now() - hours(48));
  auto server_ctx = server(*server_cert_);
  auto client_ctx = client(*expired);
  TlsPair pair(client_ctx.get(), server_ctx.get());
  expectPeer(pair.client(), {server_id_});

  pair.connect();

  EXPECT_TRUE(pair.bothFailed());
  EXPECT_NE(
      verificationFailure(pair.server())
          .find("peer certificate has expired (notAfter " + formatUtc(expired->not_after) + ")"),
      std::string::npos)
      << verificationFailure(pair.server());
  EXPECT_NE(verificationFailure(pair.client()).find("did not accept our certificate"),
            std::string::npos)
      << verificationFailure(pair.client());
}

TEST_F(MeshTlsTest, ClientRejectsExpiredServerCertificate) {
  auto expired = issue(server_id_, hours(1), system_clock::now() - hours(3));
  auto server_ctx = server(*expired);
  auto client_ctx = client(*client_cert_);
  TlsPair pair(client_ctx.get(), server_ctx.get());
  expectPeer(pair.client(), {server_id_});

  pair.connect();

  EXPECT_TRUE(pair.bothFailed());
  EXPECT_NE(verificationFailure(pair.client()).find("peer certificate has expired (notAfter "),
            std::string::npos)
      << verificationFailure(pair.client());
}

TEST_F(MeshTlsTest, ServerRejectsSelfSignedClientCertificate) {
  // Given a client that forged a certificate with a plausible SPIFFE id, signed by itself.
  auto key = generateP256Key();
  ASSERT_TRUE(key);
  CertificateSpec spec;
  spec.organization = "cluster.local";
  spec.uri_san = client_id_.str();
  spec.not_before = system_clock::now() - hours(1);
  spec.not_after = system_clock::now() + hours(1);
  auto forged = buildCertificate(spec, key->get(), nullptr, key->get());
  ASSERT_TRUE(forged) << forged.message();
  WorkloadCertificate forger;
  forger.id = client_id_;
  forger.leaf = std::move(*forged);
  forger.key = std::move(*key);
  forger.roots.push_back(shareX509(const_cast<X509*>(ca_->root())));
  auto server_ctx = server(*server_cert_);
  auto client_ctx = client(forger);
  TlsPair pair(client_ctx.get(), server_ctx.get());
  expectPeer(pair.client(), {server_id_});

  pair.connect();

  EXPECT_TRUE(pair.bothFailed());
  EXPECT_NE(
      verificationFailure(pair.server()).find("self-signed certificate not issued by the mesh CA"),
      std::string::npos)
      << verificationFailure(pair.server());
}

TEST_F(MeshTlsTest, ServerRejectsAClientCertificateThatIsACaEvenIfTheMeshRootSignedIt) {
  // Given a mesh root, and signed by it a workload leaf for the server and a CA certificate
  // carrying the client's SPIFFE id (what a stolen intermediate could mint)
  auto root_key = generateP256Key();
  ASSERT_TRUE(root_key);
  CertificateSpec root_spec;
  root_spec.organization = "cluster.local";
  root_spec.is_ca = true;
  root_spec.not_before = system_clock::now() - hours(1);
  root_spec.not_after = system_clock::now() + hours(24);
  auto root = buildCertificate(root_spec, root_key->get(), nullptr, root_key->get());
  ASSERT_TRUE(root) << root.message();
  auto mint = [&](const SpiffeId& id, bool is_ca) {
    auto key = generateP256Key();
    EXPECT_TRUE(key);
    CertificateSpec spec = root_spec;
    spec.uri_san = id.str();
    spec.is_ca = is_ca;
    auto leaf = buildCertificate(spec, key->get(), root->get(), root_key->get());
    EXPECT_TRUE(leaf) << leaf.message();
    if (is_ca) {
      // With a workload's key usage and EKUs too, re-signed: only CA:TRUE and keyCertSign tell
      // it from a workload leaf.
      X509_EXTENSION* old_usage =
          X509_delete_ext(leaf->get(), X509_get_ext_by_NID(leaf->get(), NID_key_usage, -1));
      X509_EXTENSION_free(old_usage);
      X509_EXTENSION* usage = X509V3_EXT_conf_nid(nullptr, nullptr, NID_key_usage,
                                                  "critical,digitalSignature,keyCertSign");
      EXPECT_EQ(X509_add_ext(leaf->get(), usage, -1), 1);
      X509_EXTENSION_free(usage);
      EXTENDED_KEY_USAGE* eku = sk_ASN1_OBJECT_new_null();
      sk_ASN1_OBJECT_push(eku, OBJ_nid2obj(NID_server_auth));
      sk_ASN1_OBJECT_push(eku, OBJ_nid2obj(NID_client_auth));
      EXPECT_EQ(X509_add1_ext_i2d(leaf->get(), NID_ext_key_usage, eku, 0, 0), 1);
      sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);
      EXPECT_GT(X509_sign(leaf->get(), root_key->get(), EVP_sha256()), 0);
    }
    WorkloadCertificate cert;
    cert.id = id;
    cert.leaf = std::move(*leaf);
    cert.key = std::move(*key);
    cert.roots.push_back(shareX509(root->get()));
    return cert;
  };
  auto server_ctx = server(mint(server_id_, false));

  // When the CA certificate is presented as a client's
  {
    auto client_ctx = client(mint(client_id_, true));
    TlsPair pair(client_ctx.get(), server_ctx.get());
    expectPeer(pair.client(), {server_id_});
    pair.connect();
    // Then the server refuses it, saying why
    EXPECT_TRUE(pair.bothFailed());
    EXPECT_NE(verificationFailure(pair.server()).find("is a CA certificate"), std::string::npos)
        << verificationFailure(pair.server());
  }
  // And a leaf from the same root is accepted (the refusal is about CA:TRUE alone)
  auto client_ctx = client(mint(client_id_, false));
  TlsPair pair(client_ctx.get(), server_ctx.get());
  expectPeer(pair.client(), {server_id_});
  pair.connect();
  EXPECT_TRUE(pair.clientConnected() && pair.serverConnected())
      << verificationFailure(pair.server());
}

TEST_F(MeshTlsTest, ServerRejectsClientCertificateFromAnotherCa) {
  auto rogue_ca = CertificateAuthority::generate("cluster.local");
  ASSERT_TRUE(rogue_ca);
  auto rogue = rogue_ca->issue(client_id_);
  ASSERT_TRUE(rogue);
  auto server_ctx = server(*server_cert_);
  auto client_ctx = client(*withRoots(**rogue, {ca_->root()}));
  TlsPair pair(client_ctx.get(), server_ctx.get());
  expectPeer(pair.client(), {server_id_});

  pair.connect();

  EXPECT_TRUE(pair.bothFailed());
  EXPECT_NE(verificationFailure(pair.server()).find("peer certificate not issued by the mesh CA"),
            std::string::npos)
      << verificationFailure(pair.server());
}

TEST_F(MeshTlsTest, ServerRejectsClientWithoutCertificate) {
  auto server_ctx = server(*server_cert_);
  auto client_ctx = rawClientContext(nullptr, TLS1_3_VERSION, "\x02h2", 3);
  TlsPair pair(client_ctx.get(), server_ctx.get());

  pair.connect();

  EXPECT_FALSE(pair.serverConnected());
  EXPECT_NE(verificationFailure(pair.server()).find("peer sent no certificate"), std::string::npos)
      << verificationFailure(pair.server());
}

TEST_F(MeshTlsTest, ServerRejectsTls12OnlyClient) {
  auto server_ctx = server(*server_cert_);
  auto client_ctx = rawClientContext(client_cert_.get(), TLS1_2_VERSION, "\x02h2", 3);
  TlsPair pair(client_ctx.get(), server_ctx.get());

  pair.connect();

  EXPECT_TRUE(pair.bothFailed());
  EXPECT_NE(verificationFailure(pair.server()).find("peer does not support TLS 1.3"),
            std::string::npos)
      << verificationFailure(pair.server());
}

TEST_F(MeshTlsTest, ServerRejectsClientThatDoesNotOfferH2) {
  auto server_ctx = server(*server_cert_);
  auto client_ctx = rawClientContext(client_cert_.get(), TLS1_3_VERSION, "\x08http/1.1", 9);
  TlsPair pair(client_ctx.get(), server_ctx.get());

  pair.connect();

  EXPECT_TRUE(pair.bothFailed());
  EXPECT_NE(
      verificationFailure(pair.server()).find("peer did not offer ALPN h2 (offered: http/1.1)"),
      std::string::npos)
      << verificationFailure(pair.server());
}

TEST_F(MeshTlsTest, ServerRejectsClientWithoutAlpn) {
  auto server_ctx = server(*server_cert_);
  auto client_ctx = rawClientContext(client_cert_.get(), TLS1_3_VERSION, nullptr, 0);
  TlsPair pair(client_ctx.get(), server_ctx.get());

  pair.connect();

  EXPECT_TRUE(pair.bothFailed());
  EXPECT_NE(verificationFailure(pair.server()).find("no ALPN extension"), std::string::npos)
      << verificationFailure(pair.server());
}

TEST_F(MeshTlsTest, ServerRejectsClientWithoutAesGcmSuites) {
  auto server_ctx = server(*server_cert_);
  auto client_ctx = rawClientContext(client_cert_.get(), TLS1_3_VERSION, "\x02h2", 3);
  ASSERT_EQ(SSL_CTX_set_ciphersuites(client_ctx.get(), "TLS_CHACHA20_POLY1305_SHA256"), 1);
  TlsPair pair(client_ctx.get(), server_ctx.get());

  pair.connect();

  EXPECT_TRUE(pair.bothFailed());
  EXPECT_NE(verificationFailure(pair.server()).find("no cipher suite"), std::string::npos)
      << verificationFailure(pair.server());
}

TEST_F(MeshTlsTest, PeerIdentityIsUnavailableBeforeTheHandshake) {
  auto client_ctx = client(*client_cert_);
  SslPtr ssl(SSL_new(client_ctx.get()));
  auto id = peerIdentity(ssl.get());
  ASSERT_FALSE(id);
  EXPECT_NE(id.message().find("handshake has not completed"), std::string::npos) << id.message();
  EXPECT_EQ(verificationFailure(ssl.get()), "");
}

TEST_F(MeshTlsTest, ContextCreationFailsWhenKeyDoesNotMatchCertificate) {
  auto other = issue(client_id_);
  WorkloadCertificate mismatched;
  mismatched.id = server_id_;
  mismatched.leaf = shareX509(server_cert_->leaf.get());
  mismatched.key = shareKey(other->key.get());
  mismatched.roots.push_back(shareX509(const_cast<X509*>(ca_->root())));

  auto ctx = serverContext(mismatched);

  ASSERT_FALSE(ctx);
  EXPECT_NE(ctx.message().find("cannot use the workload certificate and key"), std::string::npos)
      << ctx.message();
}

TEST_F(MeshTlsTest, ConnectionsKeepWorkingAfterTheContextIsReleased) {
  // Rotation drops the old context; live connections hold their own references.
  auto server_ctx = server(*server_cert_);
  auto client_ctx = client(*client_cert_);
  TlsPair pair(client_ctx.get(), server_ctx.get());
  expectPeer(pair.client(), {server_id_});
  server_ctx.reset();
  client_ctx.reset();

  pair.connect();

  EXPECT_TRUE(pair.clientConnected()) << verificationFailure(pair.client());
  EXPECT_TRUE(pair.serverConnected()) << verificationFailure(pair.server());
}

}  // namespace
}  // namespace sluice::identity
