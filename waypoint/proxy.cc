// The waypoint's request flow (see proxy.h): read a request, authorize, route, fault, hand it
// to the router, then metrics and the access log.
#include "waypoint/proxy.h"

#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/container/small_vector.hpp>

#include "core/h2/stream.h"
#include "core/hbone/metadata.h"
#include "core/net/authority.h"
#include "waypoint/body_pump.h"
#include "waypoint/cluster_state.h"
#include "waypoint/policy/request_target.h"
#include "waypoint/policy/weighted.h"
#include "waypoint/proxied_request.h"
#include "waypoint/router.h"
#include "waypoint/upstream_pool.h"

namespace sluice::waypoint {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using telemetry::ResponseFlag;
using telemetry::ResponseFlags;

// How long a request body the response no longer needs is read and dropped before the
// client's request is cut off.
constexpr std::chrono::milliseconds kDrainGrace{1000};

// Appends the 16 lower-case hex digits of `value` (ids are made per request: no snprintf).
void appendHex(std::string& out, uint64_t value) {
  static constexpr char kDigits[] = "0123456789abcdef";
  for (int shift = 60; shift >= 0; shift -= 4) out += kDigits[(value >> shift) & 0xf];
}

}  // namespace

Proxy::Proxy(asio::any_io_executor ex, ProxyOptions options, telemetry::RequestMetrics* metrics,
             telemetry::ClusterMetrics* cluster_metrics, telemetry::AccessLog* access_log)
    : ex_(ex),
      deadlines_(ex),
      options_(std::move(options)),
      metrics_(metrics),
      cluster_metrics_(cluster_metrics),
      access_log_(access_log),
      pool_(std::make_unique<UpstreamPool>(ex, options_)),
      random_(std::random_device{}()),
      router_(std::make_unique<Router>(ex, deadlines_, *pool_, random_)) {}

Proxy::~Proxy() = default;

void Proxy::setRoutes(std::shared_ptr<const RouteConfig> routes) { routes_ = std::move(routes); }

ClusterState& Proxy::state(const Cluster& cluster,
                           const std::shared_ptr<const RouteConfig>& owner) {
  auto& slot = clusters_[cluster.name];
  if (!slot)
    slot = std::make_unique<ClusterState>(
        cluster_metrics_ ? &cluster_metrics_->cluster(cluster.name) : nullptr);
  slot->sync(cluster, owner);
  return *slot;
}

std::vector<std::string> Proxy::ejectedEndpoints(const std::string& cluster) {
  auto it = clusters_.find(cluster);
  if (it == clusters_.end()) return {};
  return it->second->ejectedEndpoints(Clock::now());
}

asio::awaitable<void> Proxy::serve(std::unique_ptr<ByteStream> downstream, Downstream who) {
  // The protocol is told by the first bytes: the HTTP/2 preface, or anything else.
  boost::beast::flat_buffer in;
  while (in.size() < kHttp2Preface.size()) {
    std::string_view seen(static_cast<const char*>(in.data().data()), in.size());
    if (!kHttp2Preface.starts_with(seen)) break;
    error_code ec;
    size_t n = co_await downstream->read(in.prepare(kHttp2Preface.size()), ec);
    in.commit(n);
    if (ec) break;  // the HTTP/1.1 reader reports it
  }
  std::string_view seen(static_cast<const char*>(in.data().data()), in.size());
  if (seen.size() >= kHttp2Preface.size() && seen.starts_with(kHttp2Preface)) {
    std::string received(seen);
    co_await serveHttp2(std::move(downstream), std::move(who), std::move(received));
  } else {
    co_await serveHttp1(std::move(downstream), std::move(who), std::move(in));
  }
}

asio::awaitable<void> Proxy::serveHttp1(std::unique_ptr<ByteStream> downstream, Downstream who,
                                        boost::beast::flat_buffer in) {
  while (true) {
    RequestReader reader(*downstream, in);
    error_code ec = co_await reader.readHeader();
    if (ec) {
      if (ec != http::error::end_of_stream) {
        std::string answer = simpleResponse(400, "bad request: " + ec.message() + "\n", {}, false);
        error_code ignored;
        co_await downstream->write(asio::buffer(answer), ignored);
      }
      break;
    }
    auto request = http1Request(*downstream, reader);
    ProxiedRequest x(*request, who, routes_);
    const bool again = co_await handle(x);
    finish(x);
    if (!again) break;
  }
  downstream->closeWrite();
}

asio::awaitable<void> Proxy::serveHttp2(std::unique_ptr<ByteStream> downstream, Downstream who,
                                        std::string received) {
  auto connection = Http2Connection::create(
      ex_, h2::Role::kServer, std::move(downstream),
      [this, who](std::shared_ptr<h2::Stream> stream) {
        asio::co_spawn(ex_, serveStream(std::move(stream), who), asio::detached);
      },
      std::move(received));
  if (!connection) {
    spdlog::warn("waypoint: HTTP/2 session: {}", connection.message());
    co_return;
  }
  co_await (*connection)->run();
}

