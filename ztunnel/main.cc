// sluice-ztunnel: the per-node tunnel daemon.
#include <spdlog/spdlog.h>

#include "core/daemon/flags.h"
#include "core/stop_signals.h"
#include "ztunnel/ztunnel.h"

int main(int argc, char** argv) {
  bool help = false;
  auto options = sluice::ztunnel::parseOptions(argc, argv, help);
  if (!options) return sluice::daemon::exitAfterFlags("sluice-ztunnel", options.message(), help);
  spdlog::set_level(options->log_level);
  sluice::StopSignals stop_signals;

  auto ztunnel = sluice::ztunnel::Ztunnel::create(std::move(*options));
  if (!ztunnel) {
    spdlog::error("sluice-ztunnel cannot start: {}", ztunnel.message());
    return 1;
  }
  (*ztunnel)->start();
  std::string outbound;
  for (const auto& endpoint : (*ztunnel)->outboundEndpoints())
    outbound += " " + endpoint.address().to_string() + ":" + std::to_string(endpoint.port());
  auto where = [](const auto& endpoint) {
    return endpoint ? endpoint->address().to_string() + ":" + std::to_string(endpoint->port())
                    : std::string("off");
  };
  spdlog::info(
      "sluice-ztunnel ready; workloads: {}; outbound:{}; admin {}; metrics {}; readiness {}",
      (*ztunnel)->workloads().size(), outbound.empty() ? " none" : outbound,
      where((*ztunnel)->adminEndpoint()), where((*ztunnel)->metricsEndpoint()),
      where((*ztunnel)->readinessEndpoint()));
  const int received = stop_signals.wait();
  spdlog::info("signal {}: stopping", received);
  (*ztunnel)->stop();
  return 0;
}
