// The L7 kinds in the configuration dump: what the waypoint will act on, spelt as in the
// documents (camelCase fields, enumerations by name, durations as "5s"), with the defaults
// the decoders filled in made visible.
#include <charconv>
#include <cmath>

#include "core/config/json_writer.h"
#include "core/config/snapshot.h"

namespace sluice::config::detail {

JsonWriter& JsonWriter::number(double value) {
  if (!std::isfinite(value)) return raw("null");  // never produced by the decoders
  char buffer[32];
  auto [end, error] = std::to_chars(buffer, buffer + sizeof(buffer), value);
  return raw(error == std::errc() ? std::string_view(buffer, end - buffer) : "null");
}

namespace {

void writeDuration(JsonWriter& json, std::string_view name, const std::optional<Duration>& value) {
  if (value) json.key(name).value(formatDuration(*value));
}

void writeCount(JsonWriter& json, std::string_view name, const std::optional<uint32_t>& value) {
  if (value) json.key(name).value(uint64_t{*value});
}

void writePercentage(JsonWriter& json, std::string_view name, const std::optional<double>& value) {
  if (value) json.key(name).number(*value);
}

void writeBool(JsonWriter& json, std::string_view name, const std::optional<bool>& value) {
  if (value) json.key(name).value(*value);
}

void writeStringMatch(JsonWriter& json, const StringMatch& match) {
  json.beginObject();
  if (match.type != StringMatch::Type::kPresent) json.key(toString(match.type)).value(match.value);
  json.endObject();
}

void writeOptionalMatch(JsonWriter& json, std::string_view name,
                        const std::optional<StringMatch>& match) {
  if (!match) return;
  json.key(name);
  writeStringMatch(json, *match);
}

void writeMatchMap(JsonWriter& json, std::string_view name,
                   const std::map<std::string, StringMatch>& matches) {
  if (matches.empty()) return;
  json.key(name).beginObject();
  for (const auto& [key, match] : matches) {
    json.key(key);
    writeStringMatch(json, match);
  }
  json.endObject();
}

void writeHeaderOperations(JsonWriter& json, const HeaderOperations& operations) {
  json.beginObject().key("set").stringMap(operations.set).key("add").stringMap(operations.add);
  json.key("remove").stringList(operations.remove).endObject();
}

void writeHeaders(JsonWriter& json, const Headers& headers) {
  json.key("headers").beginObject().key("request");
  writeHeaderOperations(json, headers.request);
  json.key("response");
  writeHeaderOperations(json, headers.response);
  json.endObject();
}

void writeDestination(JsonWriter& json, const Destination& destination) {
  json.beginObject().key("host").value(destination.host);
  if (!destination.subset.empty()) json.key("subset").value(destination.subset);
  if (destination.port) json.key("port").value(uint64_t{*destination.port});
  json.endObject();
}

void writeMatchRequest(JsonWriter& json, const HttpMatchRequest& match) {
  json.beginObject();
  if (!match.name.empty()) json.key("name").value(match.name);
  writeOptionalMatch(json, "uri", match.uri);
  writeOptionalMatch(json, "scheme", match.scheme);
  writeOptionalMatch(json, "method", match.method);
  writeOptionalMatch(json, "authority", match.authority);
  writeMatchMap(json, "headers", match.headers);
  writeMatchMap(json, "queryParams", match.query_params);
  writeMatchMap(json, "withoutHeaders", match.without_headers);
  if (match.port) json.key("port").value(uint64_t{*match.port});
  if (!match.source_labels.empty()) json.key("sourceLabels").stringMap(match.source_labels);
  if (!match.source_namespace.empty()) json.key("sourceNamespace").value(match.source_namespace);
  if (!match.gateways.empty()) json.key("gateways").stringList(match.gateways);
  json.key("ignoreUriCase").value(match.ignore_uri_case);
  json.endObject();
}

void writeRetries(JsonWriter& json, const HttpRetry& retry) {
  json.key("retries").beginObject().key("attempts").value(uint64_t{retry.attempts});
  writeDuration(json, "perTryTimeout", retry.per_try_timeout);
  json.key("retryOn").stringList(retry.retry_on);
  json.key("retryOnStatusCodes").beginArray();
  for (uint16_t status : retry.retry_on_statuses) json.value(uint64_t{status});
  json.endArray();
  writeBool(json, "retryRemoteLocalities", retry.retry_remote_localities);
  writeBool(json, "retryIgnorePreviousHosts", retry.retry_ignore_previous_hosts);
  writeDuration(json, "backoff", retry.backoff);
  json.endObject();
}

void writeFault(JsonWriter& json, const HttpFault& fault) {
  json.key("fault").beginObject();
  if (fault.delay) {
    json.key("delay")
        .beginObject()
        .key("fixedDelay")
        .value(formatDuration(fault.delay->fixed_delay));
    writePercentage(json, "percentage", fault.delay->percentage);
    json.endObject();
  }
  if (fault.abort) {
    json.key("abort").beginObject();
    if (fault.abort->http_status) json.key("httpStatus").value(uint64_t{*fault.abort->http_status});
    if (!fault.abort->grpc_status.empty()) json.key("grpcStatus").value(fault.abort->grpc_status);
    if (!fault.abort->http2_error.empty()) json.key("http2Error").value(fault.abort->http2_error);
    writePercentage(json, "percentage", fault.abort->percentage);
    json.endObject();
  }
  json.endObject();
}

void writeHttpRoute(JsonWriter& json, const VirtualServiceRoute& route) {
  json.beginObject();
  if (!route.name.empty()) json.key("name").value(route.name);
  json.key("match").beginArray();
  for (const HttpMatchRequest& match : route.match) writeMatchRequest(json, match);
  json.endArray();
  json.key("route").beginArray();
  for (const HttpRouteDestination& destination : route.route) {
    json.beginObject().key("destination");
    writeDestination(json, destination.destination);
    writeCount(json, "weight", destination.weight);
    writeHeaders(json, destination.headers);
    json.endObject();
  }
  json.endArray();
  if (const auto& redirect = route.redirect) {
    json.key("redirect").beginObject().key("uri").value(redirect->uri);
    json.key("authority").value(redirect->authority).key("scheme").value(redirect->scheme);
    if (redirect->port) json.key("port").value(uint64_t{*redirect->port});
    if (!redirect->derive_port.empty()) json.key("derivePort").value(redirect->derive_port);
    json.key("redirectCode").value(uint64_t{redirect->redirect_code}).endObject();
  }
  if (const auto& response = route.direct_response) {
    json.key("directResponse").beginObject().key("status").value(uint64_t{response->status});
    json.key("body").value(response->body).endObject();
  }
  if (const auto& rewrite = route.rewrite) {
    json.key("rewrite").beginObject().key("uri").value(rewrite->uri);
    json.key("authority").value(rewrite->authority);
    if (!rewrite->uri_regex_match.empty()) {
      json.key("uriRegexRewrite").beginObject().key("match").value(rewrite->uri_regex_match);
      json.key("rewrite").value(rewrite->uri_regex_rewrite).endObject();
    }
    json.endObject();
  }
  writeDuration(json, "timeout", route.timeout);
  if (route.retries) writeRetries(json, *route.retries);
  if (route.fault) writeFault(json, *route.fault);
  writeHeaders(json, route.headers);
  json.key("mirrors").beginArray();
  for (const HttpMirror& mirror : route.mirrors) {
    json.beginObject().key("destination");
    writeDestination(json, mirror.destination);
    writePercentage(json, "percentage", mirror.percentage);
    json.endObject();
  }
  json.endArray();
  json.key("corsPolicy").value(route.has_cors_policy);
  json.endObject();
}

void writeL4Routes(JsonWriter& json, std::string_view name, const std::vector<L4Route>& routes) {
  json.key(name).beginArray();
  for (const L4Route& route : routes) {
    json.beginObject().key("match").beginArray();
    for (const L4Match& match : route.match) {
      json.beginObject().key("destinationSubnets").stringList(match.destination_subnets);
      if (!match.sni_hosts.empty()) json.key("sniHosts").stringList(match.sni_hosts);
      if (match.port) json.key("port").value(uint64_t{*match.port});
      json.key("sourceLabels").stringMap(match.source_labels);
      if (!match.source_namespace.empty())
        json.key("sourceNamespace").value(match.source_namespace);
      json.key("gateways").stringList(match.gateways).endObject();
    }
    json.endArray().key("route").beginArray();
    for (const L4RouteDestination& destination : route.route) {
      json.beginObject().key("destination");
      writeDestination(json, destination.destination);
      writeCount(json, "weight", destination.weight);
      json.endObject();
    }
    json.endArray().endObject();
  }
  json.endArray();
}

void writeVirtualService(JsonWriter& json, const VirtualService& service) {
  json.beginObject();
  writeMeta(json, service.meta);
  json.key("hosts").stringList(service.hosts).key("gateways").stringList(service.gateways);
  json.key("exportTo").stringList(service.export_to);
  json.key("http").beginArray();
  for (const VirtualServiceRoute& route : service.http) writeHttpRoute(json, route);
  json.endArray();
  writeL4Routes(json, "tcp", service.tcp);
  writeL4Routes(json, "tls", service.tls);
  json.endObject();
}

void writePolicyParts(JsonWriter& json, const TrafficPolicy& policy) {
  if (const auto& lb = policy.load_balancer) {
    json.key("loadBalancer").beginObject();
    if (lb->simple) json.key("simple").value(toString(*lb->simple));
    if (const auto& hash = lb->consistent_hash) {
      json.key("consistentHash").beginObject();
      switch (hash->key) {
        case ConsistentHash::Key::kHeader:
          json.key("httpHeaderName").value(hash->name);
          break;
        case ConsistentHash::Key::kCookie:
          json.key("httpCookie").beginObject().key("name").value(hash->name);
          json.key("path").value(hash->cookie_path);
          writeDuration(json, "ttl", hash->cookie_ttl);
          json.endObject();
          break;
        case ConsistentHash::Key::kSourceIp:
          json.key("useSourceIp").value(true);
          break;
        case ConsistentHash::Key::kQueryParameter:
          json.key("httpQueryParameterName").value(hash->name);
          break;
      }
      json.endObject();
    }
    writeDuration(json, "warmup", lb->warmup);
    json.endObject();
  }
  if (const auto& pool = policy.connection_pool) {
    json.key("connectionPool").beginObject().key("tcp").beginObject();
    writeCount(json, "maxConnections", pool->max_connections);
    writeDuration(json, "connectTimeout", pool->connect_timeout);
    writeDuration(json, "idleTimeout", pool->tcp_idle_timeout);
    writeDuration(json, "maxConnectionDuration", pool->max_connection_duration);
    json.endObject().key("http").beginObject();
    writeCount(json, "http1MaxPendingRequests", pool->http1_max_pending_requests);
    writeCount(json, "http2MaxRequests", pool->http2_max_requests);
    writeCount(json, "maxRequestsPerConnection", pool->max_requests_per_connection);
    writeCount(json, "maxRetries", pool->max_retries);
    writeDuration(json, "idleTimeout", pool->idle_timeout);
    writeCount(json, "maxConcurrentStreams", pool->max_concurrent_streams);
    if (!pool->h2_upgrade_policy.empty())
      json.key("h2UpgradePolicy").value(pool->h2_upgrade_policy);
    writeBool(json, "useClientProtocol", pool->use_client_protocol);
    json.endObject().endObject();
  }
  if (const auto& outlier = policy.outlier_detection) {
    json.key("outlierDetection").beginObject();
    writeCount(json, "consecutive5xxErrors", outlier->consecutive_5xx_errors);
    writeCount(json, "consecutiveGatewayErrors", outlier->consecutive_gateway_errors);
    writeCount(json, "consecutiveLocalOriginFailures", outlier->consecutive_local_origin_failures);
    writeBool(json, "splitExternalLocalOriginErrors", outlier->split_external_local_origin_errors);
    writeDuration(json, "interval", outlier->interval);
    writeDuration(json, "baseEjectionTime", outlier->base_ejection_time);
    writeCount(json, "maxEjectionPercent", outlier->max_ejection_percent);
    writeCount(json, "minHealthPercent", outlier->min_health_percent);
    json.endObject();
  }
  if (!policy.tls_mode.empty())
    json.key("tls").beginObject().key("mode").value(policy.tls_mode).endObject();
}

void writeTrafficPolicy(JsonWriter& json, const TrafficPolicy& policy,
                        const std::vector<PortTrafficPolicy>& ports) {
  json.key("trafficPolicy").beginObject();
  writePolicyParts(json, policy);
  json.key("portLevelSettings").beginArray();
  for (const PortTrafficPolicy& port : ports) {
    json.beginObject().key("port").beginObject().key("number").value(uint64_t{port.port});
    json.endObject();
    writePolicyParts(json, port.policy);
    json.endObject();
  }
  json.endArray().endObject();
}

void writeDestinationRule(JsonWriter& json, const DestinationRule& rule) {
  json.beginObject();
  writeMeta(json, rule.meta);
  json.key("host").value(rule.host);
  if (rule.traffic_policy) writeTrafficPolicy(json, *rule.traffic_policy, rule.port_level_settings);
  json.key("subsets").beginArray();
  for (const DestinationRuleSubset& subset : rule.subsets) {
    json.beginObject().key("name").value(subset.name).key("labels").stringMap(subset.labels);
    if (subset.traffic_policy)
      writeTrafficPolicy(json, *subset.traffic_policy, subset.port_level_settings);
    json.endObject();
  }
  json.endArray();
  if (rule.workload_selector)
    json.key("workloadSelector")
        .beginObject()
        .key("matchLabels")
        .stringMap(*rule.workload_selector)
        .endObject();
  json.key("exportTo").stringList(rule.export_to);
  json.endObject();
}

void writeReference(JsonWriter& json, const ObjectReference& ref) {
  json.beginObject().key("group").value(ref.group).key("kind").value(ref.kind);
  json.key("name").value(ref.name);
  if (!ref.ns.empty()) json.key("namespace").value(ref.ns);
  if (!ref.section_name.empty()) json.key("sectionName").value(ref.section_name);
  if (ref.port) json.key("port").value(uint64_t{*ref.port});
  json.endObject();
}

void writePorts(JsonWriter& json, std::string_view name, const std::vector<uint16_t>& ports) {
  if (ports.empty()) return;
  // Strings, as Istio declares them.
  json.key(name).beginArray();
  for (uint16_t port : ports) json.value(std::to_string(port));
  json.endArray();
}

void writeList(JsonWriter& json, std::string_view name, const std::vector<std::string>& list) {
  if (!list.empty()) json.key(name).stringList(list);
}

void writeAuthorizationPolicy(JsonWriter& json, const AuthorizationPolicy& policy) {
  json.beginObject();
  writeMeta(json, policy.meta);
  if (policy.selector)
    json.key("selector").beginObject().key("matchLabels").stringMap(*policy.selector).endObject();
  json.key("targetRefs").beginArray();
  for (const ObjectReference& ref : policy.target_refs) writeReference(json, ref);
  json.endArray();
  json.key("action").value(toString(policy.action));
  if (!policy.provider.empty())
    json.key("provider").beginObject().key("name").value(policy.provider).endObject();
  json.key("rules").beginArray();
  for (const AuthorizationRule& rule : policy.rules) {
    json.beginObject().key("from").beginArray();
    for (const PolicySource& source : rule.from) {
      json.beginObject().key("source").beginObject();
      writeList(json, "principals", source.principals);
      writeList(json, "notPrincipals", source.not_principals);
      writeList(json, "requestPrincipals", source.request_principals);
      writeList(json, "notRequestPrincipals", source.not_request_principals);
      writeList(json, "namespaces", source.namespaces);
      writeList(json, "notNamespaces", source.not_namespaces);
      writeList(json, "serviceAccounts", source.service_accounts);
      writeList(json, "notServiceAccounts", source.not_service_accounts);
      writeList(json, "ipBlocks", source.ip_blocks);
      writeList(json, "notIpBlocks", source.not_ip_blocks);
      writeList(json, "remoteIpBlocks", source.remote_ip_blocks);
      writeList(json, "notRemoteIpBlocks", source.not_remote_ip_blocks);
      json.endObject().endObject();
    }
    json.endArray().key("to").beginArray();
    for (const PolicyOperation& operation : rule.to) {
      json.beginObject().key("operation").beginObject();
      writeList(json, "hosts", operation.hosts);
      writeList(json, "notHosts", operation.not_hosts);
      writePorts(json, "ports", operation.ports);
      writePorts(json, "notPorts", operation.not_ports);
      writeList(json, "methods", operation.methods);
      writeList(json, "notMethods", operation.not_methods);
      writeList(json, "paths", operation.paths);
      writeList(json, "notPaths", operation.not_paths);
      json.endObject().endObject();
    }
    json.endArray().key("when").beginArray();
    for (const PolicyCondition& condition : rule.when) {
      json.beginObject().key("key").value(condition.key);
      writeList(json, "values", condition.values);
      writeList(json, "notValues", condition.not_values);
      json.endObject();
    }
    json.endArray().endObject();
  }
  json.endArray();
  json.endObject();
}

void writeGateway(JsonWriter& json, const Gateway& gateway) {
  json.beginObject();
  writeMeta(json, gateway.meta);
  json.key("gatewayClassName").value(gateway.gateway_class_name);
  json.key("waypoint").value(gateway.gateway_class_name == kWaypointGatewayClass);
  json.key("listeners").beginArray();
  for (const GatewayListener& listener : gateway.listeners) {
    json.beginObject().key("name").value(listener.name);
    if (!listener.hostname.empty()) json.key("hostname").value(listener.hostname);
    json.key("port").value(uint64_t{listener.port}).key("protocol").value(listener.protocol);
    json.key("allowedRoutes").beginObject().key("namespaces").beginObject();
    json.key("from").value(listener.allowed_namespaces_from);
    if (!listener.allowed_namespaces_selector.empty())
      json.key("selector")
          .beginObject()
          .key("matchLabels")
          .stringMap(listener.allowed_namespaces_selector)
          .endObject();
    json.endObject().key("kinds").stringList(listener.allowed_kinds).endObject();
    json.endObject();
  }
  json.endArray();
  json.key("addresses").stringList(gateway.addresses);
  json.endObject();
}

void writeNameValueMatches(JsonWriter& json, std::string_view name,
                           const std::vector<GatewayHeaderMatch>& matches) {
  if (matches.empty()) return;
  json.key(name).beginArray();
  for (const GatewayHeaderMatch& match : matches) {
    json.beginObject().key("type").value(toString(match.type)).key("name").value(match.name);
    json.key("value").value(match.value).endObject();
  }
  json.endArray();
}

void writeBackendRef(JsonWriter& json, const BackendRef& ref) {
  json.key("group").value(ref.group).key("kind").value(ref.kind).key("name").value(ref.name);
  if (!ref.ns.empty()) json.key("namespace").value(ref.ns);
  if (ref.port) json.key("port").value(uint64_t{*ref.port});
}

void writeFilters(JsonWriter& json, const std::vector<HttpRouteFilter>& filters) {
  using Type = HttpRouteFilter::Type;
  json.key("filters").beginArray();
  for (const HttpRouteFilter& filter : filters) {
    json.beginObject().key("type").value(toString(filter.type));
    switch (filter.type) {
      case Type::kRequestHeaderModifier:
      case Type::kResponseHeaderModifier:
        json.key("headers");
        writeHeaderOperations(json, filter.headers);
        break;
      case Type::kRequestRedirect:
      case Type::kUrlRewrite:
        if (!filter.scheme.empty()) json.key("scheme").value(filter.scheme);
        if (!filter.hostname.empty()) json.key("hostname").value(filter.hostname);
        if (filter.path) {
          json.key("path").beginObject().key("type").value(filter.path->type);
          json.key("value").value(filter.path->value).endObject();
        }
        if (filter.port) json.key("port").value(uint64_t{*filter.port});
        if (filter.type == Type::kRequestRedirect)
          json.key("statusCode").value(uint64_t{filter.status_code});
        break;
      case Type::kRequestMirror:
        json.key("backendRef").beginObject();
        writeBackendRef(json, filter.mirror);
        json.endObject();
        writePercentage(json, "percent", filter.mirror_percent);
        break;
      case Type::kExtensionRef:
        json.key("extensionRef");
        writeReference(json, filter.extension);
        break;
    }
    json.endObject();
  }
  json.endArray();
}

void writeHttpRouteResource(JsonWriter& json, const HTTPRoute& route) {
  json.beginObject();
  writeMeta(json, route.meta);
  json.key("parentRefs").beginArray();
  for (const ObjectReference& ref : route.parent_refs) writeReference(json, ref);
  json.endArray();
  json.key("hostnames").stringList(route.hostnames);
  json.key("rules").beginArray();
  for (const HttpRouteRule& rule : route.rules) {
    json.beginObject();
    if (!rule.name.empty()) json.key("name").value(rule.name);
    json.key("matches").beginArray();
    for (const HttpRouteMatch& match : rule.matches) {
      json.beginObject().key("path").beginObject().key("type").value(toString(match.path_type));
      json.key("value").value(match.path).endObject();
      writeNameValueMatches(json, "headers", match.headers);
      writeNameValueMatches(json, "queryParams", match.query_params);
      if (!match.method.empty()) json.key("method").value(match.method);
      json.endObject();
    }
    json.endArray();
    writeFilters(json, rule.filters);
    json.key("backendRefs").beginArray();
    for (const HttpBackendRef& backend : rule.backend_refs) {
      json.beginObject();
      writeBackendRef(json, backend.ref);
      json.key("weight").value(uint64_t{backend.weight});
      writeFilters(json, backend.filters);
      json.endObject();
    }
    json.endArray();
    if (rule.request_timeout || rule.backend_request_timeout) {
      json.key("timeouts").beginObject();
      writeDuration(json, "request", rule.request_timeout);
      writeDuration(json, "backendRequest", rule.backend_request_timeout);
      json.endObject();
    }
    json.endObject();
  }
  json.endArray();
  json.endObject();
}

template <class T, class Write>
void writeAll(JsonWriter& json, std::string_view name, const std::vector<T>& objects, Write write) {
  json.key(name).beginArray();
  for (const T& object : objects) write(json, object);
  json.endArray();
}

}  // namespace

void writeTrafficObjects(JsonWriter& json, const Snapshot& snapshot) {
  writeAll(json, "authorizationPolicies", snapshot.authorizationPolicies(),
           writeAuthorizationPolicy);
  writeAll(json, "virtualServices", snapshot.virtualServices(), writeVirtualService);
  writeAll(json, "destinationRules", snapshot.destinationRules(), writeDestinationRule);
  writeAll(json, "gateways", snapshot.gateways(), writeGateway);
  writeAll(json, "httpRoutes", snapshot.httpRoutes(), writeHttpRouteResource);
}

}  // namespace sluice::config::detail
