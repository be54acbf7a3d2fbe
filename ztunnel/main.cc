// sluice-ztunnel: the per-node tunnel daemon.
#include <spdlog/spdlog.h>

#include <csignal>
#include <cstdio>

#include "core/stop_signals.h"
#include "ztunnel/ztunnel.h"

int main(int argc, char** argv) {
  bool help = false;
  auto options = sluice::ztunnel::parseOptions(argc, argv, help);
  if (!options) {
    std::fprintf(help ? stdout : stderr, "%s\n", options.message().c_str());
    return help ? 0 : 2;
  }
  spdlog::set_level(spdlog::level::from_str(options->log_level));
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
