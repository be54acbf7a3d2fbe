// Decoders for the core (v1) kinds Kubernetes produces: Namespace, Pod, Service. They are
// lenient: fields Sluice does not read are skipped, but the ones it reads are checked.
#include <algorithm>
#include <cctype>
#include <set>
#include <utility>

#include "core/config/kinds.h"

namespace sluice::config::detail {
namespace {

constexpr std::array<std::string_view, 5> kPodPhases = {"Pending", "Running", "Succeeded", "Failed",
                                                        "Unknown"};
constexpr std::array<std::string_view, 3> kProtocols = {"TCP", "UDP", "SCTP"};

template <size_t N>
bool oneOf(const std::array<std::string_view, N>& values, std::string_view value) {
  return std::find(values.begin(), values.end(), value) != values.end();
}

template <size_t N>
std::string listOf(const std::array<std::string_view, N>& values) {
  std::string out;
  for (std::string_view value : values) {
    if (!out.empty()) out += ", ";
    out += value;
  }
  return out;
}

void addUnique(std::vector<boost::asio::ip::address>& ips, const boost::asio::ip::address& ip) {
  if (std::find(ips.begin(), ips.end(), ip) == ips.end()) ips.push_back(ip);
}

void readPodIps(const Field& status, Pod& pod) {
  if (auto ip = readIp(status["podIP"])) addUnique(pod.ips, *ip);
  status["podIPs"].forEachItem([&](const Field& item) {
    if (auto ip = readIp(item["ip"])) addUnique(pod.ips, *ip);
  });
}

std::vector<std::string> readStrings(const Field& list) {
  std::vector<std::string> out;
  list.forEachItem([&](const Field& item) { out.push_back(item.string()); });
  return out;
}

void readContainers(const Field& spec, Pod& pod) {
  spec["containers"].forEachItem([&](const Field& item) {
    Container container;
    container.name = item["name"].string();
    container.command = readStrings(item["command"]);
    container.args = readStrings(item["args"]);
    item["env"].forEachItem([&](const Field& entry) {
      const Field value = entry["value"];
      if (value.present()) container.env.push_back(entry["name"].string() + "=" + value.string());
    });
    item["ports"].forEachItem([&](const Field& port) {
      const Field number = port["containerPort"];
      number.require();
      std::optional<uint16_t> value = number.port();
      if (value) container.ports.push_back(*value);
      std::string name = readName(port["name"], isPortName, "an IANA port name");
      if (value && !name.empty()) pod.named_ports.emplace(std::move(name), *value);
    });
    pod.containers.push_back(std::move(container));
  });
}

void readServicePort(const Field& field, ServicePort& port) {
  port.name = readName(field["name"], isDnsLabel, "an RFC 1123 label");
  const Field number = field["port"];
  number.require();
  port.port = number.port().value_or(0);

  // int-or-string: an unquoted number is a port, anything else the name of a pod port.
  const Field target = field["targetPort"];
  const bool numeric = target.present() && target.node().IsScalar() && !target.isQuoted() &&
                       !target.node().Scalar().empty() &&
                       std::isdigit(static_cast<unsigned char>(target.node().Scalar()[0]));
  if (!target.present()) {
    port.target_port = port.port;  // Kubernetes defaults targetPort to port
  } else if (numeric) {
    port.target_port = target.port().value_or(0);
  } else {
    port.target_port = readName(target, isPortName, "a port number 1..65535 or an IANA port name");
  }

  port.protocol = field["protocol"].string("TCP");
  if (!oneOf(kProtocols, port.protocol))
    field["protocol"].fail("must be one of " + listOf(kProtocols) + ", got " +
                           quoted(port.protocol));
  port.app_protocol = field["appProtocol"].string();
}

void readClusterIp(const Field& field, Service& service) {
  std::string text = field.string();
  if (text.empty()) return;  // not allocated (yet), or an ExternalName service
  if (text == "None") {
    service.headless = true;
    return;
  }
  if (auto ip = readIp(field)) addUnique(service.cluster_ips, *ip);
}

}  // namespace

Object decodeNamespace(const Field&, ObjectMeta meta) { return Namespace{.meta = std::move(meta)}; }

Object decodePod(const Field& object, ObjectMeta meta) {
  Pod pod;
  pod.meta = std::move(meta);
  const Field spec = object["spec"];
  pod.node_name = spec["nodeName"].string();
  // serviceAccount is the deprecated spelling Kubernetes still fills in alongside.
  const Field account =
      spec["serviceAccountName"].present() ? spec["serviceAccountName"] : spec["serviceAccount"];
  pod.service_account = readName(account, isDnsSubdomain, "an RFC 1123 name", "default");
  pod.host_network = spec["hostNetwork"].boolean(false);
  readContainers(spec, pod);

  const Field status = object["status"];
  pod.phase = status["phase"].string();
  if (!pod.phase.empty() && !oneOf(kPodPhases, pod.phase))
    status["phase"].fail("must be one of " + listOf(kPodPhases) + ", got " + quoted(pod.phase));
  readPodIps(status, pod);
  return pod;
}

Object decodeService(const Field& object, ObjectMeta meta) {
  Service service;
  service.meta = std::move(meta);
  const Field spec = object["spec"];
  readClusterIp(spec["clusterIP"], service);
  spec["clusterIPs"].forEachItem([&](const Field& item) { readClusterIp(item, service); });
  if (service.headless && !service.cluster_ips.empty())
    spec["clusterIP"].fail("\"None\" cannot be combined with addresses in spec.clusterIPs");

  std::set<std::pair<uint16_t, std::string>> seen_ports;
  std::set<std::string> seen_names;
  spec["ports"].forEachItem([&](const Field& item) {
    ServicePort port;
    readServicePort(item, port);
    if (port.port != 0 && !seen_ports.emplace(port.port, port.protocol).second)
      item["port"].fail("duplicate port " + std::to_string(port.port) + "/" + port.protocol);
    if (!port.name.empty() && !seen_names.insert(port.name).second)
      item["name"].fail("duplicate port name " + quoted(port.name));
    service.ports.push_back(std::move(port));
  });
  service.selector = spec["selector"].stringMap();
  return service;
}

}  // namespace sluice::config::detail
