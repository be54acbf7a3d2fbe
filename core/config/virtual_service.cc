// Decoder for networking.istio.io VirtualService. Strict, as for every kind people author: a
// misspelt `retires:` must not silently turn retries off.
#include <algorithm>
#include <array>
#include <charconv>
#include <utility>

#include "core/config/kinds.h"
#include "core/config/traffic_fields.h"

namespace sluice::config::detail {
namespace {

// The retry conditions Envoy (HTTP) and gRPC define, as Istio passes them through.
constexpr std::array<std::string_view, 15> kRetryOnTokens = {
    "5xx",
    "gateway-error",
    "reset",
    "reset-before-request",
    "connect-failure",
    "envoy-ratelimited",
    "retriable-4xx",
    "refused-stream",
    "retriable-status-codes",
    "retriable-headers",
    "cancelled",
    "deadline-exceeded",
    "internal",
    "resource-exhausted",
    "unavailable",
};

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

std::optional<uint16_t> parseStatus(std::string_view text) {
  unsigned value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || error != std::errc() || end != text.data() + text.size()) return std::nullopt;
  if (value < 200 || value > 599) return std::nullopt;
  return static_cast<uint16_t>(value);
}

// retryOn is one comma-separated string ("5xx,connect-failure,503").
void readRetryOn(const Field& field, HttpRetry& retry) {
  if (!field.present()) return;
  std::string text = field.string();
  std::string_view rest = text;
  while (true) {
    size_t comma = rest.find(',');
    std::string_view token = trim(rest.substr(0, comma));
    if (token.empty()) {
      field.fail("has an empty condition in " + quoted(text) +
                 " (conditions are separated by single commas)");
      return;
    }
    if (std::find(kRetryOnTokens.begin(), kRetryOnTokens.end(), token) != kRetryOnTokens.end()) {
      retry.retry_on.emplace_back(token);
    } else if (auto status = parseStatus(token)) {
      retry.retry_on_statuses.push_back(*status);
    } else {
      std::string known;
      for (std::string_view name : kRetryOnTokens) known += std::string(name) + ", ";
      field.fail("unknown retry condition " + quoted(token) + " (known: " + known +
                 "or an HTTP status code 200..599)");
      return;
    }
    if (comma == std::string_view::npos) return;
    rest.remove_prefix(comma + 1);
  }
}

HttpRetry readRetries(const Field& field) {
  HttpRetry retry;
  field.rejectUnknown({"attempts", "perTryTimeout", "retryOn", "retryRemoteLocalities",
                       "retryIgnorePreviousHosts", "backoff"});
  retry.attempts = readCount(field["attempts"], INT32_MAX).value_or(0);
  retry.per_try_timeout = readDuration(field["perTryTimeout"], /*positive=*/true);
  readRetryOn(field["retryOn"], retry);
  if (field["retryRemoteLocalities"].present())
    retry.retry_remote_localities = field["retryRemoteLocalities"].boolean(false);
  if (field["retryIgnorePreviousHosts"].present())
    retry.retry_ignore_previous_hosts = field["retryIgnorePreviousHosts"].boolean(false);
  retry.backoff = readDuration(field["backoff"], /*positive=*/true);
  return retry;
}

// percentage {value} or the deprecated integer percent.
std::optional<double> readFaultPercentage(const Field& field) {
  if (field["percentage"].present()) {
    if (field["percent"].present()) field["percent"].fail("cannot be combined with percentage");
    return readPercentage(field["percentage"]);
  }
  if (auto percent = field["percent"].integer(0, 100)) return static_cast<double>(*percent);
  return std::nullopt;
}

HttpFault readFault(const Field& field) {
  HttpFault fault;
  field.rejectUnknown({"delay", "abort"});
  if (const Field delay = field["delay"]; delay.present()) {
    delay.rejectUnknown({"fixedDelay", "exponentialDelay", "percentage", "percent"});
    FaultDelay value;
    if (!delay["fixedDelay"].present() && !delay["exponentialDelay"].present())
      delay.fail("must set fixedDelay");
    value.fixed_delay = readDuration(delay["fixedDelay"], true).value_or(Duration{0});
    readDuration(delay["exponentialDelay"], true);  // accepted; Istio does not implement it
    value.percentage = readFaultPercentage(delay);
    fault.delay = value;
  }
  if (const Field abort = field["abort"]; abort.present()) {
    abort.rejectUnknown({"httpStatus", "grpcStatus", "http2Error", "percentage", "percent"});
    FaultAbort value;
    value.http_status = readStatus(abort["httpStatus"]);
    value.grpc_status = abort["grpcStatus"].string();
    value.http2_error = abort["http2Error"].string();
    int set = int{abort["httpStatus"].present()} + int{abort["grpcStatus"].present()} +
              int{abort["http2Error"].present()};
    if (set != 1) abort.fail("must set exactly one of httpStatus, grpcStatus, http2Error");
    value.percentage = readFaultPercentage(abort);
    fault.abort = value;
  }
  if (field.isMap() && !fault.delay && !fault.abort) field.fail("must set delay or abort");
  return fault;
}

HttpMatchRequest readMatch(const Field& field) {
  HttpMatchRequest match;
  field.rejectUnknown({"name", "uri", "scheme", "method", "authority", "headers", "port",
                       "sourceLabels", "gateways", "queryParams", "ignoreUriCase", "withoutHeaders",
                       "sourceNamespace", "statPrefix"});
  match.name = field["name"].string();
  match.uri = readStringMatch(field["uri"]);
  match.scheme = readStringMatch(field["scheme"]);
  match.method = readStringMatch(field["method"]);
  match.authority = readStringMatch(field["authority"]);
  match.headers = readStringMatchMap(field["headers"]);
  match.query_params = readStringMatchMap(field["queryParams"]);
  match.without_headers = readStringMatchMap(field["withoutHeaders"]);
  match.port = field["port"].port();
  match.source_labels = field["sourceLabels"].stringMap();
  match.source_namespace = field["sourceNamespace"].string();
  match.gateways = field["gateways"].stringList();
  match.ignore_uri_case = field["ignoreUriCase"].boolean(false);
  return match;
}

HttpRouteDestination readRouteDestination(const Field& field) {
  HttpRouteDestination route;
  field.rejectUnknown({"destination", "weight", "headers"});
  route.destination = readDestination(field["destination"]);
  route.weight = readCount(field["weight"], INT32_MAX);
  route.headers = readHeaders(field["headers"]);
  return route;
}

HttpRedirect readRedirect(const Field& field) {
  HttpRedirect redirect;
  field.rejectUnknown({"uri", "authority", "port", "derivePort", "scheme", "redirectCode"});
  redirect.uri = field["uri"].string();
  redirect.authority = field["authority"].string();
  redirect.scheme = field["scheme"].string();
  redirect.port = field["port"].port();
  redirect.derive_port =
      readEnum(field["derivePort"], {"FROM_PROTOCOL_DEFAULT", "FROM_REQUEST_PORT"});
  if (redirect.port && !redirect.derive_port.empty())
    field["derivePort"].fail("cannot be combined with port");
  redirect.redirect_code = readStatus(field["redirectCode"], 300, 399).value_or(301);
  return redirect;
}

HttpRewrite readRewrite(const Field& field) {
  HttpRewrite rewrite;
  field.rejectUnknown({"uri", "authority", "uriRegexRewrite"});
  rewrite.uri = field["uri"].string();
  rewrite.authority = field["authority"].string();
  const Field regex = field["uriRegexRewrite"];
  regex.rejectUnknown({"match", "rewrite"});
  if (regex.present()) {
    rewrite.uri_regex_match = readRequired(regex["match"]);
    rewrite.uri_regex_rewrite = regex["rewrite"].string();
    if (field["uri"].present()) regex.fail("cannot be combined with uri");
  }
  return rewrite;
}

HttpDirectResponse readDirectResponse(const Field& field) {
  HttpDirectResponse response;
  field.rejectUnknown({"status", "body"});
  field["status"].require();
  response.status = readStatus(field["status"]).value_or(200);
  const Field body = field["body"];
  body.rejectUnknown({"string", "bytes"});
  response.body = body["string"].string();
  return response;
}

void readMirrors(const Field& route, VirtualServiceRoute& out) {
  if (const Field mirror = route["mirror"]; mirror.present()) {
    HttpMirror value;
    value.destination = readDestination(mirror);
    if (route["mirrorPercentage"].present()) {
      value.percentage = readPercentage(route["mirrorPercentage"]);
    } else if (auto percent = route["mirrorPercent"].integer(0, 100)) {
      value.percentage = static_cast<double>(*percent);
    }
    out.mirrors.push_back(std::move(value));
    if (route["mirrors"].present()) route["mirrors"].fail("cannot be combined with mirror");
  }
  route["mirrors"].forEachItem([&](const Field& item) {
    item.rejectUnknown({"destination", "percentage"});
    out.mirrors.push_back(
        HttpMirror{readDestination(item["destination"]), readPercentage(item["percentage"])});
  });
}

void checkCorsPolicy(const Field& field) {
  field.rejectUnknown({"allowOrigin", "allowOrigins", "allowMethods", "allowHeaders",
                       "exposeHeaders", "maxAge", "allowCredentials", "unmatchedPreflights"});
  field["allowOrigins"].forEachItem([](const Field& item) { readStringMatch(item); });
  readDuration(field["maxAge"]);
}

VirtualServiceRoute readHttpRoute(const Field& field) {
  VirtualServiceRoute route;
  field.rejectUnknown({"name", "match", "route", "redirect", "directResponse", "delegate",
                       "rewrite", "timeout", "retries", "fault", "mirror", "mirrors",
                       "mirrorPercent", "mirrorPercentage", "corsPolicy", "headers"});
  route.name = field["name"].string();
  field["match"].forEachItem([&](const Field& item) { route.match.push_back(readMatch(item)); });
  field["route"].forEachItem(
      [&](const Field& item) { route.route.push_back(readRouteDestination(item)); });
  if (field["redirect"].present()) route.redirect = readRedirect(field["redirect"]);
  if (field["directResponse"].present())
    route.direct_response = readDirectResponse(field["directResponse"]);
  const Field delegate = field["delegate"];
  delegate.rejectUnknown({"name", "namespace"});
  if (field["rewrite"].present()) route.rewrite = readRewrite(field["rewrite"]);
  route.timeout = readDuration(field["timeout"]);
  if (field["retries"].present()) route.retries = readRetries(field["retries"]);
  if (field["fault"].present()) route.fault = readFault(field["fault"]);
  route.headers = readHeaders(field["headers"]);
  readMirrors(field, route);
  if (field["corsPolicy"].present()) {
    checkCorsPolicy(field["corsPolicy"]);
    route.has_cors_policy = true;
  }

  // What Istio's validation insists on: one action per route.
  int actions = int{!route.route.empty()} + int{route.redirect.has_value()} +
                int{route.direct_response.has_value()} + int{delegate.present()};
  if (field.isMap() && actions == 0)
    field.fail("must set one of route, redirect, directResponse, delegate");
  if (actions > 1) field.fail("route, redirect, directResponse and delegate cannot be combined");
  if (route.rewrite && (route.redirect || route.direct_response))
    field["rewrite"].fail("cannot be combined with redirect or directResponse");
  return route;
}

L4Route readL4Route(const Field& field, bool tls) {
  L4Route route;
  field.rejectUnknown({"match", "route"});
  field["match"].forEachItem([&](const Field& item) {
    if (tls) {
      item.rejectUnknown({"sniHosts", "destinationSubnets", "port", "sourceLabels", "gateways",
                          "sourceNamespace"});
      item["sniHosts"].require();
    } else {
      item.rejectUnknown({"destinationSubnets", "port", "sourceLabels", "gateways",
                          "sourceNamespace", "sourceSubnet"});
    }
    L4Match match;
    match.destination_subnets = readIpBlocks(item["destinationSubnets"]);
    match.sni_hosts = item["sniHosts"].stringList();
    match.port = item["port"].port();
    match.source_labels = item["sourceLabels"].stringMap();
    match.source_namespace = item["sourceNamespace"].string();
    match.gateways = item["gateways"].stringList();
    route.match.push_back(std::move(match));
  });
  field["route"].forEachItem([&](const Field& item) {
    item.rejectUnknown({"destination", "weight"});
    route.route.push_back(L4RouteDestination{readDestination(item["destination"]),
                                             readCount(item["weight"], INT32_MAX)});
  });
  return route;
}

std::vector<std::string> readHosts(const Field& field) {
  std::vector<std::string> hosts;
  field.forEachItem([&](const Field& item) { hosts.push_back(readRequired(item)); });
  return hosts;
}

}  // namespace

Object decodeVirtualService(const Field& object, ObjectMeta meta) {
  VirtualService service;
  service.meta = std::move(meta);
  const Field spec = object["spec"];
  spec.require();
  spec.rejectUnknown({"hosts", "gateways", "http", "tls", "tcp", "exportTo"});
  // No hosts makes a delegate, valid in Istio and only reachable through another
  // VirtualService's `delegate`: stored as written, never matched by host.
  service.hosts = readHosts(spec["hosts"]);
  service.gateways = spec["gateways"].stringList();
  spec["http"].forEachItem([&](const Field& item) { service.http.push_back(readHttpRoute(item)); });
  spec["tcp"].forEachItem(
      [&](const Field& item) { service.tcp.push_back(readL4Route(item, false)); });
  spec["tls"].forEachItem(
      [&](const Field& item) { service.tls.push_back(readL4Route(item, true)); });
  service.export_to = spec["exportTo"].stringList();
  return service;
}

}  // namespace sluice::config::detail
