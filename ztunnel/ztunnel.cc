#include "ztunnel/ztunnel.h"

#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/json.hpp>
#include <cstring>
#include <future>
#include <mutex>
#include <set>
#include <thread>

#include "core/admin/http_server.h"
#include "core/bpf/original_destination.h"
#include "core/config/file_source.h"
#include "core/config/service_rules.h"
#include "core/config/snapshot.h"
#include "core/hbone/connection.h"
#include "core/hbone/pool.h"
#include "core/hbone/server.h"
#include "core/hbone/splice.h"
#include "core/identity/ca.h"
#include "core/identity/certificate_manager.h"
#include "core/identity/tls.h"
#include "core/telemetry/access_log.h"
#include "core/telemetry/metrics.h"
#include "ztunnel/impl.h"
#include "ztunnel/inpod_client.h"

namespace sluice::ztunnel {

namespace asio = boost::asio;
using asio::ip::tcp;

// ---------------------------------------------------------------------------------------------
// TLS contexts per identity, rebuilt when the certificate manager rotates a certificate.

std::shared_ptr<asio::ssl::context> Ztunnel::Impl::tlsContext(const identity::SpiffeId& id,
                                                              bool server) {
  auto cert = certs->get(id);
  if (!cert) {
    spdlog::error("no certificate for {}: {}", id.str(), cert.message());
    return nullptr;
  }
  std::lock_guard lock(tls_mutex);
  auto& entry = tls_cache[id];
  if (entry.certificate != *cert) {
    auto server_ctx = identity::serverContext(**cert);
    auto client_ctx = identity::clientContext(**cert);
    if (!server_ctx || !client_ctx) {
      spdlog::error("TLS context for {}: {}", id.str(),
                    !server_ctx ? server_ctx.message() : client_ctx.message());
      return nullptr;
    }
    // A node's ztunnel holds a tunnel to and from every peer node, most of them idle at any
    // moment: an idle tunnel gives back its two record buffers (16 KiB and more each, OpenSSL's
    // sizes). The waypoint, with few busy tunnels, keeps them: releasing them costs a malloc and
    // free per record.
    SSL_CTX_set_mode(server_ctx->get(), SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_mode(client_ctx->get(), SSL_MODE_RELEASE_BUFFERS);
    entry.certificate = *cert;
    entry.server = std::make_shared<asio::ssl::context>(server_ctx->release());
    entry.client = std::make_shared<asio::ssl::context>(client_ctx->release());
  }
  return server ? entry.server : entry.client;
}

// ---------------------------------------------------------------------------------------------
// Served workloads and their listeners, per worker.

hbone::SocketOptions Workload::sockets(uint32_t mark, bool reuse_port) const {
  hbone::SocketOptions out;
  out.mark = mark;
  out.reuse_port = reuse_port;
  if (netns) {
    out.make_socket = [ns = netns](int domain) {
      return inpod::socketIn(*ns, domain, SOCK_STREAM);
    };
  }
  return out;
}

Result<bpf::InboundSteering> Ztunnel::Impl::steerInbound(const Workload& workload,
                                                         int listener_fd) {
  auto cookie = workload.netns->cookie();
  if (!cookie) return makeError("inbound steering: " + cookie.message());
  bpf::InboundOptions steering_options;
  // Unpinned (no pin directory) steering ends with this process; tests use that.
  if (!options.bpf_pin_dir.empty())
    steering_options.pinDirectory =
        (options.bpf_pin_dir / ("netns-" + std::to_string(*cookie))).string();
  steering_options.bypassPorts = {options.hbone_port, 15020, 15021, 15000};
  auto steering = bpf::InboundSteering::create(steering_options);
  if (!steering) return makeError("inbound steering: " + steering.message());
  if (auto attached = steering->attach(workload.netns->fd()); !attached)
    return makeError("inbound steering: " + attached.message());
  if (auto registered = steering->setListener(listener_fd); !registered)
    return makeError("inbound steering: " + registered.message());
  return std::move(*steering);
}

std::vector<std::shared_ptr<const Workload>> Ztunnel::Impl::desiredWorkloads(
    const config::Snapshot& snap) {
  std::vector<std::shared_ptr<const Workload>> desired;
  if (!options.inpod_socket.empty()) {
    for (const auto& [uid, workload] : inpod_workloads) {
      // Labels (for telemetry) come from the configuration when it knows the pod.
      auto refreshed = std::make_shared<Workload>(*workload);
      if (const auto* pod = snap.pod(workload->pod.meta.ns, workload->pod.meta.name))
        refreshed->pod.meta.labels = pod->meta.labels;
      desired.push_back(std::move(refreshed));
    }
    return desired;
  }
  for (const auto* pod : snap.meshedPodsOnNode(options.node)) {
    auto id = config::workloadIdentity(*pod, options.trust_domain);
    if (!id) continue;  // the decoder admits only names that make a valid SPIFFE ID
    auto workload = std::make_shared<Workload>();
    workload->pod = *pod;
    workload->id = std::move(*id);
    desired.push_back(std::move(workload));
  }
  return desired;
}

std::vector<std::string> Ztunnel::Impl::reconcile(
    Worker& worker, const std::vector<std::shared_ptr<const Workload>>& desired) {
  std::vector<std::string> errors;
  std::map<std::string, std::shared_ptr<const Workload>> by_key;
  for (const auto& workload : desired) by_key[workload->key()] = workload;

  for (auto it = worker.workloads.begin(); it != worker.workloads.end();) {
    auto want = by_key.find(it->first);
    if (want == by_key.end() || !want->second->sameAs(*it->second.workload)) {
      if (worker.index == 0) spdlog::info("workload {} no longer served", it->first);
      if (it->second.steering) {
        if (auto removed = it->second.steering->uninstall(); !removed)
          spdlog::warn("workload {}: removing inbound steering: {}", it->first, removed.message());
      }
      it = worker.workloads.erase(it);  // listeners close; open connections finish
    } else {
      it->second.workload = want->second;  // labels may have changed
      ++it;
    }
  }
  const auto executor = worker.io.get_executor();
  for (const auto& [key, workload] : by_key) {
    if (worker.workloads.count(key)) continue;
    WorkloadListeners listeners;
    listeners.workload = workload;
    hbone::PoolOptions pool_options;
    pool_options.idle_timeout = options.pool_idle_timeout;
    listeners.pool = std::make_shared<hbone::Pool>(
        executor,
        [this, &worker, workload](const hbone::PoolKey& pool_key) {
          return dialPeer(worker, workload, pool_key);
        },
        pool_options);
    const auto sockets = workload->sockets(options.socket_mark, true);
    const auto id = workload->id;
    auto fail = [&](const std::string& what) {
      errors.push_back("workload " + key + ": " + what);
      spdlog::error("workload {}: {}", key, what);
    };
    bool complete = true;
    for (const auto& ip : workload->pod.ips) {
      hbone::ServerOptions server_options;
      server_options.sockets = sockets;
      auto server = hbone::Server::create(
          executor, tcp::endpoint(ip, options.hbone_port),
          [this, id] { return tlsContext(id, true); },
          [this, &worker, workload](std::shared_ptr<hbone::Stream> stream,
                                    hbone::InboundContext context) {
            return serveHbone(worker, workload, std::move(stream), std::move(context));
          },
          server_options);
      if (!server) {
        fail(server.message());
        complete = false;
        continue;
      }
      (*server)->start();
      listeners.hbone.push_back(std::move(*server));
      auto plaintext =
          TcpListener::create(executor, tcp::endpoint(ip, options.inbound_plaintext_port), sockets);
      if (!plaintext) {
        fail(plaintext.message());
        complete = false;
        continue;
      }
      (*plaintext)->start([this, &worker, workload](tcp::socket socket) {
        return servePlaintext(worker, workload, std::move(socket));
      });
      listeners.plaintext.push_back(std::move(*plaintext));
    }
    // In the pod's own namespace, capture sends outbound connections to loopback:15001.
    if (workload->netns) {
      std::set<bool> families;
      for (const auto& ip : workload->pod.ips) families.insert(ip.is_v6());
      for (bool v6 : families) {
        const auto loopback = v6 ? asio::ip::address(asio::ip::address_v6::loopback())
                                 : asio::ip::address(asio::ip::address_v4::loopback());
        auto outbound = TcpListener::create(
            executor, tcp::endpoint(loopback, options.outbound_capture_port), sockets);
        if (!outbound) {
          fail(outbound.message());
          complete = false;
          continue;
        }
        (*outbound)->start([this, &worker, workload, pool = listeners.pool](tcp::socket socket) {
          return serveOutbound(worker, workload, pool, std::nullopt, std::move(socket));
        });
        listeners.outbound.push_back(std::move(*outbound));
      }
    }
    if (workload->netns && options.inbound_steering && worker.index == 0 &&
        !listeners.plaintext.empty()) {
      if (auto steering = steerInbound(*workload, listeners.plaintext.front()->nativeHandle());
          steering) {
        listeners.steering.emplace(std::move(*steering));
      } else {
        fail(steering.message());
        complete = false;
      }
    }
    if (worker.index == 0 && complete)
      spdlog::info("serving workload {} as {} on {} address(es){}", key, id.str(),
                   workload->pod.ips.size(), workload->netns ? " in its network namespace" : "");
    worker.workloads.emplace(key, std::move(listeners));
  }
  return errors;
}

std::vector<std::string> Ztunnel::Impl::apply(std::vector<std::shared_ptr<const Workload>> desired,
                                              bool wait) {
  // Issue certificates up front so the first connection does not wait for signing.
  for (const auto& workload : desired) (void)certs->get(workload->id);
  std::vector<std::string> errors;
  std::vector<std::future<std::vector<std::string>>> results;
  for (auto& worker : workers) {
    if (!worker->thread.joinable()) {  // not started yet: this thread owns the workers
      auto more = reconcile(*worker, desired);
      errors.insert(errors.end(), more.begin(), more.end());
      continue;
    }
    auto task = std::make_shared<std::packaged_task<std::vector<std::string>()>>(
        [this, w = worker.get(), desired] { return reconcile(*w, desired); });
    results.push_back(task->get_future());
    asio::post(worker->io, [task] { (*task)(); });
  }
  if (wait)
    for (auto& result : results) {
      auto more = result.get();
      errors.insert(errors.end(), more.begin(), more.end());
    }
  return errors;
}

void Ztunnel::Impl::onSnapshot(std::shared_ptr<const config::Snapshot> snap) {
  snapshot.store(snap);
  apply(desiredWorkloads(*snap), false);
}

std::string Ztunnel::Impl::onAgentMessage(const inpod::Message& message, int netns_fd) {
  using Type = inpod::Message::Type;
  std::optional<inpod::Netns> netns;
  if (netns_fd >= 0) netns.emplace(inpod::Netns::adopt(netns_fd));
  switch (message.type) {
    case Type::kAdd: {
      if (!netns) return "add " + message.workload.uid + ": no network namespace attached";
      if (message.workload.ips.empty()) return "add " + message.workload.uid + ": no pod IP";
      auto id = identity::SpiffeId::forWorkload(options.trust_domain, message.workload.ns,
                                                message.workload.service_account);
      if (!id) return "add " + message.workload.uid + ": " + id.message();
      auto workload = std::make_shared<Workload>();
      workload->pod.meta.ns = message.workload.ns;
      workload->pod.meta.name = message.workload.name;
      workload->pod.meta.uid = message.workload.uid;
      workload->pod.service_account = message.workload.service_account;
      workload->pod.ips = message.workload.ips;
      workload->pod.node_name = options.node;
      workload->id = *id;
      workload->netns_inode = netns->inode();
      workload->netns = std::make_shared<const inpod::Netns>(std::move(*netns));
      inpod_workloads[message.workload.uid] = workload;
      agent_named_.insert(message.workload.uid);
      break;
    }
    case Type::kRemove:
      inpod_workloads.erase(message.uid);
      break;
    case Type::kSnapshotSent:
      // Pods the agent did not (re)send since it connected are gone.
      std::erase_if(inpod_workloads,
                    [&](const auto& entry) { return !agent_named_.count(entry.first); });
      break;
    case Type::kHello:
      agent_named_.clear();
      return "";
    case Type::kAck:
      return "unexpected ack from the agent";
  }
  auto errors = apply(desiredWorkloads(*snapshot.load()), true);
  std::string joined;
  for (const auto& error : errors) joined += (joined.empty() ? "" : "; ") + error;
  return joined;
}

// ---------------------------------------------------------------------------------------------
// Lifecycle.

Ztunnel::Ztunnel(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Ztunnel::~Ztunnel() { stop(); }

Result<std::unique_ptr<Ztunnel>> Ztunnel::create(Options options) {
  auto impl = std::make_unique<Impl>();
  Impl& z = *impl;
  z.options = std::move(options);
  z.routing.trust_domain = z.options.trust_domain;
  z.routing.hbone_port = z.options.hbone_port;

  auto ca = identity::CertificateAuthority::loadOrCreate(z.options.ca_dir, z.options.trust_domain);
  if (!ca) return makeError("CA in " + z.options.ca_dir.string() + ": " + ca.message());
  z.ca.emplace(std::move(*ca));
  z.certs = std::make_unique<identity::CertificateManager>(
      z.control.get_executor(), [&z](const identity::SpiffeId& id) { return z.ca->issue(id); });

  auto log = telemetry::AccessLog::create(z.options.access_log);
  if (!log) return makeError("access log: " + log.message());
  z.access_log = std::move(*log);

  for (unsigned i = 0; i < z.options.workers; ++i) {
    auto worker = std::make_unique<Worker>();
    worker->index = i;
    z.workers.push_back(std::move(worker));
  }

  auto source = config::FileSource::create(
      z.control.get_executor(), z.options.config_dir,
      [&z](std::shared_ptr<const config::Snapshot> snap) { z.onSnapshot(std::move(snap)); });
  if (!source) return makeError("configuration: " + source.message());
  z.source = std::move(*source);
  // The first snapshot is applied synchronously: listeners exist (or failed loudly) on return.
  z.snapshot.store(z.source->current());
  z.apply(z.desiredWorkloads(*z.source->current()), true);

  // Outbound listeners: the first worker binds (port 0 resolves), the others join its port.
  for (const auto& spec : z.options.outbound) {
    tcp::endpoint listen = spec.listen;
    for (auto& worker : z.workers) {
      hbone::SocketOptions sockets;
      sockets.mark = z.options.socket_mark;
      sockets.reuse_port = true;
      auto listener = TcpListener::create(worker->io.get_executor(), listen, sockets);
      if (!listener)
        return makeError("outbound for " + spec.ns + "/" + spec.pod + ": " + listener.message());
      listen = (*listener)->localEndpoint();
      worker->outbound.push_back(std::move(*listener));
    }
    z.outbound_endpoints.push_back(listen);
  }

  if (!z.options.inpod_socket.empty() && !z.options.original_destination) {
    // The agent pins the capture maps, possibly after ztunnel starts: open on first use. Once
    // open, each accepted connection costs one atomic load and one map lookup-and-delete.
    struct PinnedTable {
      std::mutex opening;
      std::optional<bpf::OriginalDestinationTable> table;
      std::atomic<const bpf::OriginalDestinationTable*> ready{nullptr};
    };
    auto pinned = std::make_shared<PinnedTable>();
    z.options.original_destination =
        [pinned, dir = z.options.bpf_pin_dir](int fd) -> std::optional<tcp::endpoint> {
      const auto* table = pinned->ready.load(std::memory_order_acquire);
      if (table == nullptr) {
        std::lock_guard lock(pinned->opening);
        if (!pinned->table) {
          auto opened = bpf::OriginalDestinationTable::openPinned(dir.string());
          if (!opened) {
            spdlog::warn("capture maps: {}", opened.message());
            return std::nullopt;
          }
          pinned->table.emplace(std::move(*opened));
        }
        table = &*pinned->table;
        pinned->ready.store(table, std::memory_order_release);
      }
      auto taken = table->take(fd);
      if (!taken) return std::nullopt;
      tcp::endpoint endpoint;
      sockaddr_storage storage{};
      const socklen_t length = taken->toSockaddr(storage);
      std::memcpy(endpoint.data(), &storage, length);
      endpoint.resize(length);
      return endpoint;
    };
  }
  if (!z.options.inpod_socket.empty()) {
    z.inpod_client = std::make_unique<InPodClient>(
        z.control.get_executor(), z.options.inpod_socket,
        [&z](const inpod::Message& message, int fd) { return z.onAgentMessage(message, fd); });
  }
  if (auto served = z.startAdmin(); !served) return served.error();
  return std::unique_ptr<Ztunnel>(new Ztunnel(std::move(impl)));
}

void Ztunnel::start() {
  Impl& z = *impl_;
  for (auto& worker : z.workers) {
    for (size_t i = 0; i < worker->outbound.size(); ++i) {
      const auto& spec = z.options.outbound[i];
      worker->outbound[i]->start([&z, w = worker.get(), spec](tcp::socket socket) {
        return z.serveOutboundListener(*w, spec, std::move(socket));
      });
    }
    worker->guard.emplace(worker->io.get_executor());
    worker->thread = std::thread([w = worker.get()] { w->io.run(); });
  }
  z.control_guard.emplace(z.control.get_executor());
  if (z.inpod_client) z.inpod_client->start();
  z.control_thread = std::thread([&z] { z.control.run(); });
  z.ready = true;
}

void Ztunnel::stop() {
  Impl& z = *impl_;
  if (z.stopped.exchange(true)) return;
  z.ready = false;
  auto stop_on = [](asio::io_context& io, std::function<void()> fn) {
    std::promise<void> done;
    asio::post(io, [&] {
      fn();
      done.set_value();
    });
    done.get_future().wait();
  };
  const bool running = z.control_thread.joinable();
  for (auto& worker : z.workers) {
    auto shutdown = [w = worker.get()] {
      for (auto& listener : w->outbound) listener->stop();
      for (auto& [key, listeners] : w->workloads) listeners.pool->closeAll();
      w->workloads.clear();
    };
    if (worker->thread.joinable()) {
      stop_on(worker->io, shutdown);
      worker->guard.reset();
      worker->io.stop();
      worker->thread.join();
    } else {
      shutdown();
    }
  }
  if (running) {
    stop_on(z.control, [&z] {
      if (z.inpod_client) z.inpod_client->stop();
      if (z.admin) z.admin->stop();
      if (z.metrics_server) z.metrics_server->stop();
      if (z.readiness_server) z.readiness_server->stop();
      z.source.reset();
    });
    z.control_guard.reset();
    z.control.stop();
    z.control_thread.join();
  }
  z.inpod_client.reset();
  z.admin.reset();
  z.metrics_server.reset();
  z.readiness_server.reset();
  z.source.reset();
  for (auto& worker : z.workers) {
    worker->outbound.clear();
    worker->workloads.clear();
  }
}

std::shared_ptr<const config::Snapshot> Ztunnel::snapshot() const { return impl_->snapshot.load(); }

telemetry::Metrics& Ztunnel::metrics() { return impl_->metrics; }

std::vector<tcp::endpoint> Ztunnel::outboundEndpoints() const { return impl_->outbound_endpoints; }

std::optional<tcp::endpoint> Ztunnel::adminEndpoint() const {
  if (!impl_->admin) return std::nullopt;
  return impl_->admin->localEndpoint();
}
std::optional<tcp::endpoint> Ztunnel::metricsEndpoint() const {
  if (!impl_->metrics_server) return std::nullopt;
  return impl_->metrics_server->localEndpoint();
}
std::optional<tcp::endpoint> Ztunnel::readinessEndpoint() const {
  if (!impl_->readiness_server) return std::nullopt;
  return impl_->readiness_server->localEndpoint();
}

size_t Ztunnel::pooledConnections() const {
  size_t total = 0;
  for (auto& worker : impl_->workers) {
    auto count = [w = worker.get()] {
      size_t n = 0;
      for (const auto& [key, listeners] : w->workloads) n += listeners.pool->connectionCount();
      return n;
    };
    if (!worker->thread.joinable()) {
      total += count();
      continue;
    }
    std::packaged_task<size_t()> task(count);
    auto result = task.get_future();
    asio::post(worker->io, [&task] { task(); });
    total += result.get();
  }
  return total;
}

std::vector<std::string> Ztunnel::workloads() const {
  std::vector<std::string> out;
  auto& worker = *impl_->workers.front();
  auto collect = [&] {
    for (const auto& [key, listeners] : worker.workloads) out.push_back(key);
  };
  if (!worker.thread.joinable()) {
    collect();
    return out;
  }
  std::promise<void> done;
  asio::post(worker.io, [&] {
    collect();
    done.set_value();
  });
  done.get_future().wait();
  return out;
}

// ---------------------------------------------------------------------------------------------
// Admin, metrics and readiness.

Result<void> Ztunnel::Impl::startAdmin() {
  auto ready_route = admin::HttpServer::Route{
      "/healthz/ready", "text/plain", [this](std::string_view) -> std::pair<unsigned, std::string> {
        if (ready) return {200, "ready\n"};
        return {503, "not ready\n"};
      }};
  auto metrics_route =
      admin::HttpServer::Route{"/metrics", "text/plain; version=0.0.4",
                               [this](std::string_view) -> std::pair<unsigned, std::string> {
                                 return {200, metrics.serialize()};
                               }};
  auto stats_route = metrics_route;
  stats_route.path = "/stats/prometheus";
  auto dump_route =
      admin::HttpServer::Route{"/config_dump", "application/json",
                               [this](std::string_view) -> std::pair<unsigned, std::string> {
                                 return {200, configDump()};
                               }};

  auto serve = [this](const std::optional<tcp::endpoint>& where,
                      std::vector<admin::HttpServer::Route> routes, const char* what,
                      std::unique_ptr<admin::HttpServer>& out) -> Result<void> {
    if (!where) return success();
    auto server = admin::HttpServer::create(control.get_executor(), *where, std::move(routes));
    if (!server) return makeError(std::string(what) + ": " + server.message());
    out = std::move(*server);
    out->start();
    return success();
  };
  if (auto r = serve(options.admin, {dump_route, metrics_route, stats_route, ready_route}, "admin",
                     admin);
      !r)
    return r;
  if (auto r = serve(options.metrics, {metrics_route, stats_route}, "metrics", metrics_server); !r)
    return r;
  return serve(options.readiness, {ready_route}, "readiness", readiness_server);
}

std::string Ztunnel::Impl::configDump() {
  namespace json = boost::json;
  json::object dump;
  dump["node"] = options.node;
  dump["trust_domain"] = options.trust_domain;
  auto snap = snapshot.load();
  json::array workloads;
  json::array certificates;
  if (snap) {
    dump["config"] = json::parse(snap->toJson());
    for (const auto* pod : snap->meshedPodsOnNode(options.node)) {
      auto valid = config::workloadIdentity(*pod, options.trust_domain);
      if (!valid) continue;
      const auto& id = *valid;
      json::array ips;
      for (const auto& ip : pod->ips) ips.push_back(json::string(ip.to_string()));
      workloads.push_back(json::object{{"namespace", pod->meta.ns},
                                       {"name", pod->meta.name},
                                       {"identity", id.str()},
                                       {"ips", std::move(ips)}});
      if (auto cert = certs->get(id)) {
        const auto expires = std::chrono::system_clock::to_time_t((*cert)->not_after);
        char when[32];
        std::strftime(when, sizeof when, "%FT%TZ", std::gmtime(&expires));
        certificates.push_back(json::object{{"identity", id.str()}, {"not_after", when}});
      }
    }
  }
  dump["workloads"] = std::move(workloads);
  dump["certificates"] = std::move(certificates);
  return json::serialize(dump);
}

}  // namespace sluice::ztunnel
