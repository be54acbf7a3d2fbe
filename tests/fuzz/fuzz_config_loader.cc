// Fuzzes the configuration loader: any bytes, as a YAML/JSON file, must give reports (and
// perhaps a snapshot), never a crash, a hang or an exception. The snapshot and the reports
// are exercised too, since they walk what the decoders built.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/config/loader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sluice::config;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  LoadResult result = loadString(text, "fuzz.yaml");
  size_t total = 0;
  for (const DocumentReport& report : result.documents) total += formatReport(report).size();
  if (const auto& snapshot = result.snapshot) {
    total += snapshot->toJson().size();
    for (const Pod& pod : snapshot->pods()) {
      total += snapshot->isMeshed(pod) ? 1 : 0;
      total += static_cast<size_t>(snapshot->effectiveMtls(pod, 8080));
      for (const auto& ip : pod.ips) total += snapshot->podByIp(ip) != nullptr ? 1 : 0;
    }
    for (const Service& service : snapshot->services()) {
      total += snapshot->endpoints(service).size();
      for (const auto& ip : service.cluster_ips) total += snapshot->serviceByVip(ip) ? 1 : 0;
    }
    // The waypoint's lookups, with the hosts and names the documents themselves use.
    for (const VirtualService& service : snapshot->virtualServices()) {
      total += snapshot->virtualServices(service.meta.ns).size();
      for (const VirtualServiceRoute& route : service.http)
        for (const HttpRouteDestination& destination : route.route)
          total += snapshot->destinationRule(service.meta.ns, destination.destination.host) ? 1 : 0;
    }
    for (const DestinationRule& rule : snapshot->destinationRules())
      total += snapshot->destinationRule(rule.meta.ns, rule.host) ? 1 : 0;
    for (const AuthorizationPolicy& policy : snapshot->authorizationPolicies())
      total += snapshot->authorizationPolicies(policy.meta.ns).size();
    for (const HTTPRoute& route : snapshot->httpRoutes())
      for (const ObjectReference& parent : route.parent_refs)
        total +=
            snapshot
                ->httpRoutesForGateway(parent.ns.empty() ? route.meta.ns : parent.ns, parent.name)
                .size();
    for (const Gateway& gateway : snapshot->gateways())
      total += snapshot->waypoint(gateway.meta.ns, gateway.meta.name) ? 1 : 0;
  }
  return total == SIZE_MAX ? 1 : 0;  // keeps the work above from being optimised away
}
