// The waypoint daemon: identity, configuration, listeners (see waypoint.h).
#include "waypoint/waypoint.h"

#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <mutex>
#include <thread>

#include "core/admin/daemon_admin.h"
#include "core/config/file_source.h"
#include "core/h2/stream.h"
#include "core/hbone/metadata.h"
#include "core/hbone/server.h"
#include "core/identity/ca.h"
#include "core/identity/certificate_manager.h"
#include "core/identity/tls_context_cache.h"
#include "core/net/authority.h"
#include "core/net/listener.h"
#include "core/telemetry/access_log.h"
#include "core/telemetry/cluster_metrics.h"
#include "core/telemetry/metrics.h"
#include "core/telemetry/request_metrics.h"
#include "waypoint/proxy.h"

namespace sluice::waypoint {

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {


}  // namespace

struct Waypoint::Impl {
  WaypointOptions options;
  identity::SpiffeId id;
  asio::io_context control{1};
  asio::io_context worker{1};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> control_guard,
      worker_guard;
  std::thread control_thread, worker_thread;

  std::optional<identity::CertificateAuthority> ca;
  std::unique_ptr<identity::CertificateManager> certs;
  std::unique_ptr<identity::TlsContextCache> tls_contexts;  // over certs

  telemetry::Metrics metrics;
  std::unique_ptr<telemetry::RequestMetrics> request_metrics;
  std::unique_ptr<telemetry::ClusterMetrics> cluster_metrics;
  std::unique_ptr<telemetry::AccessLog> access_log;
  std::unique_ptr<config::FileSource> source;
  std::shared_ptr<const RouteConfig> routes;  // the control thread's copy, for config_dump
  std::mutex routes_mutex;

  std::unique_ptr<Proxy> proxy;  // lives on the worker
  std::unique_ptr<hbone::Server> hbone;
  std::vector<std::unique_ptr<tcp::acceptor>> plain;
  std::unique_ptr<admin::DaemonAdmin> admin;  // admin, metrics and readiness servers
  std::atomic<bool> ready{false};

  void onSnapshot(std::shared_ptr<const config::Snapshot> snapshot) {
    auto compiled = compileRoutes(*snapshot, options.trust_domain, options.ns, options.name);
    for (const auto& problem : compiled->problems) spdlog::warn("config: {}", problem);
    {
      std::lock_guard lock(routes_mutex);
      routes = compiled;
    }
    asio::post(worker, [this, compiled] { proxy->setRoutes(compiled); });
  }

  asio::awaitable<void> servePlain(tcp::acceptor& acceptor, tcp::endpoint vip) {
    net::AcceptHandler serve_one = [this, vip](tcp::socket socket) {
      Downstream who;
      who.vip = vip;
      error_code ignored;
      who.source_ip = socket.remote_endpoint(ignored).address().to_string();
      asio::co_spawn(worker, proxy->serve(wrapSocket(std::move(socket)), who), asio::detached);
    };
    // A named argument: GCC 12 destroys some temporaries of a co_await expression twice.
    net::AcceptOptions options{.name = "plain HTTP on " + net::formatAuthority(vip)};
    co_await net::acceptLoop(acceptor, std::move(serve_one), std::move(options));
  }

  std::string configDump() {
    namespace json = boost::json;
    std::shared_ptr<const RouteConfig> current;
    {
      std::lock_guard lock(routes_mutex);
      current = routes;
    }
    json::object dump;
    dump["waypoint"] = options.ns + "/" + options.name;
    dump["identity"] = id.str();
    json::array services, clusters, problems;
    if (current) {
      for (const auto& [vip, service] : current->services) {
        json::array actions;
        for (const auto& action : service.actions) actions.push_back(json::string(action.name));
        services.push_back(json::object{{"vip", net::formatAuthority(vip)},
                                        {"host", service.host},
                                        {"bound", service.bound},
                                        {"routes_from", service.source},
                                        {"routes", std::move(actions)},
                                        {"authorization_policies", service.authorization.size()}});
      }
      for (const auto& cluster : current->clusters) {
        json::array endpoints;
        for (const auto& e : cluster.endpoints)
          endpoints.push_back(json::string(net::formatAuthority(e.address)));
        clusters.push_back(
            json::object{{"name", cluster.name}, {"endpoints", std::move(endpoints)}});
      }
      for (const auto& p : current->problems) problems.push_back(json::string(p));
    }
    dump["services"] = std::move(services);
    dump["clusters"] = std::move(clusters);
    dump["problems"] = std::move(problems);
    return json::serialize(dump);
  }

