// Snapshot::toJson: the configuration dump served on the admin port.
//
// The L7 kinds are written by traffic_json.cc.
#include <string>
#include <vector>

#include "core/config/json_writer.h"
#include "core/config/snapshot.h"

namespace sluice::config {
namespace detail {

void writeMeta(JsonWriter& json, const ObjectMeta& meta) {
  json.key("metadata").beginObject().key("name").value(meta.name);
  if (!meta.ns.empty()) json.key("namespace").value(meta.ns);
  if (!meta.uid.empty()) json.key("uid").value(meta.uid);
  if (!meta.creation_timestamp.empty())
    json.key("creationTimestamp").value(meta.creation_timestamp);
  json.key("labels").stringMap(meta.labels);
  json.key("annotations").stringMap(meta.annotations);
  json.endObject();
}

}  // namespace detail

namespace {

using detail::JsonWriter;
using detail::writeMeta;

void writeIps(JsonWriter& json, const std::vector<boost::asio::ip::address>& ips) {
  json.beginArray();
  for (const auto& ip : ips) json.value(ip.to_string());
  json.endArray();
}

}  // namespace

std::string Snapshot::toJson() const {
  JsonWriter json;
  json.beginObject().key("version").value(version_);
  json.key("rootNamespace").value(options_.root_namespace);

  json.key("namespaces").beginArray();
  for (const Namespace& ns : namespaces()) {
    json.beginObject();
    writeMeta(json, ns.meta);
    json.endObject();
  }
  json.endArray();

  json.key("pods").beginArray();
  for (const Pod& pod : pods()) {
    json.beginObject();
    writeMeta(json, pod.meta);
    json.key("nodeName").value(pod.node_name);
    json.key("serviceAccountName").value(pod.service_account);
    json.key("hostNetwork").value(pod.host_network);
    json.key("phase").value(pod.phase);
    json.key("ips");
    writeIps(json, pod.ips);
    json.key("namedPorts").beginObject();
    for (const auto& [name, port] : pod.named_ports) json.key(name).value(uint64_t{port});
    json.endObject();
    json.key("meshed").value(isMeshed(pod));
    json.endObject();
  }
  json.endArray();

  json.key("services").beginArray();
  for (const Service& service : services()) {
    json.beginObject();
    writeMeta(json, service.meta);
    json.key("clusterIPs");
    writeIps(json, service.cluster_ips);
    json.key("headless").value(service.headless);
    json.key("ports").beginArray();
    for (const ServicePort& port : service.ports) {
      json.beginObject().key("name").value(port.name).key("port").value(uint64_t{port.port});
      json.key("targetPort");
      if (const auto* number = std::get_if<uint16_t>(&port.target_port)) {
        json.value(uint64_t{*number});
      } else {
        json.value(std::get<std::string>(port.target_port));
      }
      json.key("protocol").value(port.protocol).key("appProtocol").value(port.app_protocol);
      json.endObject();
    }
    json.endArray();
    json.key("selector").stringMap(service.selector);
    json.key("endpoints").beginArray();
    for (const Pod* pod : endpoints(service)) json.value(pod->meta.name);
    json.endArray();
    json.endObject();
  }
  json.endArray();

  json.key("peerAuthentications").beginArray();
  for (const PeerAuthentication& policy : peerAuthentications()) {
    json.beginObject();
    writeMeta(json, policy.meta);
    if (policy.selector) json.key("selector").stringMap(*policy.selector);
    json.key("mode").value(toString(policy.mode));
    json.key("portLevelMtls").beginObject();
    for (const auto& [port, mode] : policy.port_modes)
      json.key(std::to_string(port)).value(toString(mode));
    json.endObject();
    json.endObject();
  }
  json.endArray();

  detail::writeTrafficObjects(json, *this);
  json.endObject();
  return json.take();
}

}  // namespace sluice::config
