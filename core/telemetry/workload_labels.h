// Istio's telemetry labels for workloads and connections, derived from a pod the way Istio
// derives them. ztunnel and the waypoint both label from here, so one Deployment shows as one
// workload in Kiali and the Istio dashboards whichever proxy reported it.
#pragma once

#include <string>
#include <string_view>

namespace sluice::config {
struct Pod;
struct Service;
}  // namespace sluice::config

namespace sluice::telemetry {

inline constexpr std::string_view kUnknown = "unknown";
inline constexpr std::string_view kNoResponseFlags = "-";

// The labels of one side (source or destination) of a connection or request. An empty field is
// reported as "unknown", so callers may copy optional values without checking them.
struct WorkloadLabels {
  std::string workload{kUnknown};  // the Deployment's name for a Deployment's pod
  std::string workload_namespace{kUnknown};
  std::string principal{kUnknown};  // SPIFFE ID proven by mTLS, else "unknown"
  std::string app{kUnknown};
  std::string version{kUnknown};
  std::string cluster{kUnknown};
  std::string canonical_service{kUnknown};
  std::string canonical_revision{kUnknown};

  bool operator==(const WorkloadLabels&) const = default;
};

// The Deployment name for a Deployment's pod (name minus "-<pod-template-hash>-<suffix>"), else
// the pod name.
std::string workloadName(const config::Pod& pod);

// Istio's rules: app from app.kubernetes.io/name, else app; version from
// app.kubernetes.io/version, else version; the canonical service from
// service.istio.io/canonical-name, else the app labels, else the workload name; the canonical
// revision likewise, else "latest". `principal` is set only when it is proven (non-empty).
WorkloadLabels workloadLabels(const config::Pod& pod, std::string_view principal = {});

// The label set of every istio_tcp_* series (and, with a response code, of the HTTP series).
// Defaults are Istio's: "unknown" for anything not known, "-" for no response flags.
struct ConnectionLabels {
  // "source" when the proxy reporting is the client's (outbound), "destination" when it is the
  // server's (inbound), "waypoint" for a waypoint. Inbound paths must set it.
  std::string reporter = "source";

  WorkloadLabels source;
  WorkloadLabels destination;
  std::string destination_service{kUnknown};  // host name, e.g. "echo.default.svc.cluster.local"
  std::string destination_service_name{kUnknown};
  std::string destination_service_namespace{kUnknown};

  std::string request_protocol = "tcp";
  // Series for opened connections and bytes always carry "-"; the outcome flag of a connection
  // ("DENY", "UF", ...) is given to Connection::close() and lands on the closed counter only.
  std::string response_flags{kNoResponseFlags};
  // "mutual_tls" when the traffic was mTLS, "none" for plaintext seen by the destination,
  // "unknown" when the reporter cannot tell (Istio's value for most source-side reports).
  std::string connection_security_policy{kUnknown};

  void setDestinationService(const config::Service& service);
};

}  // namespace sluice::telemetry
