// The waypoint's request path (see proxy.h): authorize, route, fault, then attempts with
// retries under the route's deadlines, streaming the chosen response back.
#include "waypoint/proxy.h"

#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/container/small_vector.hpp>

#include "core/hbone/authority.h"
#include "core/hbone/metadata.h"
#include "core/hbone/stream.h"
#include "waypoint/body_pump.h"
#include "waypoint/cluster_state.h"
#include "waypoint/policy/weighted.h"
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

std::string endpointText(const tcp::endpoint& endpoint) { return hbone::formatAuthority(endpoint); }

// Appends the 16 lower-case hex digits of `value` (ids are made per request: no snprintf).
void appendHex(std::string& out, uint64_t value) {
  static constexpr char kDigits[] = "0123456789abcdef";
  for (int shift = 60; shift >= 0; shift -= 4) out += kDigits[(value >> shift) & 0xf];
}

const std::string* findHeader(const HeaderList& headers, std::string_view name) {
  for (const auto& [n, v] : headers)
    if (equalsIgnoreCase(n, name)) return &v;
  return nullptr;
}

void applyEdits(HeaderList& headers, const HeaderEdits& edits) {
  auto erase = [&](std::string_view name) {
    std::erase_if(headers, [&](const auto& h) { return equalsIgnoreCase(h.first, name); });
  };
  for (const auto& name : edits.remove) erase(name);
  for (const auto& [name, value] : edits.set) {
    erase(name);
    headers.emplace_back(name, value);
  }
  for (const auto& [name, value] : edits.add) headers.emplace_back(name, value);
}

// Aborts an upstream attempt when its deadline passes (while it lives): the pending read then
// fails, and fired() tells a timeout from a reset. No cancellation plumbing on the stream.
class Watchdog final : public Deadlines::Entry {
 public:
  Watchdog(Deadlines& deadlines, std::optional<Clock::time_point> at, UpstreamCall* call)
      : call_(call) {
    if (at) deadlines.arm(*this, *at);
  }
  bool fired() const { return fired_; }

 private:
  void expire() override {
    fired_ = true;
    call_->abort();
  }
  UpstreamCall* call_;
  bool fired_ = false;
};

// HTTP/2 multiplexed on one tunnel per endpoint when the app speaks it (or, for a port of
// unknown protocol, when the client did); HTTP/1.1 otherwise. Upgrades (WebSocket) exist in
// HTTP/1.1 only.
bool speaksHttp2(UpstreamProtocol protocol, const DownstreamRequest& down) {
  return down.head().upgrade.empty() &&
         (protocol == UpstreamProtocol::kHttp2 ||
          (protocol == UpstreamProtocol::kAsDownstream && down.http2()));
}

asio::awaitable<void> sleepFor(asio::any_io_executor ex, Duration duration) {
  if (duration <= Duration::zero()) co_return;
  asio::steady_timer timer(ex, duration);
  co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
}

}  // namespace

// One request and what became of it.
struct Proxy::Exchange {
  Exchange(DownstreamRequest& d, const Downstream& w, std::shared_ptr<const RouteConfig> rc)
      : down(d), who(w), routes(std::move(rc)) {}
  DownstreamRequest& down;
  const Downstream& who;
  std::shared_ptr<const RouteConfig> routes;
  Clock::time_point start = Clock::now();

  // The request. Its head is the downstream's, never changed: `view` points into it.
  std::string path, host;
  RequestView view;
  uint64_t request_bytes = 0;
  bool grpc = false;  // content-type application/grpc*: reported as such
  const std::string& method() const { return down.head().method; }
  const std::string& target() const { return down.head().target; }
  const HeaderList& headers() const { return down.head().headers; }
  bool continue_answered = false;  // the waypoint answered Expect: 100-continue: not forwarded

  // Decisions.
  const ServiceRoutes* service = nullptr;
  const RouteAction* action = nullptr;
  const WeightedCluster* weighted = nullptr;
  const Cluster* cluster = nullptr;

