#include "core/config/service_rules.h"

#include <algorithm>

namespace sluice::config {
namespace {

bool endsWith(std::string_view text, std::string_view suffix) {
  return text.size() >= suffix.size() && text.substr(text.size() - suffix.size()) == suffix;
}

}  // namespace

std::string serviceFqdn(std::string_view host, std::string_view ns) {
  const std::string svc_suffix = ".svc." + std::string(kClusterDomain);
  if (endsWith(host, svc_suffix)) return std::string(host);
  const auto dots = std::count(host.begin(), host.end(), '.');
  if (dots == 0) return std::string(host) + "." + std::string(ns) + svc_suffix;
  if (dots == 1) return std::string(host) + svc_suffix;  // name.namespace
  if (endsWith(host, ".svc")) return std::string(host) + "." + std::string(kClusterDomain);
  return std::string(host);
}

std::string serviceFqdn(const Service& service) {
  return serviceFqdn(service.meta.name, service.meta.ns);
}

std::optional<uint16_t> resolveTargetPort(const ServicePort& port, const Pod& pod) {
  if (const auto* number = std::get_if<uint16_t>(&port.target_port))
    return *number != 0 ? *number : port.port;
  auto named = pod.named_ports.find(std::get<std::string>(port.target_port));
  if (named == pod.named_ports.end()) return std::nullopt;
  return named->second;
}

std::optional<boost::asio::ip::address> endpointAddress(
    const Pod& pod, const boost::asio::ip::address& destination) {
  for (const auto& address : pod.ips)
    if (address.is_v6() == destination.is_v6()) return address;
  return std::nullopt;
}

Result<identity::SpiffeId> workloadIdentity(const Pod& pod, std::string_view trust_domain) {
  return identity::SpiffeId::forWorkload(trust_domain, pod.meta.ns, pod.service_account);
}

}  // namespace sluice::config
