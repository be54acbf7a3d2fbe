// The admin (15000), metrics (15020) and readiness (15021) servers every Sluice daemon runs,
// with one set of paths and answers.
#pragma once

#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/admin/http_server.h"
#include "core/result.h"

namespace sluice::telemetry {
class Metrics;
}

namespace sluice::admin {

struct DaemonAdminOptions {
  // Unset: that server is not run. The admin one must be loopback (the flags see to that).
  std::optional<boost::asio::ip::tcp::endpoint> admin, metrics, readiness;
  // Where the Prometheus text is served, on the admin and metrics servers.
  std::vector<std::string> metrics_paths{"/metrics"};
};

// Routes: the admin server answers /config_dump (JSON), the metrics paths and /healthz/ready;
// the metrics server the metrics paths; the readiness server /healthz/ready: 200 "ready\n" while
// `ready` holds, else 503 "not ready\n". Threading as HttpServer's, on the control executor.
class DaemonAdmin {
 public:
  using ConfigDump = std::function<std::string()>;

  // Binds each configured server now (the error names it: "admin: ...") and starts accepting;
  // they serve once the control executor runs. `metrics`, `ready` and `config_dump` must outlive
  // the servers.
  static Result<std::unique_ptr<DaemonAdmin>> start(boost::asio::any_io_executor control,
                                                    const DaemonAdminOptions& options,
                                                    const telemetry::Metrics& metrics,
                                                    const std::atomic<bool>& ready,
                                                    ConfigDump config_dump);

  // Closes every server and its connections. Idempotent.
  void stop();

  std::optional<boost::asio::ip::tcp::endpoint> adminEndpoint() const;
  std::optional<boost::asio::ip::tcp::endpoint> metricsEndpoint() const;
  std::optional<boost::asio::ip::tcp::endpoint> readinessEndpoint() const;

 private:
  DaemonAdmin() = default;
  std::unique_ptr<HttpServer> admin_, metrics_, readiness_;
};

}  // namespace sluice::admin