asio::awaitable<void> Proxy::serveStream(std::shared_ptr<h2::Stream> stream, Downstream who) {
  auto request = http2Request(std::move(stream));
  ProxiedRequest x(*request, who, routes_);
  co_await handle(x);
  finish(x);
}

// Returns whether the downstream connection may carry another request.
asio::awaitable<bool> Proxy::handle(ProxiedRequest& x) {
  const RequestHead& head = x.down.head();
  // One target and one host, the ones the application will see (RFC 9112 section 3.2): policy
  // must never judge one request and forward another.
  auto target = normalizeRequestTarget(head.target, head.method);
  size_t hosts = 0;
  for (const auto& [name, value] : x.headers())
    if (equalsIgnoreCase(name, "host")) {
      if (++hosts == 1) x.host = value;
    }
  if (target) {
    x.normalized_target = std::move(target->target);
    if (target->authority) {
      x.host = std::move(*target->authority);
      x.host_from_target = true;
    }
  } else {
    x.normalized_target = head.target;  // for the access log
  }
  x.host = canonicalHost(x.host);
  if (const auto* type = findHeader(x.headers(), "content-type"))
    x.grpc = type->starts_with("application/grpc");
  x.view.method = head.method;
  x.view.scheme = "http";
  x.view.authority = x.host;
  x.view.setTarget(x.normalized_target);
  x.path = std::string(x.view.path);
  x.view.headers.reserve(x.headers().size());
  for (const auto& [name, value] : x.headers()) x.view.headers.push_back({name, value});

  if (const auto* id = findHeader(x.headers(), "x-request-id")) {
    x.request_id = *id;
  } else {
    x.request_id.reserve(32);
    appendHex(x.request_id, random_());
    appendHex(x.request_id, random_());
  }
  if (const auto* tp = findHeader(x.headers(), "traceparent"); tp && hbone::isValidTraceparent(*tp))
    x.traceparent = *tp;
  else
    x.traceparent = hbone::newTraceparent(random_);

  // (Every answer's strings go into `x` first: GCC 12 destroys some temporaries of a co_await
  // full-expression twice, so arguments to coroutines here are never temporaries.)
  if (head.method == "CONNECT") {
    x.error = "CONNECT through the waypoint";
    x.reply_body = "the waypoint does not proxy CONNECT\n";
    co_return co_await respond(x, 405, ResponseFlags());
  }
  if (!target || hosts > 1 || (hosts == 0 && !x.host_from_target && head.version == 11)) {
    x.error = !target     ? target.message()
              : hosts > 1 ? "more than one Host header"
                          : "no Host header (HTTP/1.1 requires one)";
    x.reply_body = "bad request: " + x.error + "\n";
    co_return co_await respond(x, 400, ResponseFlags());
  }
  if (x.routes == nullptr) {
    x.reply_body = "no configuration yet\n";
    co_return co_await respond(x, 503, ResponseFlags());
  }
  x.service = x.routes->find(x.who.vip);
  if (x.service == nullptr) {
    x.error = "no service at " + net::formatAuthority(x.who.vip);
    x.reply_body = x.error + " behind this waypoint\n";
    co_return co_await respond(x, 404, ResponseFlag::kNoRouteFound);
  }
  if (x.who.require_binding && !x.service->bound) {
    x.error = "service " + x.service->host + " does not use this waypoint";
    x.reply_body = x.error + " (label it sluice.dev/use-waypoint)\n";
    co_return co_await respond(x, 404, ResponseFlag::kNoRouteFound);
  }

  const std::string principal = x.who.peer.str();
  Peer peer{principal, x.who.peer.ns(), x.who.source_ip};
  auto decision = authorize(x.service->authorization, peer, x.view, x.service->port);
  if (!decision.allowed) {
    x.error = "denied by " +
              (decision.policy.empty() ? std::string("no ALLOW policy matched") : decision.policy);
    x.reply_body = "RBAC: access denied\n";
    co_return co_await respond(x, AuthorizationDecision::kDeniedStatus,
                               AuthorizationDecision::kDeniedFlag);
  }

  auto selection = x.service->table.select(x.view, x.service->port);
  if (!selection) {
    x.error = "no route matched";
    x.reply_body = "no route matched\n";
    co_return co_await respond(x, 404, ResponseFlag::kNoRouteFound);
  }
  x.action = &x.service->actions[selection->route->action];

  if (const auto& direct = x.action->direct_response) {
    x.reply_body = direct->body;
    co_return co_await respond(x, direct->status, ResponseFlags());
  }
  if (const auto& redirect = x.action->redirect) {
    std::string scheme = redirect->scheme.empty() ? "http" : redirect->scheme;
    std::string host = redirect->host.empty() ? std::string(x.view.host()) : redirect->host;
    if (redirect->port) host += ":" + std::to_string(*redirect->port);
    std::string path = redirect->path.empty() ? head.target : redirect->path;
    HeaderList location;
    location.emplace_back("location", scheme + "://" + host + path);
    co_return co_await respond(x, redirect->status, ResponseFlags(), &location);
  }

  if (const auto& fault = x.action->fault) {
    FaultDecision injected = decideFault(*fault, random_(), random_());
    if (injected.delay) {
      x.flags.add(ResponseFlag::kDelayInjected);
      co_await sleepFor(ex_, *injected.delay);
    }
    if (injected.abort) {
      ResponseFlags flags = x.flags;
      flags.add(ResponseFlag::kFaultInjected);
      x.error = "fault injected";
      x.reply_body = "fault filter abort\n";
      co_return co_await respond(x, injected.abortHttpStatus(), flags);
    }
  }

  // The weighted cluster is chosen once; retries stay within it (Envoy's semantics).
  boost::container::small_vector<uint32_t, 8> weights;
  for (const auto& c : x.action->clusters) weights.push_back(c.weight);
  auto picked = pickWeighted(weights, random_());
  if (!picked) {
    x.error = "every destination of route " + x.action->name + " has weight 0";
    x.reply_body = "no healthy upstream\n";
    co_return co_await respond(x, 503, ResponseFlag::kNoHealthyUpstream);
  }
  x.weighted = &x.action->clusters[*picked];
  x.cluster = &x.routes->clusters[x.weighted->cluster];

  // A client waiting for "100 Continue" gets it from here (Envoy's default), and the upstream
  // sees no Expect: the waypoint reads the body itself, to keep it for a retry.
  if (const auto* expect = findHeader(x.headers(), "expect");
      expect != nullptr && equalsIgnoreCase(*expect, "100-continue")) {
    x.continue_answered = true;
    if (!x.down.bodyDone()) {
      error_code ec;
      co_await x.down.sendContinue(ec);
    }
  }

  co_await forward(x);
  co_return x.down.reusable() && x.status != 0;
}

