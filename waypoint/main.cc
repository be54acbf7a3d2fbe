// sluice-waypoint: the L7 proxy (see waypoint.h).
#include <spdlog/spdlog.h>

#include "core/daemon/flags.h"
#include "core/stop_signals.h"
#include "waypoint/waypoint.h"

int main(int argc, char** argv) {
  bool help = false;
  auto options = sluice::waypoint::parseWaypointOptions(argc, argv, help);
  if (!options) return sluice::daemon::exitAfterFlags("sluice-waypoint", options.message(), help);
  spdlog::set_level(options->log_level);
  sluice::StopSignals stop_signals;

  auto waypoint = sluice::waypoint::Waypoint::create(std::move(*options));
  if (!waypoint) {
    spdlog::error("sluice-waypoint cannot start: {}", waypoint.message());
    return 1;
  }
  (*waypoint)->start();
  const auto hbone = (*waypoint)->hboneEndpoint();
  std::string plain;
  for (const auto& endpoint : (*waypoint)->plainEndpoints())
    plain += " " + endpoint.address().to_string() + ":" + std::to_string(endpoint.port());
  spdlog::info("sluice-waypoint ready; hbone {}:{}; plain http:{}", hbone.address().to_string(),
               hbone.port(), plain.empty() ? " none" : plain);
  const int received = stop_signals.wait();
  spdlog::info("signal {}: stopping", received);
  (*waypoint)->stop();
  return 0;
}
