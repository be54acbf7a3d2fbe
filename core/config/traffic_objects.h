// Typed L7 configuration for the waypoint: Istio's VirtualService, DestinationRule and
// AuthorizationPolicy, and the Gateway API's Gateway and HTTPRoute (included by objects.h).
//
// These record what the document says, checked but not interpreted: defaults the API itself
// defines are filled in (an HTTPRoute rule without matches matches prefix "/"), while the
// meaning of a combination (what an ALLOW policy without rules admits, how weights split) is
// left to the waypoint. Optional fields the API leaves unset stay std::nullopt, so "unset"
// and "set to the default" remain distinguishable where Istio treats them differently.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/config/object_meta.h"

namespace sluice::config {

// Istio and Gateway API durations ("5s", "100ms", "1.5s", "1m", "1h", "1h30m", "0") at
// millisecond resolution, the finest either API promises to honour.
using Duration = std::chrono::milliseconds;

// nullopt for malformed text, a negative value or one that is not a whole number of
// milliseconds.
std::optional<Duration> parseDuration(std::string_view text);
// The shortest of "5s" or "1500ms" that reads back to the same value.
std::string formatDuration(Duration duration);

// Istio's StringMatch. kPresent is the empty match `{}` Istio allows for headers and query
// parameters: the name must be present, with any value.
struct StringMatch {
  enum class Type { kExact, kPrefix, kRegex, kPresent };
  Type type = Type::kExact;
  std::string value;  // a regex is only checked to be non-empty; the waypoint compiles it
};
std::string_view toString(StringMatch::Type type);  // "exact", "prefix", "regex", "present"

// Header manipulation, in Istio's shape (the Gateway API header modifiers use it too).
struct HeaderOperations {
  std::map<std::string, std::string> set;  // replaces any existing value
  std::map<std::string, std::string> add;  // appends
  std::vector<std::string> remove;
};

struct Headers {
  HeaderOperations request;
  HeaderOperations response;
};

// ---- VirtualService (networking.istio.io) ------------------------------------------------

struct Destination {
  std::string host;    // required; a short name is relative to the VirtualService's namespace
  std::string subset;  // a DestinationRule subset name; empty for none
  std::optional<uint16_t> port;
};

struct HttpRouteDestination {
  Destination destination;
  // Relative share; nullopt when unset (Istio: 100 for a lone destination). Never negative.
  std::optional<uint32_t> weight;
  Headers headers;
};

struct HttpMatchRequest {
  std::string name;
  std::optional<StringMatch> uri;
  std::optional<StringMatch> scheme;
  std::optional<StringMatch> method;
  std::optional<StringMatch> authority;
  std::map<std::string, StringMatch> headers;
  std::map<std::string, StringMatch> query_params;
  std::map<std::string, StringMatch> without_headers;
  std::optional<uint16_t> port;
  std::map<std::string, std::string> source_labels;
  std::string source_namespace;
  std::vector<std::string> gateways;
  bool ignore_uri_case = false;
};

struct HttpRedirect {
  std::string uri;
  std::string authority;
  std::string scheme;
  std::optional<uint16_t> port;
  std::string derive_port;       // FROM_PROTOCOL_DEFAULT or FROM_REQUEST_PORT, empty when unset
  uint16_t redirect_code = 301;  // 300..399
};

struct HttpRewrite {
  std::string uri;
  std::string authority;
  // uriRegexRewrite; both empty when unset.
  std::string uri_regex_match;
  std::string uri_regex_rewrite;
};

// retryOn split into its tokens: named conditions (validated against Envoy's and gRPC's
// names) and plain status codes.
struct HttpRetry {
  // 0 disables retries. Unset reads as 0 too: Istio's field has no presence, so an unset
  // `attempts` under `retries` also disables them.
  uint32_t attempts = 0;
  std::optional<Duration> per_try_timeout;
  std::vector<std::string> retry_on;        // "5xx", "gateway-error", ... in document order
  std::vector<uint16_t> retry_on_statuses;  // "503" and friends, 200..599
  std::optional<bool> retry_remote_localities;
  std::optional<bool> retry_ignore_previous_hosts;
  std::optional<Duration> backoff;
};

struct FaultDelay {
  Duration fixed_delay{0};
  std::optional<double> percentage;  // 0..100; the deprecated integer `percent` lands here too
};

struct FaultAbort {
  std::optional<uint16_t> http_status;  // 200..599; exactly one of these three is set
  std::string grpc_status;              // e.g. "UNAVAILABLE"
  std::string http2_error;
  std::optional<double> percentage;
};

struct HttpFault {
  std::optional<FaultDelay> delay;
  std::optional<FaultAbort> abort;
};

struct HttpMirror {
  Destination destination;
  std::optional<double> percentage;
};

struct HttpDirectResponse {
  uint16_t status = 200;
  std::string body;  // body.string; empty when unset
};

// One entry of http[].
struct VirtualServiceRoute {
  std::string name;
  std::vector<HttpMatchRequest> match;  // empty matches every request
  std::vector<HttpRouteDestination> route;
  std::optional<HttpRedirect> redirect;
  std::optional<HttpDirectResponse> direct_response;
  std::optional<HttpRewrite> rewrite;
  std::optional<Duration> timeout;  // route total, covering all attempts; 0s disables
  std::optional<HttpRetry> retries;
  std::optional<HttpFault> fault;
  Headers headers;
  // Accepted, not acted on yet.
  std::vector<HttpMirror> mirrors;  // mirror + mirrorPercentage, or mirrors[]
  bool has_cors_policy = false;
};

// tcp[] and tls[] routes: stored for completeness; the waypoint serves HTTP.
struct L4Match {
  std::vector<std::string> destination_subnets;
  std::vector<std::string> sni_hosts;  // tls only
  std::optional<uint16_t> port;
  std::map<std::string, std::string> source_labels;
  std::string source_namespace;
  std::vector<std::string> gateways;
};

struct L4RouteDestination {
  Destination destination;
  std::optional<uint32_t> weight;
};

struct L4Route {
  std::vector<L4Match> match;
  std::vector<L4RouteDestination> route;
};

struct VirtualService {
  ObjectMeta meta;
  std::vector<std::string> hosts;
  std::vector<std::string> gateways;
  std::vector<VirtualServiceRoute> http;
  std::vector<L4Route> tcp;
  std::vector<L4Route> tls;
  std::vector<std::string> export_to;
};

// ---- DestinationRule (networking.istio.io) -----------------------------------------------

enum class LoadBalancer { kUnspecified, kRoundRobin, kLeastRequest, kRandom, kPassthrough };
std::string_view toString(LoadBalancer simple);  // "ROUND_ROBIN", ...
// Also reads LEAST_CONN, Istio's deprecated name for LEAST_REQUEST.
std::optional<LoadBalancer> parseLoadBalancer(std::string_view text);

struct ConsistentHash {
  enum class Key { kHeader, kCookie, kSourceIp, kQueryParameter };
  Key key = Key::kSourceIp;
  std::string name;  // header, cookie or query parameter name; empty for kSourceIp
  std::string cookie_path;
  std::optional<Duration> cookie_ttl;
};

struct LoadBalancerSettings {
  // Exactly one of these is set (Istio's oneof).
  std::optional<LoadBalancer> simple;
  std::optional<ConsistentHash> consistent_hash;
  std::optional<Duration> warmup;  // accepted, not acted on
};

struct ConnectionPool {
  std::optional<uint32_t> max_connections;
  std::optional<Duration> connect_timeout;
  std::optional<Duration> tcp_idle_timeout;
  std::optional<Duration> max_connection_duration;
  std::optional<uint32_t> http1_max_pending_requests;
  std::optional<uint32_t> http2_max_requests;
  std::optional<uint32_t> max_requests_per_connection;
  std::optional<uint32_t> max_retries;
  std::optional<Duration> idle_timeout;
  std::optional<uint32_t> max_concurrent_streams;
  std::string h2_upgrade_policy;  // DEFAULT, DO_NOT_UPGRADE or UPGRADE; empty when unset
  std::optional<bool> use_client_protocol;
};

struct OutlierDetection {
  std::optional<uint32_t> consecutive_5xx_errors;
  std::optional<uint32_t> consecutive_gateway_errors;
  std::optional<uint32_t> consecutive_local_origin_failures;
  std::optional<bool> split_external_local_origin_errors;
  std::optional<Duration> interval;              // > 0 when set
  std::optional<Duration> base_ejection_time;    // > 0 when set
  std::optional<uint32_t> max_ejection_percent;  // 0..100
  std::optional<uint32_t> min_health_percent;    // 0..100
};

struct TrafficPolicy {
  std::optional<LoadBalancerSettings> load_balancer;
  std::optional<ConnectionPool> connection_pool;
  std::optional<OutlierDetection> outlier_detection;
  std::string tls_mode;  // DISABLE, SIMPLE, MUTUAL, ISTIO_MUTUAL; the rest of tls is accepted
};

struct PortTrafficPolicy {
  uint16_t port = 0;
  TrafficPolicy policy;
};

struct DestinationRuleSubset {
  std::string name;
  std::map<std::string, std::string> labels;
  std::optional<TrafficPolicy> traffic_policy;
  std::vector<PortTrafficPolicy> port_level_settings;  // of the subset's trafficPolicy
};

struct DestinationRule {
  ObjectMeta meta;
  std::string host;  // a short name is relative to the rule's namespace; may start with "*."
  std::optional<TrafficPolicy> traffic_policy;
  std::vector<PortTrafficPolicy> port_level_settings;  // of trafficPolicy
  std::vector<DestinationRuleSubset> subsets;
  std::optional<std::map<std::string, std::string>> workload_selector;
  std::vector<std::string> export_to;
};

// ---- AuthorizationPolicy (security.istio.io) ---------------------------------------------

enum class AuthorizationAction { kAllow, kDeny, kAudit, kCustom };
std::string_view toString(AuthorizationAction action);  // "ALLOW", ...
std::optional<AuthorizationAction> parseAuthorizationAction(std::string_view text);

struct PolicySource {
  std::vector<std::string> principals, not_principals;
  std::vector<std::string> request_principals, not_request_principals;
  std::vector<std::string> namespaces, not_namespaces;
  std::vector<std::string> service_accounts, not_service_accounts;
  std::vector<std::string> ip_blocks, not_ip_blocks;  // addresses or CIDRs, as written
  std::vector<std::string> remote_ip_blocks, not_remote_ip_blocks;
};

struct PolicyOperation {
  std::vector<std::string> hosts, not_hosts;
  std::vector<uint16_t> ports, not_ports;
  std::vector<std::string> methods, not_methods;
  std::vector<std::string> paths, not_paths;
};

struct PolicyCondition {
  std::string key;
  std::vector<std::string> values, not_values;
};

struct AuthorizationRule {
  std::vector<PolicySource> from;
  std::vector<PolicyOperation> to;
  std::vector<PolicyCondition> when;
};

// A reference to the object a policy or route attaches to (targetRef, parentRef).
struct ObjectReference {
  std::string group;
  std::string kind;
  std::string name;
  std::string ns;  // empty: the referring object's namespace
  std::string section_name;
  std::optional<uint16_t> port;
};

struct AuthorizationPolicy {
  ObjectMeta meta;
  std::optional<std::map<std::string, std::string>> selector;
  std::vector<ObjectReference> target_refs;  // targetRef and targetRefs together
  AuthorizationAction action = AuthorizationAction::kAllow;
  std::string provider;  // CUSTOM only
  // As written: an absent `rules` and `rules: []` are the same; Istio reads an ALLOW policy
  // without rules as matching nothing and one with an empty rule `{}` as matching everything.
  std::vector<AuthorizationRule> rules;
};

// ---- Gateway API (gateway.networking.k8s.io) ---------------------------------------------

// The class of the Gateways that are Sluice waypoints.
inline constexpr std::string_view kWaypointGatewayClass = "sluice-waypoint";
inline constexpr std::string_view kGatewayApiGroup = "gateway.networking.k8s.io";

struct GatewayListener {
  std::string name;
  std::string hostname;  // empty: any
  uint16_t port = 0;
  std::string protocol;  // HTTP, HTTPS, TLS, TCP, UDP, HBONE or domain-prefixed
  // allowedRoutes.namespaces.from: All, Same (the default) or Selector.
  std::string allowed_namespaces_from = "Same";
  std::map<std::string, std::string> allowed_namespaces_selector;  // matchLabels
  std::vector<std::string> allowed_kinds;                          // allowedRoutes.kinds[].kind
};

struct Gateway {
  ObjectMeta meta;
  std::string gateway_class_name;
  std::vector<GatewayListener> listeners;
  std::vector<std::string> addresses;  // addresses[].value
};

// Gateway API string matches: PathPrefix only for paths.
enum class GatewayMatchType { kExact, kPathPrefix, kRegularExpression };
std::string_view toString(GatewayMatchType type);  // "Exact", "PathPrefix", ...

struct GatewayHeaderMatch {
  GatewayMatchType type = GatewayMatchType::kExact;
  std::string name;
  std::string value;
};

struct HttpRouteMatch {
  GatewayMatchType path_type = GatewayMatchType::kPathPrefix;
  std::string path = "/";
  std::vector<GatewayHeaderMatch> headers;
  std::vector<GatewayHeaderMatch> query_params;
  std::string method;  // empty: any
};

// A backendRef (or a mirror's), with the spec's defaults (core group, kind Service).
struct BackendRef {
  std::string group;
  std::string kind = "Service";
  std::string name;
  std::string ns;  // empty: the route's namespace
  std::optional<uint16_t> port;
};

struct HttpPathModifier {
  std::string type;  // ReplaceFullPath or ReplacePrefixMatch
  std::string value;
};

struct HttpRouteFilter {
  enum class Type {
    kRequestHeaderModifier,
    kResponseHeaderModifier,
    kRequestRedirect,
    kUrlRewrite,
    kRequestMirror,
    kExtensionRef
  };
  Type type = Type::kRequestHeaderModifier;
  HeaderOperations headers;  // the header modifiers
  // RequestRedirect and URLRewrite.
  std::string scheme;
  std::string hostname;
  std::optional<HttpPathModifier> path;
  std::optional<uint16_t> port;
  uint16_t status_code = 302;
  // RequestMirror.
  BackendRef mirror;
  std::optional<double> mirror_percent;  // percent, or fraction converted to a percentage
  // ExtensionRef.
  ObjectReference extension;
};
std::string_view toString(HttpRouteFilter::Type type);  // "RequestHeaderModifier", ...

struct HttpBackendRef {
  BackendRef ref;
  uint32_t weight = 1;  // 0..1000000
  std::vector<HttpRouteFilter> filters;
};

struct HttpRouteRule {
  std::string name;
  std::vector<HttpRouteMatch> matches;  // never empty: the spec's default is prefix "/"
  std::vector<HttpRouteFilter> filters;
  std::vector<HttpBackendRef> backend_refs;
  std::optional<Duration> request_timeout;
  std::optional<Duration> backend_request_timeout;
};

struct HTTPRoute {
  ObjectMeta meta;
  std::vector<ObjectReference> parent_refs;  // group and kind defaulted to a Gateway
  std::vector<std::string> hostnames;
  std::vector<HttpRouteRule> rules;
};

}  // namespace sluice::config
