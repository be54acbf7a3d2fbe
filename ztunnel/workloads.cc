// What ztunnel serves: the desired workloads (the node's meshed pods, or those the agent handed
// over), and each worker's listeners and pools brought to them.
#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>
#include <future>
#include <map>
#include <set>

#include "core/config/service_rules.h"
#include "core/hbone/dialer.h"
#include "ztunnel/impl.h"

namespace sluice::ztunnel {

namespace asio = boost::asio;
using asio::ip::tcp;

net::SocketOptions Workload::sockets(uint32_t mark, bool reuse_port) const {
  net::SocketOptions out;
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
    hbone::DialOptions dial;
    dial.timeout = options.connect_timeout;
    dial.sockets = workload->sockets(options.socket_mark);  // from the pod's namespace
    listeners.pool = std::make_shared<hbone::Pool>(
        executor,
        hbone::tlsDialer(executor, [this](const auto& id) { return tls_contexts->client(id); },
                         std::move(dial)),
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
          [this, id] { return tls_contexts->server(id); },
          [this, &worker, workload](std::shared_ptr<h2::Stream> stream,
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
          net::TcpListener::create(executor, tcp::endpoint(ip, options.inbound_plaintext_port), sockets);
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
        auto outbound = net::TcpListener::create(
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

}  // namespace sluice::ztunnel
