// Ztunnel's admin (config_dump), metrics and readiness servers.
#include <boost/json.hpp>
#include <chrono>
#include <ctime>

#include "core/config/service_rules.h"
#include "ztunnel/impl.h"

namespace sluice::ztunnel {

namespace asio = boost::asio;
using asio::ip::tcp;

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

}  // namespace sluice::ztunnel
