// Decoder for networking.istio.io DestinationRule (strict).
#include <set>
#include <utility>

#include "core/config/kinds.h"
#include "core/config/traffic_fields.h"

namespace sluice::config::detail {
namespace {

std::optional<bool> readOptionalBool(const Field& field) {
  if (!field.present()) return std::nullopt;
  return field.boolean(false);
}

ConsistentHash readConsistentHash(const Field& field) {
  ConsistentHash hash;
  field.rejectUnknown({"httpHeaderName", "httpCookie", "useSourceIp", "httpQueryParameterName",
                       "ringHash", "maglev", "minimumRingSize"});
  int keys = 0;
  if (const Field header = field["httpHeaderName"]; header.present()) {
    ++keys;
    hash.key = ConsistentHash::Key::kHeader;
    hash.name = readRequired(header);
  }
  if (const Field cookie = field["httpCookie"]; cookie.present()) {
    ++keys;
    cookie.rejectUnknown({"name", "path", "ttl", "attributes"});
    hash.key = ConsistentHash::Key::kCookie;
    hash.name = readRequired(cookie["name"]);
    hash.cookie_path = cookie["path"].string();
    hash.cookie_ttl = readDuration(cookie["ttl"]);
  }
  if (const Field source_ip = field["useSourceIp"]; source_ip.present()) {
    ++keys;
    hash.key = ConsistentHash::Key::kSourceIp;
    if (!source_ip.boolean(false)) source_ip.fail("must be true when set");
  }
  if (const Field query = field["httpQueryParameterName"]; query.present()) {
    ++keys;
    hash.key = ConsistentHash::Key::kQueryParameter;
    hash.name = readRequired(query);
  }
  if (field.isMap() && keys != 1)
    field.fail(
        "must set exactly one of httpHeaderName, httpCookie, useSourceIp, "
        "httpQueryParameterName");
  // The hash ring's shape is Envoy tuning: checked for type, not used.
  field["ringHash"].rejectUnknown({"minimumRingSize"});
  readCount(field["ringHash"]["minimumRingSize"]);
  field["maglev"].rejectUnknown({"tableSize"});
  readCount(field["maglev"]["tableSize"]);
  readCount(field["minimumRingSize"]);
  return hash;
}

LoadBalancerSettings readLoadBalancer(const Field& field) {
  LoadBalancerSettings settings;
  field.rejectUnknown(
      {"simple", "consistentHash", "localityLbSetting", "warmupDurationSecs", "warmup"});
  if (const Field simple = field["simple"]; simple.present()) {
    std::string text = simple.string();
    settings.simple = parseLoadBalancer(text);
    if (!settings.simple)
      simple.fail(
          "must be one of UNSPECIFIED, ROUND_ROBIN, LEAST_REQUEST, RANDOM, PASSTHROUGH "
          "(or the deprecated LEAST_CONN), got " +
          quoted(text));
  }
  if (field["consistentHash"].present()) {
    settings.consistent_hash = readConsistentHash(field["consistentHash"]);
    if (field["simple"].present())
      field["consistentHash"].fail("cannot be combined with simple (pick one load balancer)");
  }
  field["localityLbSetting"].rejectUnknown(
      {"distribute", "failover", "failoverPriority", "enabled"});
  settings.warmup = readDuration(field["warmupDurationSecs"]);
  const Field warmup = field["warmup"];
  warmup.rejectUnknown({"duration", "minimumPercent", "aggression"});
  if (warmup.present()) settings.warmup = readDuration(warmup["duration"]);
  return settings;
}

ConnectionPool readConnectionPool(const Field& field) {
  ConnectionPool pool;
  field.rejectUnknown({"tcp", "http"});
  const Field tcp = field["tcp"];
  tcp.rejectUnknown(
      {"maxConnections", "connectTimeout", "tcpKeepalive", "maxConnectionDuration", "idleTimeout"});
  pool.max_connections = readCount(tcp["maxConnections"], INT32_MAX);
  pool.connect_timeout = readDuration(tcp["connectTimeout"], /*positive=*/true);
  pool.tcp_idle_timeout = readDuration(tcp["idleTimeout"]);
  pool.max_connection_duration = readDuration(tcp["maxConnectionDuration"]);
  const Field keepalive = tcp["tcpKeepalive"];
  keepalive.rejectUnknown({"probes", "time", "interval"});
  readCount(keepalive["probes"]);
  readDuration(keepalive["time"]);
  readDuration(keepalive["interval"]);

  const Field http = field["http"];
  http.rejectUnknown({"http1MaxPendingRequests", "http2MaxRequests", "maxRequestsPerConnection",
                      "maxRetries", "idleTimeout", "h2UpgradePolicy", "useClientProtocol",
                      "maxConcurrentStreams"});
  pool.http1_max_pending_requests = readCount(http["http1MaxPendingRequests"], INT32_MAX);
  pool.http2_max_requests = readCount(http["http2MaxRequests"], INT32_MAX);
  pool.max_requests_per_connection = readCount(http["maxRequestsPerConnection"], INT32_MAX);
  pool.max_retries = readCount(http["maxRetries"], INT32_MAX);
  pool.idle_timeout = readDuration(http["idleTimeout"]);
  pool.max_concurrent_streams = readCount(http["maxConcurrentStreams"], INT32_MAX);
  pool.h2_upgrade_policy =
      readEnum(http["h2UpgradePolicy"], {"DEFAULT", "DO_NOT_UPGRADE", "UPGRADE"});
  pool.use_client_protocol = readOptionalBool(http["useClientProtocol"]);
  return pool;
}

OutlierDetection readOutlierDetection(const Field& field) {
  OutlierDetection detection;
  field.rejectUnknown({"consecutiveErrors", "splitExternalLocalOriginErrors",
                       "consecutiveLocalOriginFailures", "consecutiveGatewayErrors",
                       "consecutive5xxErrors", "interval", "baseEjectionTime", "maxEjectionPercent",
                       "minHealthPercent"});
  detection.consecutive_5xx_errors = readCount(field["consecutive5xxErrors"]);
  // consecutiveErrors is the deprecated spelling of consecutive5xxErrors.
  if (const Field old = field["consecutiveErrors"]; old.present()) {
    if (detection.consecutive_5xx_errors) old.fail("cannot be combined with consecutive5xxErrors");
    detection.consecutive_5xx_errors = readCount(old, INT32_MAX);
  }
  detection.consecutive_gateway_errors = readCount(field["consecutiveGatewayErrors"]);
  detection.consecutive_local_origin_failures = readCount(field["consecutiveLocalOriginFailures"]);
  detection.split_external_local_origin_errors =
      readOptionalBool(field["splitExternalLocalOriginErrors"]);
  detection.interval = readDuration(field["interval"], /*positive=*/true);
  detection.base_ejection_time = readDuration(field["baseEjectionTime"], /*positive=*/true);
  detection.max_ejection_percent = readCount(field["maxEjectionPercent"], 100);
  detection.min_health_percent = readCount(field["minHealthPercent"], 100);
  return detection;
}

std::string readTlsMode(const Field& field) {
  field.rejectUnknown({"mode", "clientCertificate", "privateKey", "caCertificates",
                       "credentialName", "subjectAltNames", "sni", "insecureSkipVerify", "caCrl"});
  return readEnum(field["mode"], {"DISABLE", "SIMPLE", "MUTUAL", "ISTIO_MUTUAL"});
}

// The parts of a TrafficPolicy shared by the policy and its portLevelSettings.
TrafficPolicy readPolicyParts(const Field& field) {
  TrafficPolicy policy;
  if (field["loadBalancer"].present())
    policy.load_balancer = readLoadBalancer(field["loadBalancer"]);
  if (field["connectionPool"].present())
    policy.connection_pool = readConnectionPool(field["connectionPool"]);
  if (field["outlierDetection"].present())
    policy.outlier_detection = readOutlierDetection(field["outlierDetection"]);
  policy.tls_mode = readTlsMode(field["tls"]);
  return policy;
}

// A trafficPolicy and its portLevelSettings, which Sluice keeps side by side.
TrafficPolicy readTrafficPolicy(const Field& field, std::vector<PortTrafficPolicy>& ports) {
  field.rejectUnknown({"loadBalancer", "connectionPool", "outlierDetection", "tls",
                       "portLevelSettings", "tunnel", "proxyProtocol"});
  field["tunnel"].rejectUnknown({"protocol", "targetHost", "targetPort"});
  field["proxyProtocol"].rejectUnknown({"version"});
  std::set<uint16_t> seen;
  field["portLevelSettings"].forEachItem([&](const Field& item) {
    item.rejectUnknown({"port", "loadBalancer", "connectionPool", "outlierDetection", "tls"});
    const Field port = item["port"];
    port.require();
    port.rejectUnknown({"number"});
    port["number"].require();
    PortTrafficPolicy setting;
    setting.port = port["number"].port().value_or(0);
    if (setting.port != 0 && !seen.insert(setting.port).second)
      port["number"].fail("duplicate port " + std::to_string(setting.port));
    setting.policy = readPolicyParts(item);
    ports.push_back(std::move(setting));
  });
  return readPolicyParts(field);
}

}  // namespace

Object decodeDestinationRule(const Field& object, ObjectMeta meta) {
  DestinationRule rule;
  rule.meta = std::move(meta);
  const Field spec = object["spec"];
  spec.require();
  spec.rejectUnknown({"host", "trafficPolicy", "subsets", "exportTo", "workloadSelector"});
  rule.host = readRequired(spec["host"]);
  if (spec["trafficPolicy"].present())
    rule.traffic_policy = readTrafficPolicy(spec["trafficPolicy"], rule.port_level_settings);

  std::set<std::string> names;
  spec["subsets"].forEachItem([&](const Field& item) {
    item.rejectUnknown({"name", "labels", "trafficPolicy"});
    DestinationRuleSubset subset;
    const Field name = item["name"];
    subset.name = readRequired(name);
    if (!subset.name.empty() && !names.insert(subset.name).second)
      name.fail("duplicate subset " + quoted(subset.name));
    subset.labels = item["labels"].stringMap();
    if (item["trafficPolicy"].present())
      subset.traffic_policy = readTrafficPolicy(item["trafficPolicy"], subset.port_level_settings);
    rule.subsets.push_back(std::move(subset));
  });
  rule.workload_selector = readSelector(spec["workloadSelector"]);
  rule.export_to = spec["exportTo"].stringList();
  return rule;
}

}  // namespace sluice::config::detail