asio::awaitable<void> Proxy::forward(ProxiedRequest& x) {
  // The body streams to each attempt as it arrives, kept for a retry while it fits; an
  // upgrade's bytes after the head belong to the new protocol and are relayed, never read here.
  BodyPump pump(ex_, x.down, options_.replay_limit);
  if (x.down.head().upgrade.empty()) pump.start();
  co_await router_->route(x, state(*x.cluster, x.routes), pump);
  co_await pump.stop(kDrainGrace);
  x.request_bytes += pump.bytes();
  if (pump.failed() && x.error.empty()) x.error = "downstream: request body: " + pump.failure();
}

void Proxy::finish(ProxiedRequest& x) {
  const auto elapsed = Clock::now() - x.start;
  if (metrics_ != nullptr && x.service != nullptr) {
    telemetry::RequestLabels labels;
    auto& c = labels.connection;
    c.reporter = "waypoint";
    c.source.principal = x.who.peer.str();
    c.source.workload_namespace = std::string(x.who.peer.ns());
    c.destination_service = x.service->host;
    c.destination_service_name = x.service->name;
    c.destination_service_namespace = x.service->ns;
    if (x.endpoint != nullptr) c.destination = x.endpoint->labels;
    c.request_protocol = x.grpc ? "grpc" : "http";
    c.connection_security_policy = "mutual_tls";
    c.response_flags =
        x.flags.empty() ? std::string(telemetry::kNoResponseFlags) : x.flags.toString();
    labels.response_code = x.status;
    metrics_->record(labels, std::chrono::duration<double, std::milli>(elapsed).count(),
                     x.request_bytes, x.response_bytes);
  }
  if (access_log_ != nullptr && access_log_->enabled()) {
    telemetry::RequestRecord r;
    r.src = x.who.source_ip;
    r.src_identity = x.who.peer.str();
    r.authority = net::formatAuthority(x.who.vip);
    r.method = x.method();
    r.path = x.target();
    r.protocol = x.down.http2() ? "HTTP/2" : x.down.head().version == 10 ? "HTTP/1.0" : "HTTP/1.1";
    r.route = x.action ? x.action->name : "";
    r.upstream = x.upstream;
    r.upstream_cluster = x.cluster ? x.cluster->name : "";
    r.response_code = x.status;
    r.response_flags = x.flags.empty() ? "-" : x.flags.toString();
    r.error = x.error;
    r.attempts = x.attempts;
    r.bytes_received = x.request_bytes;
    r.bytes_sent = x.response_bytes;
    r.request_id = x.request_id;
    r.traceparent = x.traceparent;
    r.duration = std::chrono::duration_cast<std::chrono::microseconds>(elapsed);
    access_log_->log(r);
  }
}

}  // namespace sluice::waypoint
