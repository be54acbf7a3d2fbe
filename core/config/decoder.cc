#include "core/config/decoder.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <exception>
#include <utility>

#include "core/config/kinds.h"

namespace sluice::config {
namespace detail {
namespace {

constexpr bool kNamespaced = true;
constexpr bool kClusterScoped = false;
constexpr bool kStrict = true;
constexpr bool kLenient = false;

// Every kind Sluice reads. Adding a kind is one row here plus its decoder.
constexpr KindInfo kKinds[] = {
    {"", {"v1"}, "Namespace", kClusterScoped, kLenient, &decodeNamespace},
    {"", {"v1"}, "Pod", kNamespaced, kLenient, &decodePod},
    {"", {"v1"}, "Service", kNamespaced, kLenient, &decodeService},
    {"security.istio.io",
     {"v1", "v1beta1"},
     "PeerAuthentication",
     kNamespaced,
     kStrict,
     &decodePeerAuthentication},
    {"security.istio.io",
     {"v1", "v1beta1"},
     "AuthorizationPolicy",
     kNamespaced,
     kStrict,
     &decodeAuthorizationPolicy},
    {"networking.istio.io",
     {"v1", "v1beta1", "v1alpha3"},
     "VirtualService",
     kNamespaced,
     kStrict,
     &decodeVirtualService},
    {"networking.istio.io",
     {"v1", "v1beta1", "v1alpha3"},
     "DestinationRule",
     kNamespaced,
     kStrict,
     &decodeDestinationRule},
    {"gateway.networking.k8s.io",
     {"v1", "v1beta1"},
     "Gateway",
     kNamespaced,
     kStrict,
     &decodeGateway},
    {"gateway.networking.k8s.io",
     {"v1", "v1beta1"},
     "HTTPRoute",
     kNamespaced,
     kStrict,
     &decodeHttpRoute},
};

}  // namespace

std::span<const KindInfo> kinds() { return kKinds; }

const KindInfo* findKind(std::string_view kind) {
  for (const KindInfo& info : kKinds)
    if (info.kind == kind) return &info;
  return nullptr;
}

std::optional<boost::asio::ip::address> readIp(const Field& field) {
  if (!field.present()) return std::nullopt;
  std::string text = field.string();
  if (text.empty()) return std::nullopt;
  boost::system::error_code error;
  boost::asio::ip::address ip = boost::asio::ip::make_address(text, error);
  // Scoped (link-local) IPv6 addresses are never pod or service addresses.
  if (error || (ip.is_v6() && ip.to_v6().scope_id() != 0)) {
    field.fail("must be an IPv4 or IPv6 address, got " + quoted(text));
    return std::nullopt;
  }
  return ip;
}

namespace {

// One dot-free part of an RFC 1123 name: [a-z0-9]([-a-z0-9]*[a-z0-9])?
bool isNamePart(std::string_view part) {
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (part.empty() || !alnum(part.front()) || !alnum(part.back())) return false;
  return std::all_of(part.begin(), part.end(), [&](char c) { return alnum(c) || c == '-'; });
}

}  // namespace

bool isDnsLabel(std::string_view name) { return name.size() <= 63 && isNamePart(name); }

bool isDnsSubdomain(std::string_view name) {
  if (name.size() > 253) return false;
  while (true) {
    size_t dot = name.find('.');
    if (!isNamePart(name.substr(0, dot))) return false;
    if (dot == std::string_view::npos) return true;
    name.remove_prefix(dot + 1);
  }
}

bool isPortName(std::string_view name) {
  if (name.empty() || name.size() > 15) return false;
  if (name.front() == '-' || name.back() == '-' || name.find("--") != std::string_view::npos)
    return false;
  bool letter = false;
  for (char c : name) {
    if (c >= 'a' && c <= 'z') {
      letter = true;
    } else if (!(c >= '0' && c <= '9') && c != '-') {
      return false;
    }
  }
  return letter;
}

std::string readName(const Field& field, bool (*valid)(std::string_view), std::string_view what,
                     std::string_view fallback) {
  if (!field.present()) return std::string(fallback);
  std::string name = field.string();
  if (!valid(name)) field.fail("must be " + std::string(what) + ", got " + quoted(name));
  return name;
}

namespace {

constexpr std::string_view kNotUsed = "kind not used by Sluice";

bool knowsVersion(const KindInfo& info, std::string_view api_version) {
  std::string_view group;
  std::string_view version = api_version;
  if (size_t slash = api_version.find('/'); slash != std::string_view::npos) {
    group = api_version.substr(0, slash);
    version = api_version.substr(slash + 1);
  }
  if (group != info.group || version.empty()) return false;
  return std::find(info.versions.begin(), info.versions.end(), version) != info.versions.end();
}

std::string knownApiVersions(const KindInfo& info) {
  std::string out;
  for (std::string_view version : info.versions) {
    if (version.empty()) continue;
    if (!out.empty()) out += ", ";
    if (!info.group.empty()) out += std::string(info.group) + "/";
    out += version;
  }
  return out;
}

// Best-effort scalar for a report, without reporting anything.
std::string peek(const YAML::Node& node, const char* key) {
  if (!node.IsMap()) return "";
  for (const auto& entry : node) {
    if (entry.first.IsScalar() && entry.first.Scalar() == key)
      return entry.second.IsScalar() ? entry.second.Scalar() : "";
  }
  return "";
}

YAML::Node peekNode(const YAML::Node& node, const char* key) {
  if (node.IsMap()) {
    for (const auto& entry : node)
      if (entry.first.IsScalar() && entry.first.Scalar() == key) return entry.second;
  }
  return YAML::Node();
}

Decoded reject(DocumentReport report, const FieldError& error) {
  report.status = DocumentReport::Status::kRejected;
  report.line = error.line > 0 ? error.line : report.line;
  report.field = error.field;
  report.reason = error.field.empty() ? error.reason : error.field + ": " + error.reason;
  return Decoded{std::move(report), std::nullopt};
}

ObjectMeta decodeMeta(const Field& object, const KindInfo& info) {
  const Field metadata = object["metadata"];
  metadata.require();
  ObjectMeta meta;
  const Field name = metadata["name"];
  if (metadata.present()) name.require();
  meta.name = readName(name, isDnsSubdomain, "an RFC 1123 name (a-z, 0-9, '-', '.')");
  if (info.namespaced)
    meta.ns =
        readName(metadata["namespace"], isDnsLabel, "an RFC 1123 label (a-z, 0-9, '-')", "default");
  meta.labels = metadata["labels"].stringMap();
  meta.annotations = metadata["annotations"].stringMap();
  meta.uid = metadata["uid"].string();
  meta.creation_timestamp = metadata["creationTimestamp"].string();
  return meta;
}

Decoded decodeWith(const YAML::Node& node, std::string_view default_api_version,
                   std::string_view default_kind) {
  DocumentReport report;
  DecodeContext context;
  const Field object(node, context);
  report.line = object.line();
  if (!object.isMap())
    return reject(std::move(report),
                  {"", object.line(), "an object must be a mapping with apiVersion and kind"});

  const Field kind_field = object["kind"];
  const Field api_field = object["apiVersion"];
  report.kind = kind_field.present() ? kind_field.string() : std::string(default_kind);
  std::string api_version =
      api_field.present() ? api_field.string() : std::string(default_api_version);
  YAML::Node metadata = peekNode(node, "metadata");
  report.name = peek(metadata, "name");
  report.ns = peek(metadata, "namespace");
  if (context.failed()) return reject(std::move(report), *context.error());
  if (report.kind.empty()) return reject(std::move(report), {"kind", object.line(), "required"});
  if (api_version.empty())
    return reject(std::move(report), {"apiVersion", object.line(), "required"});
  if (report.kind == "List")
    return reject(std::move(report), {"kind", object.line(), "a List cannot be nested"});

  const KindInfo* info = findKind(report.kind);
  if (info == nullptr) {
    report.status = DocumentReport::Status::kIgnored;
    report.reason = kNotUsed;
    return Decoded{std::move(report), std::nullopt};
  }
  if (info->namespaced && report.ns.empty()) report.ns = "default";
  if (!info->namespaced) report.ns.clear();
  if (!knowsVersion(*info, api_version)) {
    report.status = DocumentReport::Status::kIgnored;
    report.reason = "apiVersion " + quoted(api_version) + " of " + report.kind +
                    " not used by Sluice (known: " + knownApiVersions(*info) + ")";
    return Decoded{std::move(report), std::nullopt};
  }

  if (info->strict) object.rejectUnknown({"apiVersion", "kind", "metadata", "spec", "status"});
  ObjectMeta meta = decodeMeta(object, *info);
  Object decoded = info->decode(object, std::move(meta));
  if (context.failed()) return reject(std::move(report), *context.error());
  report.status = DocumentReport::Status::kAccepted;
  return Decoded{std::move(report), std::move(decoded)};
}

// Anything yaml-cpp throws on a malformed tree is a rejection of that object, never a crash.
Decoded decodeGuarded(const YAML::Node& node, std::string_view api_version, std::string_view kind) {
  try {
    return decodeWith(node, api_version, kind);
  } catch (const YAML::Exception& error) {
    return reject(DocumentReport{}, {"", error.mark.line + 1, error.msg});
  } catch (const std::exception& error) {
    return reject(DocumentReport{}, {"", 0, error.what()});
  }
}

}  // namespace
}  // namespace detail

std::string_view toString(DocumentReport::Status status) {
  switch (status) {
    case DocumentReport::Status::kAccepted:
      return "ACCEPTED";
    case DocumentReport::Status::kIgnored:
      return "IGNORED";
    case DocumentReport::Status::kRejected:
      return "REJECTED";
  }
  return "?";
}

Decoded decodeObject(const YAML::Node& node) { return detail::decodeGuarded(node, "", ""); }

Decoded decodeObjectAs(const YAML::Node& node, std::string_view api_version,
                       std::string_view kind) {
  return detail::decodeGuarded(node, api_version, kind);
}

std::vector<Decoded> decodeDocument(const YAML::Node& document) {
  std::vector<Decoded> out;
  try {
    if (!document.IsDefined() || document.IsNull()) return out;  // empty document, comments
    std::string kind = detail::peek(document, "kind");
    std::string api_version = detail::peek(document, "apiVersion");
    // `List` is what kubectl prints for several objects; `PodList` and friends are what the
    // API server returns, with items that carry no apiVersion or kind of their own.
    std::string item_kind;
    if (kind.size() > 4 && kind.ends_with("List")) {
      item_kind = kind.substr(0, kind.size() - 4);
      if (detail::findKind(item_kind) == nullptr) item_kind.clear();
    }
    if (kind != "List" && item_kind.empty()) {
      out.push_back(decodeObject(document));
      return out;
    }
    detail::DecodeContext context;
    const detail::Field list(document, context);
    const detail::Field items = list["items"];
    items.forEachItem([&](const detail::Field& item) {
      Decoded decoded = item_kind.empty() ? decodeObject(item.node())
                                          : decodeObjectAs(item.node(), api_version, item_kind);
      if (decoded.report.line == 0) decoded.report.line = item.line();
      out.push_back(std::move(decoded));
    });
    if (context.failed()) {
      DocumentReport report;
      report.line = list.line();
      report.kind = kind;
      out.push_back(detail::reject(std::move(report), *context.error()));
    }
  } catch (const YAML::Exception& error) {
    out.push_back(detail::reject(DocumentReport{}, {"", error.mark.line + 1, error.msg}));
  } catch (const std::exception& error) {
    out.push_back(detail::reject(DocumentReport{}, {"", 0, error.what()}));
  }
  return out;
}

}  // namespace sluice::config