  // The outcome, for telemetry.
  int status = 0;
  ResponseFlags flags;
  std::string error;       // why the waypoint answered itself (access log)
  std::string reply_body;  // what it answered with
  uint32_t attempts = 0;
  std::string upstream;
  const Endpoint* endpoint = nullptr;
  uint64_t response_bytes = 0;
  std::string request_id, traceparent;
};

Proxy::Proxy(asio::any_io_executor ex, ProxyOptions options, telemetry::RequestMetrics* metrics,
             telemetry::ClusterMetrics* cluster_metrics, telemetry::AccessLog* access_log)
    : ex_(ex),
      deadlines_(ex),
      options_(std::move(options)),
      metrics_(metrics),
      cluster_metrics_(cluster_metrics),
      access_log_(access_log),
      pool_(std::make_unique<UpstreamPool>(ex, options_)),
      random_(std::random_device{}()) {}

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
    Exchange x(*request, who, routes_);
    const bool again = co_await handle(x);
    finish(x);
    if (!again) break;
  }
  downstream->closeWrite();
}

asio::awaitable<void> Proxy::serveHttp2(std::unique_ptr<ByteStream> downstream, Downstream who,
                                        std::string received) {
  auto connection = Http2Connection::create(
      ex_, hbone::Role::kServer, std::move(downstream),
      [this, who](std::shared_ptr<hbone::Stream> stream) {
        asio::co_spawn(ex_, serveStream(std::move(stream), who), asio::detached);
      },
      std::move(received));
  if (!connection) {
    spdlog::warn("waypoint: HTTP/2 session: {}", connection.message());
    co_return;
  }
  co_await (*connection)->run();
}

asio::awaitable<void> Proxy::serveStream(std::shared_ptr<hbone::Stream> stream, Downstream who) {
  auto request = http2Request(std::move(stream));
  Exchange x(*request, who, routes_);
  co_await handle(x);
  finish(x);
}

asio::awaitable<bool> Proxy::respond(Exchange& x, int status, ResponseFlags flags,
                                     const HeaderList* extra) {
  x.status = status;
  x.flags = flags;
  HeaderList headers = extra ? *extra : HeaderList();
  error_code ec;
  const HeaderList no_trailers;
  if (x.grpc) {
    // gRPC clients read the outcome from grpc-status: a trailers-only answer, as the gRPC
    // spec has servers send errors (the HTTP status stays in metrics and the access log).
    headers.emplace_back("content-type", "application/grpc");
    headers.emplace_back("grpc-status", std::to_string(grpcStatusForHttp(status)));
    headers.emplace_back("grpc-message", grpcMessage(x.reply_body));
    BodySize none;
    none.none = true;
    co_await x.down.sendHead(200, {}, headers, none, ec);
    if (!ec) co_await x.down.endResponse(no_trailers, ec);
    co_return !ec && x.down.reusable();
  }
  headers.emplace_back("content-type", "text/plain");
  BodySize size;
  size.length = x.reply_body.size();
  co_await x.down.sendHead(status, {}, headers, size, ec);
  if (!ec) co_await x.down.sendData(x.reply_body, true, ec);
  if (!ec) co_await x.down.endResponse(no_trailers, ec);
  x.response_bytes = x.reply_body.size();
  co_return !ec && x.down.reusable();
}

asio::awaitable<void> Proxy::fail(Exchange& x, int status, ResponseFlags flags) {
  x.reply_body = x.error + "\n";
  co_await respond(x, status, flags);
}

