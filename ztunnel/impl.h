// Ztunnel's internals, shared by ztunnel.cc (lifecycle, configuration, admin) and proxy.cc
// (the connection handlers). Not part of the public interface.
#pragma once

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include "core/admin/http_server.h"
#include "core/config/file_source.h"
#include "core/config/snapshot.h"
#include "core/hbone/pool.h"
#include "core/hbone/server.h"
#include "core/identity/ca.h"
#include "core/identity/certificate_manager.h"
#include "core/telemetry/access_log.h"
#include "core/telemetry/metrics.h"
#include "ztunnel/listener.h"
#include "ztunnel/routing.h"
#include "ztunnel/ztunnel.h"

namespace sluice::ztunnel {

using WorkGuard = boost::asio::executor_work_guard<boost::asio::io_context::executor_type>;

// The listeners of one served workload on one worker.
struct WorkloadListeners {
  std::vector<boost::asio::ip::address> ips;
  std::vector<std::unique_ptr<hbone::Server>> hbone;
  std::vector<std::unique_ptr<TcpListener>> plaintext;
};

struct Worker {
  unsigned index = 0;
  boost::asio::io_context io{1};
  std::optional<WorkGuard> guard;
  std::thread thread;
  std::unique_ptr<hbone::Pool> pool;
  std::map<std::string, WorkloadListeners> workloads;  // by ns/name
  std::vector<std::unique_ptr<TcpListener>> outbound;  // parallel to Options::outbound
  uint64_t pick = 0;                                   // spreads connections over endpoints
};

struct Ztunnel::Impl {
  Options options;
  RoutingContext routing;
  boost::asio::io_context control{1};
  std::optional<WorkGuard> control_guard;
  std::thread control_thread;
  std::vector<std::unique_ptr<Worker>> workers;
  std::atomic<std::shared_ptr<const config::Snapshot>> snapshot;
  std::unique_ptr<config::FileSource> source;
  std::optional<identity::CertificateAuthority> ca;
  std::unique_ptr<identity::CertificateManager> certs;
  telemetry::Metrics metrics;
  std::unique_ptr<telemetry::AccessLog> access_log;
  std::unique_ptr<admin::HttpServer> admin, metrics_server, readiness_server;
  std::vector<boost::asio::ip::tcp::endpoint> outbound_endpoints;
  std::atomic<bool> ready{false};
  std::atomic<bool> stopped{false};

  struct TlsEntry {
    std::shared_ptr<const identity::WorkloadCertificate> certificate;
    std::shared_ptr<boost::asio::ssl::context> server, client;
  };
  std::mutex tls_mutex;
  std::map<identity::SpiffeId, TlsEntry> tls_cache;

  std::shared_ptr<boost::asio::ssl::context> tlsContext(const identity::SpiffeId& id, bool server);
  void onSnapshot(std::shared_ptr<const config::Snapshot> snap);
  void reconcile(Worker& worker, const config::Snapshot& snap);
  Result<void> startAdmin();
  std::string configDump();

  // proxy.cc
  boost::asio::awaitable<void> serveHbone(Worker& worker, std::string workload,
                                          std::shared_ptr<hbone::Stream> stream,
                                          hbone::InboundContext context);
  boost::asio::awaitable<void> servePlaintext(Worker& worker, std::string workload,
                                              boost::asio::ip::tcp::socket socket);
  boost::asio::awaitable<void> serveOutbound(Worker& worker, OutboundListenerSpec spec,
                                             boost::asio::ip::tcp::socket socket);
  boost::asio::awaitable<Result<std::shared_ptr<hbone::Connection>>> dialPeer(
      Worker& worker, const hbone::PoolKey& key);
  boost::asio::awaitable<Result<boost::asio::ip::tcp::socket>> connectDirect(
      Worker& worker, const boost::asio::ip::tcp::endpoint& target);
};

}  // namespace sluice::ztunnel
