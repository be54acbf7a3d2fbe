// The router (see router.h): the upstream request, the loop over attempts, and the response.
#include "waypoint/router.h"

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <optional>
#include <vector>

#include "core/net/authority.h"
#include "waypoint/body_pump.h"
#include "waypoint/cluster_state.h"
#include "waypoint/upstream_attempt.h"
#include "waypoint/upstream_pool.h"

namespace sluice::waypoint {
namespace {

namespace asio = boost::asio;
using telemetry::ResponseFlag;
using telemetry::ResponseFlags;

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

// The request as the upstream sees it: the route's and the destination's header edits, the
// rewritten authority and path, and the ids and headers a proxy adds.
UpstreamRequest upstreamRequest(const ProxiedRequest& x) {
  // With room for the edits and the headers added below.
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
  if (!x.action->rewrite_authority.empty() || x.host_from_target) {
    // The host the route was chosen for (an absolute-form target's, over the Host header).
    std::erase_if(headers, [](const auto& h) { return equalsIgnoreCase(h.first, "host"); });
    headers.emplace_back(
        "host", x.action->rewrite_authority.empty() ? x.host : x.action->rewrite_authority);
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
  return request;
}

}  // namespace

Router::Router(asio::any_io_executor ex, Deadlines& deadlines, UpstreamPool& pool,
               std::mt19937_64& random)
    : ex_(std::move(ex)), deadlines_(deadlines), pool_(pool), random_(random) {}

asio::awaitable<void> Router::route(ProxiedRequest& x, ClusterState& st, BodyPump& pump) {
  const Cluster& cluster = *x.cluster;
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
  const UpstreamRequest request = upstreamRequest(x);
  // Bytes after an upgrade request's head are the new protocol's: never buffered, never retried.
  const bool upgrade = !x.down.head().upgrade.empty();
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
    x.upstream = net::formatAuthority(endpoint.address);
    ++x.attempts;
    ClusterState::InFlight in_flight(st, *index);

    // One attempt: connect (or reuse), send, and wait for the response head.
    const AttemptDeadline deadline = attemptDeadline(timeouts, x.start, now);
    AttemptResult attempt =
        co_await attemptUpstream(pool_, deadlines_, x, endpoint, request, pump, deadline);
    if (attempt.request_failed) {
      // A malformed body gets its 400, as a malformed head does (a client that went away
      // will not read it, which is harmless).
      x.error = "request body: " + pump.failure();
      x.reply_body = "bad request: " + x.error + "\n";
      co_await respond(x, 400, ResponseFlags());
      co_return;
    }
    st.reportOutcome(*index, attempt.outcome, Clock::now());

    // The decision is the policy's (side-effect free); acting on it is the loop's.
    RetryDecision decision =
        wouldRetry(policy, attempt.outcome, x.attempts,
                   remainingTime(timeouts, x.start, Clock::now()), replayable(), st.budget());
    if (decision.retry) retry_ticket = st.budget().tryRetry();
    st.countRetryDecision(decision.reason, x.attempts);
    if (decision.retry && retry_ticket) {
      if (attempt.up) attempt.up->abort();  // its answer is not wanted
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
      attempt.failure += "; " + not_retried;
    }

    if (attempt.outcome.kind != AttemptOutcome::Kind::kResponse) {
      co_await failAttempt(x, attempt, pump);
    } else {
      co_await streamResponse(x, *attempt.up, pump, not_retried);
    }
    co_return;
  }
}

asio::awaitable<void> Router::failAttempt(ProxiedRequest& x, AttemptResult& attempt,
                                          BodyPump& pump) {
  if (attempt.up) attempt.up->abort();
  pump.detach();
  ResponseFlags flags = x.flags;
  if (attempt.outcome.kind == AttemptOutcome::Kind::kPerTryTimeout) {
    flags.add(ResponseFlag::kUpstreamRequestTimeout);
    x.error = attempt.failure;
    co_await fail(x, kTimeoutStatus, flags);
    co_return;
  }
  flags.add(attempt.outcome.kind == AttemptOutcome::Kind::kConnectFailure
                ? ResponseFlag::kUpstreamConnectionFailure
                : ResponseFlag::kUpstreamRemoteReset);
  x.error = "upstream connect error or disconnect/reset before headers: " + attempt.failure;
  co_await fail(x, 503, flags);
}

asio::awaitable<void> Router::streamResponse(ProxiedRequest& x, UpstreamCall& up, BodyPump& pump,
                                             const std::string& not_retried) {
  const RequestHead& head = x.down.head();
  Watchdog watchdog(deadlines_, requestDeadline(x.action->timeouts, x.start), &up);
  x.status = up.status;
  x.error = not_retried;
  HeaderList response_headers = std::move(up.headers);
  applyEdits(response_headers, x.action->response_headers);
  applyEdits(response_headers, x.weighted->response_headers);
  error_code ec;
  if (x.status == 101 && !head.upgrade.empty()) {
    co_await x.down.sendHead(x.status, up.reason, response_headers, up.body, ec);
    if (!ec) co_await relayUpgrade(x, up);
    co_return;
  }
  BodySize body = up.body;
  if (head.method == "HEAD") body.none = true;
  co_await x.down.sendHead(x.status, up.reason, response_headers, body, ec);
  std::optional<BodyBuffer> buffer;
  while (!ec && !body.none && !up.bodyDone()) {
    if (!buffer) buffer.emplace();
    error_code read_ec;
    size_t n = co_await up.readBody(buffer->data(), buffer->size(), read_ec);
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
      up.abort();
      x.down.abort();  // the client must not take a truncated body for a whole one
      co_return;
    }
    if (n == 0) break;
    x.response_bytes += n;
    co_await x.down.sendData(std::string_view(buffer->data(), n), up.bodyDone(), ec);
  }
  const HeaderList trailers = up.trailers();
  if (!ec) co_await x.down.endResponse(trailers, ec);
  if (ec) {
    x.error = "downstream: " + ec.message();
    x.flags.add(ResponseFlag::kDownstreamConnectionTermination);
    up.abort();
    co_return;
  }
  // A connection still owed part of the request body cannot carry the next request.
  if (auto connection = pump.delivered() ? up.reusableConnection() : nullptr)
    pool_.keepIdle(std::move(connection), x.cluster->reuse);
}

asio::awaitable<void> Router::relayUpgrade(ProxiedRequest& x, UpstreamCall& up) {
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

}  // namespace sluice::waypoint
