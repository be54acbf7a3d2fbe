// Ztunnel's lifecycle: create() loads and binds, start() serves, stop() ends (see ztunnel.h).
#include "ztunnel/ztunnel.h"

#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>
#include <cstring>
#include <future>
#include <thread>

#include "core/bpf/lazy_pinned_table.h"
#include "core/bpf/original_destination.h"
#include "core/config/file_source.h"
#include "core/identity/ca.h"
#include "core/identity/certificate_manager.h"
#include "core/telemetry/access_log.h"
#include "ztunnel/impl.h"
#include "ztunnel/inpod_client.h"

namespace sluice::ztunnel {

namespace asio = boost::asio;
using asio::ip::tcp;

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
  z.tls_contexts = std::make_unique<identity::TlsContextCache>(
      *z.certs, identity::TlsContextCacheOptions{.release_buffers = true});

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
      net::SocketOptions sockets;
      sockets.mark = z.options.socket_mark;
      sockets.reuse_port = true;
      auto listener = net::TcpListener::create(worker->io.get_executor(), listen, sockets);
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
    auto pinned = std::make_shared<bpf::LazyPinnedTable<bpf::OriginalDestinationTable>>(
        z.options.bpf_pin_dir.string());
    z.options.original_destination = [pinned](int fd) -> std::optional<tcp::endpoint> {
      auto table = pinned->get();
      if (!table) {
        spdlog::warn("capture maps: {}", table.message());
        return std::nullopt;
      }
      auto taken = (*table)->take(fd);
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
      z.source.reset();
    });
    z.control_guard.reset();
    z.control.stop();
    z.control_thread.join();
  }
  z.inpod_client.reset();
  z.admin.reset();
  z.source.reset();
  for (auto& worker : z.workers) {
    worker->outbound.clear();
    worker->workloads.clear();
  }
}

std::shared_ptr<const config::Snapshot> Ztunnel::snapshot() const { return impl_->snapshot.load(); }

telemetry::Metrics& Ztunnel::metrics() { return impl_->metrics; }

std::vector<tcp::endpoint> Ztunnel::outboundEndpoints() const { return impl_->outbound_endpoints; }

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

}  // namespace sluice::ztunnel
