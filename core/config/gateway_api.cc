// Decoders for gateway.networking.k8s.io Gateway and HTTPRoute (strict). Defaults are the
// specification's, filled in here so that every consumer sees the same route: a rule without
// matches matches path prefix "/", a path match without type is a PathPrefix, a backendRef
// without weight weighs 1.
#include <algorithm>
#include <cctype>
#include <set>
#include <utility>

#include "core/config/kinds.h"
#include "core/config/traffic_fields.h"

namespace sluice::config::detail {
namespace {

constexpr uint32_t kMaxBackendWeight = 1'000'000;

std::string lowercase(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

// "HTTP", "HBONE", or a domain-prefixed implementation protocol ("example.com/PROXY").
bool isProtocolName(std::string_view text) {
  if (text.empty() || text.size() > 255) return false;
  return std::all_of(text.begin(), text.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '/';
  });
}

GatewayListener readListener(const Field& field) {
  GatewayListener listener;
  field.rejectUnknown({"name", "hostname", "port", "protocol", "tls", "allowedRoutes"});
  field["name"].require();
  listener.name = readName(field["name"], isDnsLabel, "an RFC 1123 label (a-z, 0-9, '-')");
  listener.hostname = field["hostname"].string();
  field["port"].require();
  listener.port = field["port"].port().value_or(0);
  listener.protocol = readRequired(field["protocol"]);
  if (!listener.protocol.empty() && !isProtocolName(listener.protocol))
    field["protocol"].fail("must be a protocol name such as HTTP, HTTPS, TLS, TCP or HBONE, got " +
                           quoted(listener.protocol));
  field["tls"].rejectUnknown({"mode", "certificateRefs", "options", "frontendValidation"});
  readEnum(field["tls"]["mode"], {"Terminate", "Passthrough"});

  const Field allowed = field["allowedRoutes"];
  allowed.rejectUnknown({"namespaces", "kinds"});
  const Field namespaces = allowed["namespaces"];
  namespaces.rejectUnknown({"from", "selector"});
  listener.allowed_namespaces_from =
      readEnum(namespaces["from"], {"All", "Same", "Selector"}, "Same");
  const Field selector = namespaces["selector"];
  selector.rejectUnknown({"matchLabels", "matchExpressions"});
  listener.allowed_namespaces_selector = selector["matchLabels"].stringMap();
  if (listener.allowed_namespaces_from == "Selector" && !selector.present())
    namespaces.fail("from: Selector requires a selector");
  allowed["kinds"].forEachItem([&](const Field& item) {
    item.rejectUnknown({"group", "kind"});
    listener.allowed_kinds.push_back(readRequired(item["kind"]));
  });
  return listener;
}

ObjectReference readParentRef(const Field& field) {
  ObjectReference ref;
  field.rejectUnknown({"group", "kind", "namespace", "name", "sectionName", "port"});
  ref.group = field["group"].string(kGatewayApiGroup);
  ref.kind = field["kind"].string("Gateway");
  ref.ns = field["namespace"].string();
  ref.name = readRequired(field["name"]);
  ref.section_name = field["sectionName"].string();
  ref.port = field["port"].port();
  return ref;
}

// backendRef and a mirror's backendRef; Service (the default kind) needs a port.
BackendRef readBackendRef(const Field& field) {
  BackendRef ref;
  ref.group = field["group"].string();
  ref.kind = field["kind"].string("Service");
  ref.name = readRequired(field["name"]);
  ref.ns = field["namespace"].string();
  ref.port = field["port"].port();
  if (field.isMap() && ref.group.empty() && ref.kind == "Service" && !ref.port)
    field["port"].fail("required for a Service backend");
  return ref;
}

GatewayHeaderMatch readNameValueMatch(const Field& field) {
  GatewayHeaderMatch match;
  field.rejectUnknown({"type", "name", "value"});
  std::string type = readEnum(field["type"], {"Exact", "RegularExpression"}, "Exact");
  match.type = type == "Exact" ? GatewayMatchType::kExact : GatewayMatchType::kRegularExpression;
  match.name = readRequired(field["name"]);
  match.value = readRequired(field["value"]);
  return match;
}

std::vector<GatewayHeaderMatch> readNameValueMatches(const Field& field) {
  std::vector<GatewayHeaderMatch> matches;
  std::set<std::string> names;
  field.forEachItem([&](const Field& item) {
    GatewayHeaderMatch match = readNameValueMatch(item);
    // The spec keys these lists by name; the first of a repeated name would win silently.
    if (!match.name.empty() && !names.insert(lowercase(match.name)).second)
      item["name"].fail("duplicate name " + quoted(match.name));
    matches.push_back(std::move(match));
  });
  return matches;
}

HttpRouteMatch readRouteMatch(const Field& field) {
  HttpRouteMatch match;
  field.rejectUnknown({"path", "headers", "queryParams", "method"});
  const Field path = field["path"];
  path.rejectUnknown({"type", "value"});
  std::string type =
      readEnum(path["type"], {"Exact", "PathPrefix", "RegularExpression"}, "PathPrefix");
  match.path_type = type == "Exact"        ? GatewayMatchType::kExact
                    : type == "PathPrefix" ? GatewayMatchType::kPathPrefix
                                           : GatewayMatchType::kRegularExpression;
  match.path = path["value"].string("/");
  if (match.path_type == GatewayMatchType::kRegularExpression) {
    if (match.path.empty()) path["value"].fail("must not be empty");
  } else if (!match.path.starts_with('/')) {
    path["value"].fail("must start with \"/\" for type " + type + ", got " + quoted(match.path));
  }
  match.headers = readNameValueMatches(field["headers"]);
  match.query_params = readNameValueMatches(field["queryParams"]);
  match.method = readEnum(field["method"], {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT",
                                            "OPTIONS", "TRACE", "PATCH"});
  return match;
}

HeaderOperations readHeaderModifier(const Field& field) {
  HeaderOperations operations;
  field.rejectUnknown({"set", "add", "remove"});
  std::set<std::string> names;
  auto readList = [&](const Field& list, std::map<std::string, std::string>& out) {
    list.forEachItem([&](const Field& item) {
      item.rejectUnknown({"name", "value"});
      std::string name = readRequired(item["name"]);
      item["value"].require();
      if (!name.empty() && !names.insert(lowercase(name)).second)
        item["name"].fail("header " + quoted(name) + " is modified twice");
      out[name] = item["value"].string();
    });
  };
  readList(field["set"], operations.set);
  readList(field["add"], operations.add);
  operations.remove = field["remove"].stringList();
  return operations;
}

std::optional<HttpPathModifier> readPathModifier(const Field& field) {
  if (!field.present()) return std::nullopt;
  field.rejectUnknown({"type", "replaceFullPath", "replacePrefixMatch"});
  HttpPathModifier modifier;
  field["type"].require();
  modifier.type = readEnum(field["type"], {"ReplaceFullPath", "ReplacePrefixMatch"});
  if (modifier.type.empty()) return modifier;
  const Field value =
      field[modifier.type == "ReplaceFullPath" ? "replaceFullPath" : "replacePrefixMatch"];
  const Field other =
      field[modifier.type == "ReplaceFullPath" ? "replacePrefixMatch" : "replaceFullPath"];
  value.require();
  if (other.present()) other.fail("not allowed with type " + modifier.type);
  modifier.value = value.string();
  return modifier;
}

struct FilterKind {
  std::string_view type;
  std::string_view field;
  HttpRouteFilter::Type value;
};

constexpr FilterKind kFilterKinds[] = {
    {"RequestHeaderModifier", "requestHeaderModifier",
     HttpRouteFilter::Type::kRequestHeaderModifier},
    {"ResponseHeaderModifier", "responseHeaderModifier",
     HttpRouteFilter::Type::kResponseHeaderModifier},
    {"RequestRedirect", "requestRedirect", HttpRouteFilter::Type::kRequestRedirect},
    {"URLRewrite", "urlRewrite", HttpRouteFilter::Type::kUrlRewrite},
    {"RequestMirror", "requestMirror", HttpRouteFilter::Type::kRequestMirror},
    {"ExtensionRef", "extensionRef", HttpRouteFilter::Type::kExtensionRef},
};

void readFilterConfig(const Field& config, HttpRouteFilter& filter) {
  using Type = HttpRouteFilter::Type;
  switch (filter.type) {
    case Type::kRequestHeaderModifier:
    case Type::kResponseHeaderModifier:
      filter.headers = readHeaderModifier(config);
      break;
    case Type::kRequestRedirect:
      config.rejectUnknown({"scheme", "hostname", "path", "port", "statusCode"});
      filter.scheme = readEnum(config["scheme"], {"http", "https"});
      filter.hostname = config["hostname"].string();
      filter.path = readPathModifier(config["path"]);
      filter.port = config["port"].port();
      if (const Field code = config["statusCode"]; code.present()) {
        std::optional<uint16_t> status = readStatus(code, 300, 399);
        if (status && *status != 301 && *status != 302 && *status != 303 && *status != 307 &&
            *status != 308)
          code.fail("must be one of 301, 302, 303, 307, 308, got " + std::to_string(*status));
        filter.status_code = status.value_or(302);
      }
      break;
    case Type::kUrlRewrite:
      config.rejectUnknown({"hostname", "path"});
      filter.hostname = config["hostname"].string();
      filter.path = readPathModifier(config["path"]);
      break;
    case Type::kRequestMirror: {
      config.rejectUnknown({"backendRef", "percent", "fraction"});
      const Field backend = config["backendRef"];
      backend.require();
      backend.rejectUnknown({"group", "kind", "name", "namespace", "port"});
      filter.mirror = readBackendRef(backend);
      if (auto percent = config["percent"].integer(0, 100))
        filter.mirror_percent = static_cast<double>(*percent);
      if (const Field fraction = config["fraction"]; fraction.present()) {
        fraction.rejectUnknown({"numerator", "denominator"});
        fraction["numerator"].require();
        int64_t numerator = fraction["numerator"].integer(0, INT32_MAX).value_or(0);
        int64_t denominator = fraction["denominator"].integer(1, INT32_MAX).value_or(100);
        if (numerator > denominator) fraction.fail("numerator must not exceed denominator");
        if (config["percent"].present()) fraction.fail("cannot be combined with percent");
        filter.mirror_percent =
            100.0 * static_cast<double>(numerator) / static_cast<double>(denominator);
      }
      break;
    }
    case Type::kExtensionRef:
      config.rejectUnknown({"group", "kind", "name"});
      config["group"].require();
      filter.extension.group = config["group"].string();
      filter.extension.kind = readRequired(config["kind"]);
      filter.extension.name = readRequired(config["name"]);
      break;
  }
}

HttpRouteFilter readFilter(const Field& field) {
  HttpRouteFilter filter;
  field.rejectUnknown({"type", "requestHeaderModifier", "responseHeaderModifier", "requestRedirect",
                       "urlRewrite", "requestMirror", "extensionRef"});
  const Field type = field["type"];
  type.require();
  std::string text = type.string();
  const FilterKind* kind = nullptr;
  for (const FilterKind& candidate : kFilterKinds)
    if (candidate.type == text) kind = &candidate;
  if (kind == nullptr) {
    if (type.present())
      type.fail(
          "must be one of RequestHeaderModifier, ResponseHeaderModifier, RequestRedirect, "
          "URLRewrite, RequestMirror, ExtensionRef, got " +
          quoted(text));
    return filter;
  }
  filter.type = kind->value;
  // Exactly the configuration the type names, as the specification's validation demands.
  for (const FilterKind& other : kFilterKinds) {
    if (other.field != kind->field && field[other.field].present())
      field[other.field].fail("not allowed with type " + text);
  }
  const Field config = field[kind->field];
  config.require();
  readFilterConfig(config, filter);
  return filter;
}

std::vector<HttpRouteFilter> readFilters(const Field& field) {
  std::vector<HttpRouteFilter> filters;
  field.forEachItem([&](const Field& item) { filters.push_back(readFilter(item)); });
  return filters;
}

HttpRouteRule readRule(const Field& field) {
  HttpRouteRule rule;
  field.rejectUnknown(
      {"name", "matches", "filters", "backendRefs", "timeouts", "retry", "sessionPersistence"});
  rule.name = field["name"].string();
  field["matches"].forEachItem(
      [&](const Field& item) { rule.matches.push_back(readRouteMatch(item)); });
  if (rule.matches.empty()) rule.matches.emplace_back();  // the spec's default: prefix "/"
  rule.filters = readFilters(field["filters"]);
  field["backendRefs"].forEachItem([&](const Field& item) {
    item.rejectUnknown({"group", "kind", "name", "namespace", "port", "weight", "filters"});
    HttpBackendRef backend;
    backend.ref = readBackendRef(item);
    backend.weight = readCount(item["weight"], kMaxBackendWeight).value_or(1);
    backend.filters = readFilters(item["filters"]);
    rule.backend_refs.push_back(std::move(backend));
  });
  const Field timeouts = field["timeouts"];
  timeouts.rejectUnknown({"request", "backendRequest"});
  rule.request_timeout = readDuration(timeouts["request"]);
  rule.backend_request_timeout = readDuration(timeouts["backendRequest"]);
  // "0s" disables the request timeout; otherwise a try cannot outlast the whole request.
  if (rule.request_timeout && rule.backend_request_timeout && rule.request_timeout->count() > 0 &&
      *rule.backend_request_timeout > *rule.request_timeout)
    timeouts["backendRequest"].fail("must not be longer than timeouts.request (" +
                                    formatDuration(*rule.request_timeout) + ")");
  return rule;
}

}  // namespace

Object decodeGateway(const Field& object, ObjectMeta meta) {
  Gateway gateway;
  gateway.meta = std::move(meta);
  const Field spec = object["spec"];
  spec.require();
  spec.rejectUnknown({"gatewayClassName", "listeners", "addresses", "infrastructure", "backendTLS",
                      "allowedListeners"});
  gateway.gateway_class_name = readRequired(spec["gatewayClassName"]);
  const Field listeners = spec["listeners"];
  listeners.require();
  std::set<std::string> names;
  listeners.forEachItem([&](const Field& item) {
    GatewayListener listener = readListener(item);
    if (!listener.name.empty() && !names.insert(listener.name).second)
      item["name"].fail("duplicate listener " + quoted(listener.name));
    gateway.listeners.push_back(std::move(listener));
  });
  if (listeners.isSequence() && gateway.listeners.empty())
    listeners.fail("must have at least one listener");
  spec["addresses"].forEachItem([&](const Field& item) {
    item.rejectUnknown({"type", "value"});
    gateway.addresses.push_back(readRequired(item["value"]));
  });
  spec["infrastructure"].rejectUnknown({"labels", "annotations", "parametersRef"});
  return gateway;
}

Object decodeHttpRoute(const Field& object, ObjectMeta meta) {
  HTTPRoute route;
  route.meta = std::move(meta);
  const Field spec = object["spec"];
  spec.rejectUnknown({"parentRefs", "hostnames", "rules"});
  spec["parentRefs"].forEachItem(
      [&](const Field& item) { route.parent_refs.push_back(readParentRef(item)); });
  route.hostnames = spec["hostnames"].stringList();
  spec["rules"].forEachItem([&](const Field& item) { route.rules.push_back(readRule(item)); });
  // The CRD's default for absent rules: one rule matching prefix "/" (with no backends).
  if (!spec["rules"].present()) {
    route.rules.emplace_back();
    route.rules.back().matches.emplace_back();
  }
  return route;
}

}  // namespace sluice::config::detail