  Result<void> startAdmin() {
    auto started = admin::DaemonAdmin::start(
        control.get_executor(), {options.admin, options.metrics, options.readiness, {"/metrics"}},
        metrics, ready, [this] { return configDump(); });
    if (!started) return started.error();
    admin = std::move(*started);
    return success();
  }
};

Waypoint::Waypoint(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Waypoint::~Waypoint() { stop(); }

Result<std::unique_ptr<Waypoint>> Waypoint::create(WaypointOptions options) {
  auto impl = std::make_unique<Impl>();
  Impl& w = *impl;
  w.options = std::move(options);
  auto id = identity::SpiffeId::forWorkload(w.options.trust_domain, w.options.ns,
                                            w.options.service_account);
  if (!id) return makeError("identity: " + id.message());
  w.id = *id;

  auto ca = identity::CertificateAuthority::loadOrCreate(w.options.ca_dir, w.options.trust_domain);
  if (!ca) return makeError("CA in " + w.options.ca_dir.string() + ": " + ca.message());
  w.ca.emplace(std::move(*ca));
  w.certs = std::make_unique<identity::CertificateManager>(
      w.control.get_executor(), [&w](const identity::SpiffeId& who) { return w.ca->issue(who); });
  w.tls_contexts = std::make_unique<identity::TlsContextCache>(*w.certs);
  if (!w.tls_contexts->server(w.id)) return makeError("no certificate for " + w.id.str());

  auto log = telemetry::AccessLog::create(w.options.access_log);
  if (!log) return makeError("access log: " + log.message());
  w.access_log = std::move(*log);
  w.request_metrics = std::make_unique<telemetry::RequestMetrics>(w.metrics.registry());
  w.cluster_metrics = std::make_unique<telemetry::ClusterMetrics>(w.metrics.registry());

  ProxyOptions proxy_options;
  proxy_options.identity = w.id;
  proxy_options.name = w.options.name;
  proxy_options.ns = w.options.ns;
  proxy_options.client_tls = [&w] { return w.tls_contexts->client(w.id); };
  proxy_options.connect_timeout = w.options.connect_timeout;
  w.proxy = std::make_unique<Proxy>(w.worker.get_executor(), proxy_options, w.request_metrics.get(),
                                    w.cluster_metrics.get(), w.access_log.get());

  auto source = config::FileSource::create(w.control.get_executor(), w.options.config_dir,
                                           [&w](std::shared_ptr<const config::Snapshot> snapshot) {
                                             w.onSnapshot(std::move(snapshot));
                                           });
  if (!source) return makeError("configuration: " + source.message());
  w.source = std::move(*source);
  {
    auto compiled =
        compileRoutes(*w.source->current(), w.options.trust_domain, w.options.ns, w.options.name);
    for (const auto& problem : compiled->problems) spdlog::warn("config: {}", problem);
    w.routes = compiled;
    w.proxy->setRoutes(compiled);  // the worker is not running yet
  }

  auto server = hbone::Server::create(
      w.worker.get_executor(), w.options.hbone, [&w] { return w.tls_contexts->server(w.id); },
      [&w](std::shared_ptr<h2::Stream> stream,
           hbone::InboundContext context) -> asio::awaitable<void> {
        Downstream who;
        auto vip = net::parseAuthority(stream->authority());
        if (!vip || stream->header(":method") != "CONNECT") {
          stream->respond(400);
          co_return;
        }
        who.vip = *vip;
        who.peer = context.peer;
        who.require_binding = true;
        who.source_ip = context.peer_address.address().to_string();
        if (auto forwarded = hbone::parseForwardedFor(stream->header("forwarded")))
          who.source_ip = forwarded->to_string();
        stream->respond(200);
        co_await w.proxy->serve(wrapStream(stream), who);
      });
  if (!server)
    return makeError("HBONE listener " + net::formatAuthority(w.options.hbone) + ": " + server.message());
  w.hbone = std::move(*server);

  for (const auto& listener : w.options.plain) {
    auto acceptor = std::make_unique<tcp::acceptor>(w.worker);
    error_code ec;
    acceptor->open(listener.listen.protocol(), ec);
    if (!ec) acceptor->set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) acceptor->bind(listener.listen, ec);
    if (!ec) acceptor->listen(asio::socket_base::max_listen_connections, ec);
    if (ec)
      return makeError("plain listener " + net::formatAuthority(listener.listen) + ": " + ec.message());
    w.plain.push_back(std::move(acceptor));
  }
  if (auto admin = w.startAdmin(); !admin) return admin.error();
  return std::unique_ptr<Waypoint>(new Waypoint(std::move(impl)));
}

void Waypoint::start() {
  Impl& w = *impl_;
  w.hbone->start();
  for (size_t i = 0; i < w.plain.size(); ++i)
    asio::co_spawn(w.worker, w.servePlain(*w.plain[i], w.options.plain[i].vip), asio::detached);
  w.control_guard.emplace(w.control.get_executor());
  w.worker_guard.emplace(w.worker.get_executor());
  w.control_thread = std::thread([&w] { w.control.run(); });
  w.worker_thread = std::thread([&w] { w.worker.run(); });
  w.ready = true;
}

void Waypoint::stop() {
  if (!impl_) return;
  Impl& w = *impl_;
  w.ready = false;
  if (w.worker_thread.joinable()) {
    asio::post(w.worker, [&w] {
      if (w.hbone) w.hbone->stop();
      for (auto& acceptor : w.plain) {
        error_code ignored;
        acceptor->close(ignored);
      }
    });
  }
  w.control_guard.reset();
  w.worker_guard.reset();
  w.control.stop();
  w.worker.stop();
  if (w.control_thread.joinable()) w.control_thread.join();
  if (w.worker_thread.joinable()) w.worker_thread.join();
}

tcp::endpoint Waypoint::hboneEndpoint() const { return impl_->hbone->localEndpoint(); }

std::vector<tcp::endpoint> Waypoint::plainEndpoints() const {
  std::vector<tcp::endpoint> out;
  for (const auto& acceptor : impl_->plain) {
    error_code ec;
    out.push_back(acceptor->local_endpoint(ec));
  }
  return out;
}

}  // namespace sluice::waypoint
