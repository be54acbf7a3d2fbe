// Ztunnel's internals, shared by ztunnel.cc (lifecycle), workloads.cc, admin.cc and proxy.cc
// (the connection handlers). Not part of the public interface.
#pragma once

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <map>
#include <optional>
#include <set>
#include <thread>

#include "core/admin/daemon_admin.h"
#include "core/bpf/inbound_steering.h"
#include "core/config/file_source.h"
#include "core/config/snapshot.h"
#include "core/hbone/pool.h"
#include "core/hbone/server.h"
#include "core/identity/ca.h"
#include "core/identity/certificate_manager.h"
#include "core/identity/tls_context_cache.h"
#include "core/inpod/netns.h"
#include "core/inpod/protocol.h"
#include "core/telemetry/access_log.h"
#include "core/telemetry/metrics.h"
#include "core/net/listener.h"
#include "ztunnel/routing.h"
#include "ztunnel/ztunnel.h"

namespace sluice::ztunnel {

using WorkGuard = boost::asio::executor_work_guard<boost::asio::io_context::executor_type>;

// A workload this ztunnel serves: from the configuration of its node (file mode), or handed
// over by the node agent with its network namespace (in-pod mode). Immutable; shared by the
// handlers of its connections, so removing a workload never pulls state from under them.
struct Workload {
  config::Pod pod;  // namespace, name, service account, IPs, labels
  identity::SpiffeId id;
  std::shared_ptr<const inpod::Netns> netns;  // null: ztunnel's own namespace (no capture)
  uint64_t netns_inode = 0;

  std::string key() const { return pod.meta.ns + "/" + pod.meta.name; }
  // Sockets of this workload: marked, and made inside its namespace when it has one.
  net::SocketOptions sockets(uint32_t mark, bool reuse_port = false) const;
  bool sameAs(const Workload& other) const {
    return id == other.id && pod.ips == other.pod.ips && netns_inode == other.netns_inode;
  }
};

// The listeners and connection pool of one served workload on one worker.
struct WorkloadListeners {
  std::shared_ptr<const Workload> workload;
  std::shared_ptr<hbone::Pool> pool;  // HBONE connections that authenticate as this workload
  std::vector<std::unique_ptr<hbone::Server>> hbone;
  std::vector<std::unique_ptr<net::TcpListener>> plaintext;
  std::vector<std::unique_ptr<net::TcpListener>> outbound;  // in-pod capture listeners (15001)
  // In-pod, worker 0 only: sk_lookup steering of the pod's inbound traffic to 15006. Pinned, so
  // it outlives a ztunnel restart and fails closed meanwhile; uninstalled when the pod goes.
  std::optional<bpf::InboundSteering> steering;
};

struct Worker {
  unsigned index = 0;
  boost::asio::io_context io{1};
  std::optional<WorkGuard> guard;
  std::thread thread;
  std::map<std::string, WorkloadListeners> workloads;  // by ns/name
  std::vector<std::unique_ptr<net::TcpListener>> outbound;  // parallel to Options::outbound
  uint64_t pick = 0;                                   // spreads connections over endpoints
};

struct Ztunnel::Impl {
  Options options;
  RoutingContext routing;
  boost::asio::io_context control{1};
  std::optional<WorkGuard> control_guard;
  std::thread control_thread;
  std::atomic<std::shared_ptr<const config::Snapshot>> snapshot;
  std::unique_ptr<config::FileSource> source;
  std::optional<identity::CertificateAuthority> ca;
  std::unique_ptr<identity::CertificateManager> certs;
  std::unique_ptr<identity::TlsContextCache> tls_contexts;  // over certs
  telemetry::Metrics metrics;
  std::unique_ptr<telemetry::AccessLog> access_log;
  std::unique_ptr<admin::DaemonAdmin> admin;  // admin, metrics and readiness servers
  std::vector<boost::asio::ip::tcp::endpoint> outbound_endpoints;
  std::atomic<bool> ready{false};
  std::atomic<bool> stopped{false};
  // Last, so it is destroyed first: destroying a worker's io_context destroys the coroutines of
  // its connections, whose reports still use the metrics, log and certificates above.
  std::vector<std::unique_ptr<Worker>> workers;

  // In-pod mode: the workloads the node agent handed over, by pod uid (control thread only).
  std::map<std::string, std::shared_ptr<const Workload>> inpod_workloads;
  std::unique_ptr<class InPodClient> inpod_client;
  std::set<std::string> agent_named_;  // uids (re)sent since the agent connected

  void onSnapshot(std::shared_ptr<const config::Snapshot> snap);
  // What should be served now: the node's meshed pods (file mode) or the agent's (in-pod mode).
  std::vector<std::shared_ptr<const Workload>> desiredWorkloads(const config::Snapshot& snap);
  // Brings every worker's listeners to `desired`; with wait, returns the errors of all workers.
  std::vector<std::string> apply(std::vector<std::shared_ptr<const Workload>> desired, bool wait);
  std::vector<std::string> reconcile(Worker& worker,
                                     const std::vector<std::shared_ptr<const Workload>>& desired);
  // sk_lookup for a pod's namespace, pinned per namespace, steering to `listener_fd`.
  Result<bpf::InboundSteering> steerInbound(const Workload& workload, int listener_fd);
  // In-pod mode: one agent message; returns the error for the ack ("" on success).
  std::string onAgentMessage(const inpod::Message& message, int netns_fd);
  Result<void> startAdmin();
  std::string configDump();

  // proxy.cc
  boost::asio::awaitable<void> serveHbone(Worker& worker, std::shared_ptr<const Workload> local,
                                          std::shared_ptr<h2::Stream> stream,
                                          hbone::InboundContext context);
  boost::asio::awaitable<void> servePlaintext(Worker& worker, std::shared_ptr<const Workload> local,
                                              boost::asio::ip::tcp::socket socket);
  // `destination`: fixed by an --outbound listener; else the original destination of a captured
  // connection.
  boost::asio::awaitable<void> serveOutbound(
      Worker& worker, std::shared_ptr<const Workload> source, std::shared_ptr<hbone::Pool> pool,
      std::optional<boost::asio::ip::tcp::endpoint> destination,
      boost::asio::ip::tcp::socket socket);
  // An --outbound listener's connection: leaves as the named workload, if this worker serves it.
  boost::asio::awaitable<void> serveOutboundListener(Worker& worker, OutboundListenerSpec spec,
                                                     boost::asio::ip::tcp::socket socket);
  boost::asio::awaitable<Result<boost::asio::ip::tcp::socket>> connectDirect(
      Worker& worker, const Workload& from, const boost::asio::ip::tcp::endpoint& target);
};

}  // namespace sluice::ztunnel