// Returns whether the downstream connection may carry another request.
asio::awaitable<bool> Proxy::handle(Exchange& x) {
  const RequestHead& head = x.down.head();
  if (const auto* host = findHeader(x.headers(), "host")) x.host = *host;
  if (const auto* type = findHeader(x.headers(), "content-type"))
    x.grpc = type->starts_with("application/grpc");
  x.view.method = head.method;
  x.view.scheme = "http";
  x.view.authority = x.host;
  x.view.setTarget(head.target);
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
  if (x.routes == nullptr) {
    x.reply_body = "no configuration yet\n";
    co_return co_await respond(x, 503, ResponseFlags());
  }
  x.service = x.routes->find(x.who.vip);
  if (x.service == nullptr) {
    x.error = "no service at " + endpointText(x.who.vip);
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

asio::awaitable<void> Proxy::forward(Exchange& x) {
  // The body streams to each attempt as it arrives, kept for a retry while it fits; an
  // upgrade's bytes after the head belong to the new protocol and are relayed, never read here.
  BodyPump pump(ex_, x.down, options_.replay_limit);
  if (x.down.head().upgrade.empty()) pump.start();
  co_await sendWithRetries(x, pump);
  co_await pump.stop(kDrainGrace);
  x.request_bytes += pump.bytes();
  if (pump.failed() && x.error.empty()) x.error = "downstream: request body: " + pump.failure();
}

asio::awaitable<void> Proxy::sendWithRetries(Exchange& x, BodyPump& pump) {
  const Cluster& cluster = *x.cluster;
  ClusterState& st = state(cluster, x.routes);
  Ticket request_ticket = st.budget().trackRequest();
  auto admitted = st.breaker().tryRequest();
  if (!admitted) {
    st.countPendingOverflow();
    x.error = "upstream overflow: " + cluster.name + " is at its request limit";
    co_await fail(x, CircuitBreaker::kOverflowStatus, CircuitBreaker::kOverflowFlag);
    co_return;
  }

  const RetryPolicy& policy = x.action->retry;
  const Timeouts& timeouts = x.action->timeouts;
  std::vector<size_t> tried;
  std::optional<Ticket> retry_ticket;

  // The request as the upstream sees it, with room for the edits and the headers added below.
  HeaderList headers;
  headers.reserve(x.headers().size() + 8);
  for (const auto& field : x.headers()) {
    if (x.continue_answered && equalsIgnoreCase(field.first, "expect")) continue;
    // A malformed trace context is replaced (x.traceparent), not propagated.
    if (equalsIgnoreCase(field.first, "traceparent") && field.second != x.traceparent) continue;
    headers.push_back(field);
  }
  applyEdits(headers, x.action->request_headers);
  applyEdits(headers, x.weighted->request_headers);
  if (!x.action->rewrite_authority.empty()) {
    std::erase_if(headers, [](const auto& h) { return equalsIgnoreCase(h.first, "host"); });
    headers.emplace_back("host", x.action->rewrite_authority);
  }
  if (!findHeader(headers, "x-request-id")) headers.emplace_back("x-request-id", x.request_id);
  if (!findHeader(headers, "traceparent")) headers.emplace_back("traceparent", x.traceparent);
  if (!findHeader(headers, "x-forwarded-proto")) headers.emplace_back("x-forwarded-proto", "http");
  const RequestHead& head = x.down.head();
  UpstreamRequest request;
  request.method = head.method;
  request.target = x.target();
  if (!x.action->rewrite_prefix.empty()) {
    std::string path = x.path;
    if (!x.action->prefix_matched.empty() && path.starts_with(x.action->prefix_matched))
      path = x.action->rewrite_prefix + path.substr(x.action->prefix_matched.size());
    else
      path = x.action->rewrite_prefix;
    request.target = x.view.query.empty() ? path : path + "?" + std::string(x.view.query);
  }
  request.headers = std::move(headers);
  request.body = head.body;
  request.trailers = head.trailers;
  request.upgrade = head.upgrade;
  // Bytes after an upgrade request's head are the new protocol's: never buffered, never retried.
  const bool upgrade = !head.upgrade.empty();
  auto replayable = [&] { return !upgrade && pump.replayable(); };

  while (true) {
    const auto now = Clock::now();
    if (totalDeadlineExpired(timeouts, x.start, now)) {
      x.error = "upstream request timeout";
      co_await fail(x, kTimeoutStatus, ResponseFlag::kUpstreamRequestTimeout);
      co_return;
    }

    // Pick an endpoint not yet tried, skipping ejected ones.
    PickContext pick;
    pick.tried = tried;
    if (cluster.hash) pick.hash = hashKey(*cluster.hash, x.view, x.who.source_ip);
    pick.random1 = random_();
    pick.random2 = random_();
    auto index = st.pick(pick, now);
    if (!index) {
      x.error = "no healthy upstream in " + cluster.name;
      co_await fail(x, 503, ResponseFlag::kNoHealthyUpstream);
      co_return;
    }
    const Endpoint& endpoint = cluster.endpoints[*index];
    tried.push_back(*index);
    x.endpoint = &endpoint;
    x.upstream = endpointText(endpoint.address);
    ++x.attempts;
    ClusterState::InFlight in_flight(st, *index);

    // One attempt: connect (or reuse), send, and wait for the response head.
    AttemptDeadline deadline = attemptDeadline(timeouts, x.start, now);
    AttemptOutcome outcome = AttemptOutcome::connectFailure();
    std::shared_ptr<UpstreamCall> up;  // shared with the pump, which may still be sending
    std::string failure;
    for (bool fresh = false;;) {
      bool reused = false;
      auto opened = co_await pool_->call(endpoint, x.who, speaksHttp2(x.cluster->protocol, x.down),
                                         x.cluster->reuse, fresh, reused);
      if (!opened) {
        failure = opened.message();
        outcome = AttemptOutcome::connectFailure();
        break;
      }
      up = std::move(*opened);
      Watchdog watchdog(deadlines_, deadline.at, up.get());
      error_code ec;
      if (upgrade)
        co_await up->start(request, {}, true, ec);
      else
        co_await pump.attach(up, request, ec);
      if (!ec) ec = co_await up->readHead();
      if (pump.failed()) {
        // A malformed body gets its 400, as a malformed head does (a client that went away
        // will not read it, which is harmless).
        up->abort();
        pump.detach();
        x.error = "request body: " + pump.failure();
        x.reply_body = "bad request: " + x.error + "\n";
        co_await respond(x, 400, ResponseFlags());
        co_return;
      }
      if (!ec) {
        outcome = AttemptOutcome::response(up->status, up->grpc_status);
        break;
      }
      if (watchdog.fired()) {
        outcome = AttemptOutcome::perTryTimeout();
        failure = deadline.kind == DeadlineKind::kTotal ? "upstream request timeout"
                                                        : "upstream per-try timeout";
        break;
      }
      // A pooled connection the app had closed, or a refused stream: the request never reached
      // the app, so it goes once more on a new connection (not an attempt; a fresh call is
      // never `reused`, so this happens once).
      if (reused && replayable() && up->neverSent(ec)) {
        pump.detach();
        fresh = true;
        continue;
      }
      outcome = AttemptOutcome::reset();
      failure = "upstream reset before response headers: " +
                (up->error.empty() ? ec.message() : up->error);
      break;
    }

    st.reportOutcome(*index, outcome, Clock::now());

    RetryDecision decision =
        wouldRetry(policy, outcome, x.attempts, remainingTime(timeouts, x.start, Clock::now()),
                   replayable(), st.budget());
    if (decision.retry) retry_ticket = st.budget().tryRetry();
    st.countRetryDecision(decision.reason, x.attempts);
    if (decision.retry && retry_ticket) {
      if (up) up->abort();  // its answer is not wanted
      pump.detach();
      co_await sleepFor(ex_, backoffDelay(policy.backoff, x.attempts, random_()));
      continue;
    }
    x.flags.add(decision.flags);
    // A retriable outcome held back by time, body size or the budget says so in the access log
    // (and a local reply's body); the flags tell only of used-up attempts (URX).
    std::string not_retried;
    if (decision.reason == RetryReason::kNoTimeLeft ||
        decision.reason == RetryReason::kBodyNotReplayable ||
        decision.reason == RetryReason::kBudgetExhausted) {
      not_retried = "not retried: " + std::string(describe(decision.reason));
      failure += "; " + not_retried;
    }

    if (outcome.kind != AttemptOutcome::Kind::kResponse) {
      if (up) up->abort();
      pump.detach();
      ResponseFlags flags = x.flags;
      if (outcome.kind == AttemptOutcome::Kind::kPerTryTimeout) {
        flags.add(ResponseFlag::kUpstreamRequestTimeout);
        x.error = failure;
        co_await fail(x, kTimeoutStatus, flags);
        co_return;
      }
      flags.add(outcome.kind == AttemptOutcome::Kind::kConnectFailure
                    ? ResponseFlag::kUpstreamConnectionFailure
                    : ResponseFlag::kUpstreamRemoteReset);
      x.error = "upstream connect error or disconnect/reset before headers: " + failure;
      co_await fail(x, 503, flags);
      co_return;
    }

    // Commit to this response: stream it downstream.
    Watchdog watchdog(deadlines_, requestDeadline(timeouts, x.start), up.get());
    x.status = up->status;
    x.error = not_retried;
    HeaderList response_headers = std::move(up->headers);
    applyEdits(response_headers, x.action->response_headers);
    applyEdits(response_headers, x.weighted->response_headers);
    error_code ec;
    if (x.status == 101 && !head.upgrade.empty()) {
      co_await x.down.sendHead(x.status, up->reason, response_headers, up->body, ec);
      if (!ec) co_await relayUpgrade(x, *up);
      co_return;
    }
    BodySize body = up->body;
    if (head.method == "HEAD") body.none = true;
    co_await x.down.sendHead(x.status, up->reason, response_headers, body, ec);
    std::optional<BodyBuffer> buffer;
    while (!ec && !body.none && !up->bodyDone()) {
      if (!buffer) buffer.emplace();
      error_code read_ec;
      size_t n = co_await up->readBody(buffer->data(), buffer->size(), read_ec);
      if (read_ec) {
        if (pump.failed()) {
          x.error = "downstream: request body: " + pump.failure();
          x.flags.add(ResponseFlag::kDownstreamConnectionTermination);
        } else if (watchdog.fired()) {
          x.error = "upstream request timeout during the response body";
          x.flags.add(ResponseFlag::kUpstreamRequestTimeout);
        } else {
          x.error = "upstream response body: " + read_ec.message();
          x.flags.add(ResponseFlag::kUpstreamRemoteReset);
        }
        up->abort();
        x.down.abort();  // the client must not take a truncated body for a whole one
        co_return;
      }
      if (n == 0) break;
      x.response_bytes += n;
      co_await x.down.sendData(std::string_view(buffer->data(), n), up->bodyDone(), ec);
    }
    const HeaderList trailers = up->trailers();
    if (!ec) co_await x.down.endResponse(trailers, ec);
    if (ec) {
      x.error = "downstream: " + ec.message();
      x.flags.add(ResponseFlag::kDownstreamConnectionTermination);
      up->abort();
      co_return;
    }
    // A connection still owed part of the request body cannot carry the next request.
    if (auto connection = pump.delivered() ? up->reusableConnection() : nullptr)
      pool_->keepIdle(std::move(connection), x.cluster->reuse);
    co_return;
  }
}

asio::awaitable<void> Proxy::relayUpgrade(Exchange& x, UpstreamCall& up) {
  ByteStream* client = x.down.rawStream();
  ByteStream* app = up.rawStream();
  if (client == nullptr || app == nullptr) co_return;
  auto copy = [](ByteStream& from, boost::beast::flat_buffer& buffered, ByteStream& to,
                 uint64_t& counted) -> asio::awaitable<void> {
    error_code ec;
    if (buffered.size() > 0) {
      counted += buffered.size();
      co_await to.write(buffered.data(), ec);
      buffered.consume(buffered.size());
    }
    BodyBuffer buffer;
    while (!ec) {
      size_t n = co_await from.read(asio::buffer(buffer.data(), buffer.size()), ec);
      if (n > 0) {
        counted += n;
        error_code write_ec;
        co_await to.write(asio::buffer(buffer.data(), n), write_ec);
        if (write_ec) break;
      }
    }
    if (ec == asio::error::eof)
      to.closeWrite();
    else
      to.abort();
  };
  using namespace asio::experimental::awaitable_operators;
  co_await (copy(*client, *x.down.rawBuffered(), *app, x.request_bytes) &&
            copy(*app, *up.rawBuffered(), *client, x.response_bytes));
}

void Proxy::finish(Exchange& x) {
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
    r.authority = endpointText(x.who.vip);
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
