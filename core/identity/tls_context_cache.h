// TLS contexts per workload identity, built from the certificate manager's current certificate
// and rebuilt when it rotates: what a daemon hands to its HBONE server and dialer.
#pragma once

#include <map>
#include <memory>
#include <mutex>

#include "core/identity/certificate.h"
#include "core/identity/spiffe_id.h"

namespace boost::asio::ssl {
class context;
}

namespace sluice::identity {

class CertificateManager;

struct TlsContextCacheOptions {
  // SSL_MODE_RELEASE_BUFFERS: an idle connection gives back its two record buffers (16 KiB and
  // more each, OpenSSL's sizes), at the cost of a malloc and free per record. Worth it for
  // ztunnel, which holds a tunnel to and from every peer node, most of them idle at any moment;
  // not for the waypoint, with few busy tunnels.
  bool release_buffers = false;
};

// Guarantees: server() and client() return contexts presenting the manager's current certificate
// for the identity (see tls.h for what they check); the same context until the certificate
// changes, then a new one. A connection keeps the context it took, so rotation affects new
// connections only. Thread-safe. The manager must outlive the cache.
class TlsContextCache {
 public:
  explicit TlsContextCache(CertificateManager& certificates, TlsContextCacheOptions options = {});
  ~TlsContextCache();
  TlsContextCache(const TlsContextCache&) = delete;
  TlsContextCache& operator=(const TlsContextCache&) = delete;

  // Null, with the reason logged, when there is no certificate for `id` or no context can be
  // built from it; the caller refuses the connection.
  std::shared_ptr<boost::asio::ssl::context> server(const SpiffeId& id);
  std::shared_ptr<boost::asio::ssl::context> client(const SpiffeId& id);

 private:
  struct Entry {
    std::shared_ptr<const WorkloadCertificate> certificate;
    std::shared_ptr<boost::asio::ssl::context> server, client;
  };
  std::shared_ptr<boost::asio::ssl::context> get(const SpiffeId& id, bool server);

  CertificateManager& certificates_;
  const TlsContextCacheOptions options_;
  std::mutex mutex_;
  std::map<SpiffeId, Entry> entries_;  // under mutex_
};

}  // namespace sluice::identity
