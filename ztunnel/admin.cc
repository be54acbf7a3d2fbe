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
  // /stats/prometheus too: where Istio's ztunnel serves its metrics.
  auto started = admin::DaemonAdmin::start(
      control.get_executor(),
      {options.admin, options.metrics, options.readiness, {"/metrics", "/stats/prometheus"}},
      metrics, ready, [this] { return configDump(); });
  if (!started) return started.error();
  admin = std::move(*started);
  return success();
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
  return impl_->admin ? impl_->admin->adminEndpoint() : std::nullopt;
}
std::optional<tcp::endpoint> Ztunnel::metricsEndpoint() const {
  return impl_->admin ? impl_->admin->metricsEndpoint() : std::nullopt;
}
std::optional<tcp::endpoint> Ztunnel::readinessEndpoint() const {
  return impl_->admin ? impl_->admin->readinessEndpoint() : std::nullopt;
}

}  // namespace sluice::ztunnel
