// Ztunnel: the per-node tunnel daemon. Serves the meshed workloads of one node: HBONE in on
// each workload's 15008, plaintext in on 15006 (PeerAuthentication decides), outbound through
// pooled HBONE connections, with Istio's TCP metrics and a JSON access log.
//
// Threads: one control thread (configuration, certificates, admin) and N workers. Every
// listener is bound once per worker (SO_REUSEPORT); a connection stays on the worker that
// accepted it, so the data path takes no locks.
#pragma once

#include <atomic>
#include <memory>
#include <vector>

#include "core/result.h"
#include "ztunnel/options.h"

namespace sluice::config {
class Snapshot;
}
namespace sluice::telemetry {
class Metrics;
}

namespace sluice::ztunnel {

class Ztunnel {
 public:
  // Loads configuration and the CA, issues certificates and binds every listener, so any
  // start-up problem is reported here; serving starts with start().
  static Result<std::unique_ptr<Ztunnel>> create(Options options);
  ~Ztunnel();

  void start();
  // Stops listening and closes every connection; returns when all threads have ended.
  void stop();

  std::shared_ptr<const config::Snapshot> snapshot() const;
  telemetry::Metrics& metrics();
  std::vector<boost::asio::ip::tcp::endpoint> outboundEndpoints() const;
  std::optional<boost::asio::ip::tcp::endpoint> adminEndpoint() const;
  std::optional<boost::asio::ip::tcp::endpoint> metricsEndpoint() const;
  std::optional<boost::asio::ip::tcp::endpoint> readinessEndpoint() const;
  // Open pooled HBONE connections, over all workers.
  size_t pooledConnections() const;
  // Workloads served now (ns/name).
  std::vector<std::string> workloads() const;

  struct Impl;

 private:
  explicit Ztunnel(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace sluice::ztunnel
