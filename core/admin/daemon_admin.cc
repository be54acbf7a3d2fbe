#include "core/admin/daemon_admin.h"

#include "core/telemetry/metrics.h"

namespace sluice::admin {

namespace {

using Reply = std::pair<unsigned, std::string>;

std::optional<boost::asio::ip::tcp::endpoint> endpointOf(
    const std::unique_ptr<HttpServer>& server) {
  if (!server) return std::nullopt;
  return server->localEndpoint();
}

}  // namespace

Result<std::unique_ptr<DaemonAdmin>> DaemonAdmin::start(boost::asio::any_io_executor control,
                                                        const DaemonAdminOptions& options,
                                                        const telemetry::Metrics& metrics,
                                                        const std::atomic<bool>& ready,
                                                        ConfigDump config_dump) {
  const HttpServer::Route ready_route{"/healthz/ready", "text/plain",
                                      [&ready](std::string_view) -> Reply {
                                        if (ready) return {200, "ready\n"};
                                        return {503, "not ready\n"};
                                      }};
  std::vector<HttpServer::Route> metrics_routes;
  for (const auto& path : options.metrics_paths)
    metrics_routes.push_back({path, "text/plain; version=0.0.4", [&metrics](std::string_view) {
                                return Reply{200, metrics.serialize()};
                              }});
  std::vector<HttpServer::Route> admin_routes{
      {"/config_dump", "application/json", [dump = std::move(config_dump)](std::string_view) {
         return Reply{200, dump()};
       }}};
  admin_routes.insert(admin_routes.end(), metrics_routes.begin(), metrics_routes.end());
  admin_routes.push_back(ready_route);

  std::unique_ptr<DaemonAdmin> servers(new DaemonAdmin());
  auto serve = [&control](const std::optional<boost::asio::ip::tcp::endpoint>& where,
                          std::vector<HttpServer::Route> routes, const char* what,
                          std::unique_ptr<HttpServer>& out) -> Result<void> {
    if (!where) return success();
    auto server = HttpServer::create(control, *where, std::move(routes));
    if (!server) return makeError(std::string(what) + ": " + server.message());
    out = std::move(*server);
    out->start();
    return success();
  };
  if (auto r = serve(options.admin, std::move(admin_routes), "admin", servers->admin_); !r)
    return r.error();
  if (auto r = serve(options.metrics, std::move(metrics_routes), "metrics", servers->metrics_); !r)
    return r.error();
  if (auto r = serve(options.readiness, {ready_route}, "readiness", servers->readiness_); !r)
    return r.error();
  return servers;
}

void DaemonAdmin::stop() {
  if (admin_) admin_->stop();
  if (metrics_) metrics_->stop();
  if (readiness_) readiness_->stop();
}

std::optional<boost::asio::ip::tcp::endpoint> DaemonAdmin::adminEndpoint() const {
  return endpointOf(admin_);
}
std::optional<boost::asio::ip::tcp::endpoint> DaemonAdmin::metricsEndpoint() const {
  return endpointOf(metrics_);
}
std::optional<boost::asio::ip::tcp::endpoint> DaemonAdmin::readinessEndpoint() const {
  return endpointOf(readiness_);
}

}  // namespace sluice::admin
