// Istio's telemetry labels for a workload, derived from its pod the way Istio derives them.
#pragma once

#include <string>

#include "core/config/objects.h"
#include "core/telemetry/metrics.h"

namespace sluice::ztunnel {

// The Deployment name for a Deployment's pod (name minus "-<pod-template-hash>-<suffix>"),
// else the pod name.
std::string workloadName(const config::Pod& pod);

void setSource(telemetry::ConnectionLabels& labels, const config::Pod& pod,
               const std::string& principal);
void setDestination(telemetry::ConnectionLabels& labels, const config::Pod& pod,
                    const std::string& principal);
void setDestinationService(telemetry::ConnectionLabels& labels, const config::Service& service);

}  // namespace sluice::ztunnel
