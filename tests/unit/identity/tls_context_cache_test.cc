#include "core/identity/tls_context_cache.h"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>

#include "core/identity/ca.h"
#include "core/identity/certificate_manager.h"

namespace sluice::identity {
namespace {

using namespace std::chrono_literals;

class TlsContextCacheTest : public ::testing::Test {
 protected:
  TlsContextCacheTest()
      : ca_(*CertificateAuthority::generate("cluster.local")),
        certificates_(io_.get_executor(), [this](const SpiffeId& id) {
          return failing_
                     ? Result<std::shared_ptr<const WorkloadCertificate>>(Error{"CA unavailable"})
                     : ca_.issue(id, 24h);
        }) {}

  boost::asio::io_context io_;
  CertificateAuthority ca_;
  std::atomic<bool> failing_{false};
  CertificateManager certificates_;
  const SpiffeId id_ = *SpiffeId::parse("spiffe://cluster.local/ns/shop/sa/cart");
};

TEST_F(TlsContextCacheTest, SameContextsUntilTheCertificateRotates) {
  TlsContextCache cache(certificates_);
  // given the contexts of an identity
  auto server = cache.server(id_);
  auto client = cache.client(id_);
  ASSERT_TRUE(server && client);
  EXPECT_NE(server, client);
  // then they are reused while the certificate stays
  EXPECT_EQ(cache.server(id_), server);
  EXPECT_EQ(cache.client(id_), client);
  // and replaced once there is a new certificate
  certificates_.forget(id_);
  EXPECT_NE(cache.server(id_), server);
  EXPECT_NE(cache.client(id_), client);
}

TEST_F(TlsContextCacheTest, NoCertificateMeansNoContext) {
  TlsContextCache cache(certificates_);
  failing_ = true;
  EXPECT_EQ(cache.server(id_), nullptr);
  EXPECT_EQ(cache.client(id_), nullptr);
}

TEST_F(TlsContextCacheTest, ReleasesIdleBuffersOnlyWhenAsked) {
  TlsContextCache keeping(certificates_);
  TlsContextCache releasing(certificates_, {.release_buffers = true});
  auto mode = [](const std::shared_ptr<boost::asio::ssl::context>& context) {
    return SSL_CTX_get_mode(context->native_handle()) & SSL_MODE_RELEASE_BUFFERS;
  };
  EXPECT_EQ(mode(keeping.server(id_)), 0);
  EXPECT_EQ(mode(keeping.client(id_)), 0);
  EXPECT_NE(mode(releasing.server(id_)), 0);
  EXPECT_NE(mode(releasing.client(id_)), 0);
}

}  // namespace
}  // namespace sluice::identity
