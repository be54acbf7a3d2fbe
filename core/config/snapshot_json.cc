// Snapshot::toJson: the configuration dump served on the admin port.
//
// Written with a small local writer rather than Boost.JSON so that sluice_config needs no
// compiled Boost library (its tests link sluice_config alone).
#include <string>
#include <vector>

#include "core/config/snapshot.h"

namespace sluice::config {
namespace {

// Length of the valid UTF-8 sequence at text[i], or 0 when it is not valid UTF-8.
size_t utf8Length(std::string_view text, size_t i) {
  auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  unsigned char c = byte(i);
  size_t length = 0;
  if (c >= 0xc2 && c <= 0xdf) {
    length = 2;
  } else if (c >= 0xe0 && c <= 0xef) {
    length = 3;
  } else if (c >= 0xf0 && c <= 0xf4) {
    length = 4;
  }
  if (length == 0 || i + length > text.size()) return 0;
  for (size_t k = 1; k < length; ++k)
    if ((byte(i + k) & 0xc0) != 0x80) return 0;
  // Overlong forms, UTF-16 surrogates and code points past U+10FFFF.
  unsigned char next = byte(i + 1);
  if (c == 0xe0 && next < 0xa0) return 0;
  if (c == 0xed && next >= 0xa0) return 0;
  if (c == 0xf0 && next < 0x90) return 0;
  if (c == 0xf4 && next >= 0x90) return 0;
  return length;
}

// Emits JSON with commas placed automatically; keys and values are written in order.
class JsonWriter {
 public:
  JsonWriter& beginObject() { return open('{'); }
  JsonWriter& endObject() { return close('}'); }
  JsonWriter& beginArray() { return open('['); }
  JsonWriter& endArray() { return close(']'); }
  JsonWriter& key(std::string_view name) {
    separate();
    quote(name);
    out_ += ':';
    after_key_ = true;
    return *this;
  }
  JsonWriter& value(std::string_view text) {
    separate();
    quote(text);
    return *this;
  }
  JsonWriter& value(const char* text) { return value(std::string_view(text)); }
  JsonWriter& value(bool flag) { return raw(flag ? "true" : "false"); }
  JsonWriter& value(uint64_t number) { return raw(std::to_string(number)); }
  JsonWriter& stringMap(const std::map<std::string, std::string>& map) {
    beginObject();
    for (const auto& [k, v] : map) key(k).value(v);
    return endObject();
  }
  std::string take() { return std::move(out_); }

 private:
  JsonWriter& raw(std::string_view text) {
    separate();
    out_ += text;
    return *this;
  }
  JsonWriter& open(char bracket) {
    separate();
    out_ += bracket;
    first_.push_back(true);
    return *this;
  }
  JsonWriter& close(char bracket) {
    out_ += bracket;
    first_.pop_back();
    return *this;
  }
  void separate() {
    if (after_key_) {
      after_key_ = false;
      return;
    }
    if (first_.empty()) return;
    if (!first_.back()) out_ += ',';
    first_.back() = false;
  }
  void quote(std::string_view text) {
    static constexpr char kHex[] = "0123456789abcdef";
    out_ += '"';
    for (size_t i = 0; i < text.size();) {
      unsigned char c = static_cast<unsigned char>(text[i]);
      if (c == '"' || c == '\\') {
        out_ += '\\';
        out_ += static_cast<char>(c);
      } else if (c < 0x20) {
        out_ += "\\u00";
        out_ += kHex[c >> 4];
        out_ += kHex[c & 0xf];
      } else if (c >= 0x80) {
        size_t length = utf8Length(text, i);
        if (length == 0) {
          out_ += "\\ufffd";  // not UTF-8: keep the dump valid JSON
          ++i;
        } else {
          out_.append(text.substr(i, length));
          i += length;
        }
        continue;
      } else {
        out_ += static_cast<char>(c);
      }
      ++i;
    }
    out_ += '"';
  }

  std::string out_;
  std::vector<bool> first_;
  bool after_key_ = false;
};

void writeMeta(JsonWriter& json, const ObjectMeta& meta) {
  json.key("metadata").beginObject().key("name").value(meta.name);
  if (!meta.ns.empty()) json.key("namespace").value(meta.ns);
  if (!meta.uid.empty()) json.key("uid").value(meta.uid);
  json.key("labels").stringMap(meta.labels);
  json.key("annotations").stringMap(meta.annotations);
  json.endObject();
}

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

  json.endObject();
  return json.take();
}

}  // namespace sluice::config
