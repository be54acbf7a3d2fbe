// The waypoint's request path (see proxy.h): authorize, route, fault, then attempts with
// retries under the route's deadlines, streaming the chosen response back.
#include "waypoint/proxy.h"

#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cstdio>

#include "core/hbone/stream.h"
#include "waypoint/policy/weighted.h"

namespace sluice::waypoint {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;

constexpr size_t kBodyChunk = 64 * 1024;
constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";

std::string endpointText(const tcp::endpoint& endpoint) {
  const auto address = endpoint.address().to_string();
  return (endpoint.address().is_v6() ? "[" + address + "]" : address) + ":" +
         std::to_string(endpoint.port());
}

std::string hex(uint64_t value, int digits) {
  char out[17];
  std::snprintf(out, sizeof out, "%0*llx", digits, static_cast<unsigned long long>(value));
  return std::string(out, static_cast<size_t>(digits));
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

// A timer that aborts an upstream attempt when its deadline passes: the pending read then
// fails, and `fired` tells a timeout from a reset. No cancellation plumbing on the stream.
class Watchdog {
 public:
  Watchdog(asio::any_io_executor ex, std::optional<Clock::time_point> at, ByteStream* stream)
      : timer_(ex), fired_(std::make_shared<bool>(false)) {
    if (!at) return;
    timer_.expires_at(*at);
    timer_.async_wait([fired = fired_, stream, alive = alive_](error_code ec) {
      if (ec || !*alive) return;
      *fired = true;
      stream->abort();
    });
  }
  ~Watchdog() {
    *alive_ = false;
    timer_.cancel();
  }
  bool fired() const { return *fired_; }

 private:
  asio::steady_timer timer_;
  std::shared_ptr<bool> fired_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

asio::awaitable<void> sleepFor(asio::any_io_executor ex, Duration duration) {
  if (duration <= Duration::zero()) co_return;
  asio::steady_timer timer(ex, duration);
  co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
}

}  // namespace

struct Proxy::ClusterState {
  const Cluster* synced = nullptr;  // the compiled cluster the state below was made for,
  std::shared_ptr<const RouteConfig> synced_routes;  // kept alive so the pointer stays unique
  std::vector<std::string> addresses;
  std::unique_ptr<LoadBalancer> lb;
  std::optional<OutlierDetector> outlier;
  std::optional<OutlierConfig> outlier_config;
  CircuitBreaker breaker;
  std::vector<uint32_t> active;
  std::vector<uint8_t> ejected;
};

struct Proxy::Upstream {
  std::shared_ptr<hbone::Stream> raw;
  std::unique_ptr<ByteStream> stream;
  boost::beast::flat_buffer in;
  tcp::endpoint address;
};

// One request and what became of it.
struct Proxy::Exchange {
  Exchange(ByteStream& d, RequestReader& r, const Downstream& w,
           std::shared_ptr<const RouteConfig> rc)
      : down(d), reader(r), who(w), routes(std::move(rc)) {}
  ByteStream& down;
  RequestReader& reader;
  const Downstream& who;
  std::shared_ptr<const RouteConfig> routes;
  Clock::time_point start = Clock::now();

  // The request.
  std::string method, target, path, host;
  HeaderList headers;
  RequestView view;
  bool keep_alive = true;
  std::string body;        // buffered body (complete unless `streaming`)
  bool streaming = false;  // the body was too large to keep: the rest is still downstream
  uint64_t request_bytes = 0;

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
             telemetry::AccessLog* access_log)
    : ex_(ex),
      options_(std::move(options)),
      metrics_(metrics),
      access_log_(access_log),
      random_(std::random_device{}()) {
  pool_ = std::make_unique<hbone::Pool>(
      ex_,
      [this](const hbone::PoolKey& key)
          -> asio::awaitable<Result<std::shared_ptr<hbone::Connection>>> {
        auto tls = options_.client_tls();
        if (!tls) co_return makeError("no certificate for " + options_.identity.str());
        hbone::DialOptions dial;
        dial.timeout = options_.connect_timeout;
        dial.sockets = options_.sockets;
        std::vector<identity::SpiffeId> expected;
        expected.push_back(key.destination);
        co_return co_await hbone::dial(ex_, key.address, tls, std::move(expected), dial);
      });
}

Proxy::~Proxy() = default;

void Proxy::setRoutes(std::shared_ptr<const RouteConfig> routes) { routes_ = std::move(routes); }

Proxy::ClusterState& Proxy::state(const Cluster& cluster,
                                  const std::shared_ptr<const RouteConfig>& owner) {
  auto& slot = clusters_[cluster.name];
  if (!slot) slot = std::make_unique<ClusterState>();
  ClusterState& s = *slot;
  // Compiled clusters never change: the work below is needed once per configuration version,
  // not per request.
  if (s.synced == &cluster && s.synced_routes == owner) return s;
  s.synced = &cluster;
  s.synced_routes = owner;
  std::vector<std::string> addresses;
  for (const auto& e : cluster.endpoints) addresses.push_back(endpointText(e.address));
  bool same_outlier =
      (s.outlier_config.has_value() == cluster.outlier.has_value()) &&
      (!cluster.outlier ||
       (s.outlier_config->consecutive_5xx == cluster.outlier->consecutive_5xx &&
        s.outlier_config->base_ejection_time == cluster.outlier->base_ejection_time &&
        s.outlier_config->max_ejection_percent == cluster.outlier->max_ejection_percent &&
        s.outlier_config->consecutive_gateway_errors ==
            cluster.outlier->consecutive_gateway_errors));
  if (!s.lb || s.addresses != addresses || s.lb->policy() != cluster.lb || !same_outlier) {
    s.lb = std::make_unique<LoadBalancer>(cluster.lb, addresses);
    if (cluster.outlier) {
      if (!s.outlier || !same_outlier)
        s.outlier.emplace(*cluster.outlier, addresses.size());
      else if (s.addresses != addresses)
        s.outlier->resize(addresses.size());
    } else {
      s.outlier.reset();
    }
    s.outlier_config = cluster.outlier;
    s.active.assign(addresses.size(), 0);
    s.addresses = std::move(addresses);
  }
  s.breaker.setLimits(cluster.limits);
  return s;
}

std::vector<std::string> Proxy::ejectedEndpoints(const std::string& cluster) {
  std::vector<std::string> out;
  auto it = clusters_.find(cluster);
  if (it == clusters_.end() || !it->second->outlier) return out;
  const auto now = Clock::now();
  for (size_t i = 0; i < it->second->addresses.size(); ++i)
    if (it->second->outlier->isEjected(i, now)) out.push_back(it->second->addresses[i]);
  return out;
}

asio::awaitable<Result<std::unique_ptr<Proxy::Upstream>>> Proxy::connect(const Endpoint& endpoint,
                                                                         const Downstream& who,
                                                                         bool& reused) {
  reused = false;
  auto& idle = idle_[endpoint.address];
  while (!idle.empty()) {
    auto up = std::move(idle.back());
    idle.pop_back();
    if (!up->raw->wasReset()) {
      reused = true;
      co_return up;
    }
  }
  hbone::Headers headers{{"forwarded", "for=\"" + who.source_ip + "\""}};
  // Named, not temporaries: GCC 12 mishandles braced temporaries inside co_await expressions.
  const hbone::PoolKey key{options_.identity, endpoint.identity, endpoint.hbone};
  const std::string authority = endpointText(endpoint.address);
  auto stream = co_await pool_->open(key, authority, headers);
  if (!stream) co_return stream.error();
  int status = co_await (*stream)->response();
  if (status != 200)
    co_return makeError("HBONE CONNECT to " + endpointText(endpoint.address) + " answered " +
                        std::to_string(status));
  auto up = std::make_unique<Upstream>();
  up->raw = *stream;
  up->stream = wrapStream(*stream);
  up->address = endpoint.address;
  co_return up;
}

void Proxy::release(std::unique_ptr<Upstream> upstream) {
  auto& idle = idle_[upstream->address];
  if (idle.size() < 64) idle.push_back(std::move(upstream));
}

asio::awaitable<void> Proxy::serve(std::unique_ptr<ByteStream> downstream, Downstream who) {
  boost::beast::flat_buffer in;
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
    Exchange x(*downstream, reader, who, routes_);
    bool keep_alive = co_await handle(x);
    finish(x);
    if (!keep_alive) break;
  }
  downstream->closeWrite();
}

asio::awaitable<bool> Proxy::respond(Exchange& x, int status, ResponseFlags flags,
                                     const HeaderList* extra) {
  x.status = status;
  x.flags = flags;
  // An unread request body would be taken for the next request: close instead.
  bool keep_alive = x.keep_alive && x.reader.done();
  std::string out = simpleResponse(status, x.reply_body, extra ? *extra : HeaderList(), keep_alive);
  x.response_bytes = x.reply_body.size();
  error_code ec;
  co_await x.down.write(asio::buffer(out), ec);
  x.keep_alive = keep_alive && !ec;
  co_return x.keep_alive;
}

asio::awaitable<void> Proxy::fail(Exchange& x, int status, ResponseFlags flags) {
  x.reply_body = x.error + "\n";
  co_await respond(x, status, flags);
}

// Returns whether the downstream connection may carry another request.
asio::awaitable<bool> Proxy::handle(Exchange& x) {
  const auto& message = x.reader.message();
  x.method = std::string(message.method_string());
  x.target = std::string(message.target());
  x.keep_alive = message.keep_alive();
  x.headers = forwardableHeaders(message);
  if (const auto* host = findHeader(x.headers, "host")) x.host = *host;
  x.view.method = x.method;
  x.view.scheme = "http";
  x.view.authority = x.host;
  x.view.setTarget(x.target);
  x.path = std::string(x.view.path);
  for (const auto& [name, value] : x.headers) x.view.headers.push_back({name, value});

  if (const auto* id = findHeader(x.headers, "x-request-id"))
    x.request_id = *id;
  else
    x.request_id = hex(random_(), 16) + hex(random_(), 16);
  if (const auto* tp = findHeader(x.headers, "traceparent"))
    x.traceparent = *tp;
  else
    x.traceparent =
        "00-" + hex(random_(), 16) + hex(random_(), 16) + "-" + hex(random_(), 16) + "-01";

  // (Every answer's strings go into `x` first: GCC 12 destroys some temporaries of a co_await
  // full-expression twice, so arguments to coroutines here are never temporaries.)
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
    std::string path = redirect->path.empty() ? x.target : redirect->path;
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
  std::vector<uint32_t> weights;
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
  // sees no Expect: the body is read before any endpoint is chosen.
  if (const auto* expect = findHeader(x.headers, "expect");
      expect != nullptr && equalsIgnoreCase(*expect, "100-continue")) {
    std::erase_if(x.headers, [](const auto& h) { return equalsIgnoreCase(h.first, "expect"); });
    if (!x.reader.done()) {
      error_code ec;
      co_await x.down.write(asio::buffer(kContinue), ec);
    }
  }

  // The request body: kept for replay up to the limit, otherwise streamed once.
  if (!x.reader.done()) {
    std::vector<char> buffer(kBodyChunk);
    while (!x.reader.done()) {
      error_code ec;
      size_t n = co_await x.reader.readBody(buffer.data(), buffer.size(), ec);
      if (ec) {
        // A malformed body gets its 400, as a malformed head does (a client that went away
        // will not read it, which is harmless).
        x.error = "request body: " + ec.message();
        x.reply_body = "bad request: " + x.error + "\n";
        co_await respond(x, 400, ResponseFlags());
        co_return false;
      }
      x.body.append(buffer.data(), n);
      if (x.body.size() > options_.replay_limit && !x.reader.done()) {
        x.streaming = true;
        break;
      }
    }
  }
  x.request_bytes = x.body.size();

  co_await forward(x);
  co_return x.keep_alive&& x.reader.done() && x.status != 0 && !x.error.starts_with("downstream");
}

asio::awaitable<void> Proxy::forward(Exchange& x) {
  const Cluster& cluster = *x.cluster;
  ClusterState& st = state(cluster, x.routes);
  Ticket request_ticket = budget_.trackRequest();
  auto admitted = st.breaker.tryRequest();
  if (!admitted) {
    x.error = "upstream overflow: " + cluster.name + " is at its request limit";
    co_await fail(x, CircuitBreaker::kOverflowStatus, CircuitBreaker::kOverflowFlag);
    co_return;
  }

  const RetryPolicy& policy = x.action->retry;
  const Timeouts& timeouts = x.action->timeouts;
  std::vector<size_t> tried;
  std::optional<Ticket> retry_ticket;

  // The request as the upstream sees it.
  HeaderList headers = x.headers;
  applyEdits(headers, x.action->request_headers);
  applyEdits(headers, x.weighted->request_headers);
  if (!x.action->rewrite_authority.empty()) {
    std::erase_if(headers, [](const auto& h) { return equalsIgnoreCase(h.first, "host"); });
    headers.emplace_back("host", x.action->rewrite_authority);
  }
  if (!findHeader(headers, "x-request-id")) headers.emplace_back("x-request-id", x.request_id);
  if (!findHeader(headers, "traceparent")) headers.emplace_back("traceparent", x.traceparent);
  if (!findHeader(headers, "x-forwarded-proto")) headers.emplace_back("x-forwarded-proto", "http");
  std::string target = x.target;
  if (!x.action->rewrite_prefix.empty()) {
    std::string path = x.path;
    if (!x.action->prefix_matched.empty() && path.starts_with(x.action->prefix_matched))
      path = x.action->rewrite_prefix + path.substr(x.action->prefix_matched.size());
    else
      path = x.action->rewrite_prefix;
    target = x.view.query.empty() ? path : path + "?" + std::string(x.view.query);
  }
  const auto& message = x.reader.message();
  Framing request_framing;
  if (x.streaming) {
    if (message.has_content_length()) {
      request_framing = {Framing::Kind::kLength,
                         std::stoull(std::string(message[http::field::content_length]))};
    } else {
      request_framing = {Framing::Kind::kChunked, 0};
    }
  } else if (!x.body.empty() || message.has_content_length()) {
    request_framing = {Framing::Kind::kLength, x.body.size()};
  }
  std::string head = requestHead(x.method, target, headers, request_framing);

  while (true) {
    const auto now = Clock::now();
    if (totalDeadlineExpired(timeouts, x.start, now)) {
      x.error = "upstream request timeout";
      co_await fail(x, kTimeoutStatus, ResponseFlag::kUpstreamRequestTimeout);
      co_return;
    }

    // Pick an endpoint not yet tried, skipping ejected ones.
    if (st.outlier)
      st.outlier->ejectedMask(now, st.ejected);
    else
      st.ejected.clear();
    PickContext pick;
    pick.ejected = st.ejected;
    pick.active_requests = st.active;
    pick.tried = tried;
    if (cluster.hash) pick.hash = hashKey(*cluster.hash, x.view, x.who.source_ip);
    pick.random1 = random_();
    pick.random2 = random_();
    auto index = st.lb->pick(pick);
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
    ++st.active[*index];
    struct Active {
      ClusterState& st;
      size_t i;
      ~Active() {
        if (i < st.active.size() && st.active[i] > 0) --st.active[i];
      }
    } active{st, *index};

    // One attempt: connect (or reuse), send, and wait for the response head.
    AttemptDeadline deadline = attemptDeadline(timeouts, x.start, now);
    AttemptOutcome outcome = AttemptOutcome::connectFailure();
    std::unique_ptr<Upstream> up;
    std::unique_ptr<ResponseReader> response;
    std::string failure;
    for (int fresh = 0; fresh < 2; ++fresh) {
      bool reused = false;
      auto connected = co_await connect(endpoint, x.who, reused);
      if (!connected) {
        failure = connected.message();
        outcome = AttemptOutcome::connectFailure();
        break;
      }
      up = std::move(*connected);
      Watchdog watchdog(ex_, deadline.at, up->stream.get());
      error_code ec;
      if (x.streaming) {
        co_await up->stream->write(asio::buffer(head), ec);
        bool chunked = request_framing.kind == Framing::Kind::kChunked;
        auto send = [&](std::string_view data) -> asio::awaitable<void> {
          if (data.empty() || ec) co_return;
          if (chunked) {
            std::string framed = chunk(data);
            co_await up->stream->write(asio::buffer(framed), ec);
          } else {
            co_await up->stream->write(asio::buffer(data), ec);
          }
        };
        co_await send(x.body);
        std::vector<char> buffer(kBodyChunk);
        while (!ec && !x.reader.done()) {
          error_code read_ec;
          size_t n = co_await x.reader.readBody(buffer.data(), buffer.size(), read_ec);
          if (read_ec) {
            x.error = "downstream: request body: " + read_ec.message();
            up->stream->abort();
            x.status = 400;
            co_return;
          }
          x.request_bytes += n;
          co_await send(std::string_view(buffer.data(), n));
        }
        if (!ec && chunked) co_await up->stream->write(asio::buffer(kLastChunk), ec);
      } else {
        std::string wire = head + x.body;
        co_await up->stream->write(asio::buffer(wire), ec);
      }
      // Interim 1xx answers (other than 101) are not the response: read on.
      while (!ec) {
        response = std::make_unique<ResponseReader>(*up->stream, up->in);
        if (x.method == "HEAD") response->skipBody();
        ec = co_await response->readHeader();
        int code = ec ? 0 : response->message().result_int();
        if (code < 100 || code >= 200 || code == 101) break;
      }
      if (!ec) {
        int status = response->message().result_int();
        std::optional<int> grpc;
        if (auto it = response->message().find("grpc-status"); it != response->message().end())
          grpc = std::atoi(std::string(it->value()).c_str());
        outcome = AttemptOutcome::response(status, grpc);
        break;
      }
      if (watchdog.fired()) {
        outcome = AttemptOutcome::perTryTimeout();
        failure = deadline.kind == DeadlineKind::kTotal ? "upstream request timeout"
                                                        : "upstream per-try timeout";
        break;
      }
      // A pooled keep-alive connection the app had closed: try once more on a new one, as
      // the request never reached the app (it is not an attempt).
      if (reused && !x.streaming && (ec == http::error::end_of_stream)) continue;
      outcome = AttemptOutcome::reset();
      failure = "upstream reset before response headers: " + ec.message();
      break;
    }

    // Outlier detection sees every attempt.
    if (st.outlier) {
      if (outcome.kind == AttemptOutcome::Kind::kResponse)
        st.outlier->reportResponse(*index, outcome.status, Clock::now());
      else
        st.outlier->reportLocalFailure(*index, Clock::now());
    }

    RetryDecision decision =
        wouldRetry(policy, outcome, x.attempts, remainingTime(timeouts, x.start, Clock::now()),
                   !x.streaming, budget_);
    if (decision.retry) retry_ticket = budget_.tryRetry();
    if (decision.retry && retry_ticket) {
      if (up) up->stream->abort();  // its answer is not wanted
      co_await sleepFor(ex_, backoffDelay(policy.backoff, x.attempts, random_()));
      continue;
    }
    x.flags.add(decision.flags);

    if (outcome.kind != AttemptOutcome::Kind::kResponse) {
      if (up) up->stream->abort();
      if (outcome.kind == AttemptOutcome::Kind::kPerTryTimeout) {
        ResponseFlags flags = x.flags;
        flags.add(ResponseFlag::kUpstreamRequestTimeout);
        {
          x.error = failure;
          co_await fail(x, kTimeoutStatus, flags);
          co_return;
        }
      }
      ResponseFlags flags = x.flags;
      flags.add(outcome.kind == AttemptOutcome::Kind::kConnectFailure
                    ? ResponseFlag::kUpstreamConnectionFailure
                    : ResponseFlag::kUpstreamRemoteReset);
      {
        x.error = "upstream connect error or disconnect/reset before headers: " + failure;
        co_await fail(x, 503, flags);
        co_return;
      }
    }

    // Commit to this response: stream it downstream.
    Watchdog watchdog(ex_, requestDeadline(timeouts, x.start), up->stream.get());
    const auto& upstream_message = response->message();
    x.status = upstream_message.result_int();
    HeaderList response_headers = forwardableHeaders(upstream_message);
    applyEdits(response_headers, x.action->response_headers);
    applyEdits(response_headers, x.weighted->response_headers);
    bool no_body = x.method == "HEAD" || x.status == 204 || x.status == 304 ||
                   (x.status >= 100 && x.status < 200);
    Framing framing;
    if (no_body) {
      if (upstream_message.has_content_length())
        response_headers.emplace_back("content-length",
                                      std::string(upstream_message[http::field::content_length]));
    } else if (upstream_message.has_content_length()) {
      framing = {Framing::Kind::kLength,
                 std::stoull(std::string(upstream_message[http::field::content_length]))};
    } else if (x.reader.message().version() >= 11) {
      framing = {Framing::Kind::kChunked, 0};  // chunked upstream, or until close
    } else {
      // An HTTP/1.0 client cannot read chunks (RFC 9112 section 6.1): the end of the
      // connection ends the body.
      framing = {Framing::Kind::kUntilClose, 0};
    }
    bool keep_alive = x.keep_alive && x.reader.done() && framing.kind != Framing::Kind::kUntilClose;
    std::string response_head =
        responseHead(x.status, upstream_message.reason(), response_headers, framing, keep_alive);
    error_code ec;
    // The head goes out with the first piece of body: one frame (one write) instead of two.
    std::string pending = std::move(response_head);
    std::vector<char> buffer(kBodyChunk);
    while (!ec && !response->done()) {
      error_code read_ec;
      size_t n = co_await response->readBody(buffer.data(), buffer.size(), read_ec);
      if (read_ec) {
        x.error = watchdog.fired() ? "upstream request timeout during the response body"
                                   : "upstream response body: " + read_ec.message();
        if (watchdog.fired())
          x.flags.add(ResponseFlag::kUpstreamRequestTimeout);
        else
          x.flags.add(ResponseFlag::kUpstreamRemoteReset);
        up->stream->abort();
        x.down.abort();  // the client must not take a truncated body for a whole one
        x.keep_alive = false;
        co_return;
      }
      if (n == 0) break;
      x.response_bytes += n;
      const std::string_view data(buffer.data(), n);
      if (framing.kind == Framing::Kind::kChunked)
        pending += chunk(data);
      else
        pending.append(data);
      if (response->done()) break;  // the last piece goes out below, with the last chunk
      co_await x.down.write(asio::buffer(pending), ec);
      pending.clear();
    }
    if (!ec) {
      if (framing.kind == Framing::Kind::kChunked) pending += kLastChunk;
      if (!pending.empty()) co_await x.down.write(asio::buffer(pending), ec);
    }
    if (ec) {
      x.error = "downstream: " + ec.message();
      x.keep_alive = false;
      up->stream->abort();
      co_return;
    }
    x.keep_alive = keep_alive;
    if (upstream_message.keep_alive() && response->done()) release(std::move(up));
    co_return;
  }
}

void Proxy::finish(Exchange& x) {
  const auto elapsed = Clock::now() - x.start;
  if (metrics_ != nullptr && x.service != nullptr) {
    telemetry::RequestLabels labels;
    auto& c = labels.connection;
    c.reporter = "waypoint";
    c.source_principal = x.who.peer.str();
    c.source_workload_namespace = std::string(x.who.peer.ns());
    c.destination_service = x.service->host;
    c.destination_service_name = x.service->name;
    c.destination_service_namespace = x.service->ns;
    if (x.endpoint != nullptr) {
      c.destination_workload = x.endpoint->name;
      c.destination_workload_namespace = x.endpoint->ns;
      c.destination_principal = x.endpoint->identity.str();
      auto label = [&](const char* key) {
        auto it = x.endpoint->labels.find(key);
        return it == x.endpoint->labels.end() ? std::string(telemetry::kUnknown) : it->second;
      };
      c.destination_app = label("app");
      c.destination_version = label("version");
      c.destination_canonical_service = label("app");
      c.destination_canonical_revision = label("version");
    }
    c.request_protocol = "http";
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
    r.method = x.method;
    r.path = x.target;
    r.protocol = "HTTP/1.1";
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
