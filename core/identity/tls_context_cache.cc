#include "core/identity/tls_context_cache.h"

#include <spdlog/spdlog.h>

#include <boost/asio/ssl/context.hpp>

#include "core/identity/certificate_manager.h"
#include "core/identity/tls.h"

namespace sluice::identity {

TlsContextCache::TlsContextCache(CertificateManager& certificates, TlsContextCacheOptions options)
    : certificates_(certificates), options_(options) {}

TlsContextCache::~TlsContextCache() = default;

std::shared_ptr<boost::asio::ssl::context> TlsContextCache::server(const SpiffeId& id) {
  return get(id, true);
}

std::shared_ptr<boost::asio::ssl::context> TlsContextCache::client(const SpiffeId& id) {
  return get(id, false);
}

std::shared_ptr<boost::asio::ssl::context> TlsContextCache::get(const SpiffeId& id, bool server) {
  auto cert = certificates_.get(id);
  if (!cert) {
    spdlog::error("no certificate for {}: {}", id.str(), cert.message());
    return nullptr;
  }
  std::lock_guard lock(mutex_);
  auto& entry = entries_[id];
  if (entry.certificate != *cert) {
    auto server_ctx = serverContext(**cert);
    auto client_ctx = clientContext(**cert);
    if (!server_ctx || !client_ctx) {
      spdlog::error("TLS context for {}: {}", id.str(),
                    !server_ctx ? server_ctx.message() : client_ctx.message());
      return nullptr;
    }
    if (options_.release_buffers) {
      SSL_CTX_set_mode(server_ctx->get(), SSL_MODE_RELEASE_BUFFERS);
      SSL_CTX_set_mode(client_ctx->get(), SSL_MODE_RELEASE_BUFFERS);
    }
    entry.certificate = *cert;
    entry.server = std::make_shared<boost::asio::ssl::context>(server_ctx->release());
    entry.client = std::make_shared<boost::asio::ssl::context>(client_ctx->release());
  }
  return server ? entry.server : entry.client;
}

}  // namespace sluice::identity
