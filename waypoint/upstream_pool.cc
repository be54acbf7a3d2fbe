// The waypoint's upstream connections (see upstream_pool.h): dials, reuse and the idle sweep.
#include "waypoint/upstream_pool.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "core/h2/stream.h"
#include "core/hbone/connection.h"
#include "core/hbone/dialer.h"
#include "core/hbone/metadata.h"
#include "core/net/authority.h"

namespace sluice::waypoint {

namespace asio = boost::asio;

struct UpstreamPool::IdleSweep {
  explicit IdleSweep(const asio::any_io_executor& ex) : timer(ex) {}
  asio::steady_timer timer;
  // The next deadline; max() while no sweeper runs.
  std::chrono::steady_clock::time_point at = std::chrono::steady_clock::time_point::max();
  bool proxy_gone = false;  // the sweeper may wake after the proxy is destroyed
};

UpstreamPool::UpstreamPool(asio::any_io_executor ex, const ProxyOptions& options)
    : ex_(ex), options_(options) {
  hbone::DialOptions dial;
  dial.timeout = options_.connect_timeout;
  dial.sockets = options_.sockets;
  // Every key's source is the waypoint's own identity.
  pool_ = std::make_unique<hbone::Pool>(
      ex_, hbone::tlsDialer(ex_, [this](const auto&) { return options_.client_tls(); },
                            std::move(dial)));
}

UpstreamPool::~UpstreamPool() {
  if (sweep_) {
    sweep_->proxy_gone = true;
    sweep_->timer.cancel();
  }
}

void UpstreamPool::keepIdle(std::unique_ptr<Http1Connection> connection,
                            const ConnectionReuse& reuse) {
  ++connection->requests;
  auto& idle = idle_[connection->address];
  if ((reuse.max_requests != 0 && connection->requests >= reuse.max_requests) ||
      idle.size() >= 64) {
    connection->stream->closeWrite();  // as a client closes a keep-alive connection: FIN
    return;
  }
  if (reuse.idle_timeout.count() > 0) {
    connection->idle_until = std::chrono::steady_clock::now() + reuse.idle_timeout;
    sweepIdleAt(connection->idle_until);
  } else {
    connection->idle_until = std::chrono::steady_clock::time_point::max();
  }
  idle.push_back(std::move(connection));
}

void UpstreamPool::sweepIdleAt(std::chrono::steady_clock::time_point when) {
  if (!sweep_) sweep_ = std::make_shared<IdleSweep>(ex_);
  if (when >= sweep_->at) return;
  const bool running = sweep_->at != std::chrono::steady_clock::time_point::max();
  sweep_->at = when;
  if (running) {
    sweep_->timer.cancel();  // the sweeper waits again, for the earlier deadline
  } else {
    asio::co_spawn(ex_, sweepIdle(sweep_), asio::detached);
  }
}

asio::awaitable<void> UpstreamPool::sweepIdle(std::shared_ptr<IdleSweep> sweep) {
  for (;;) {
    sweep->timer.expires_at(sweep->at);
    error_code ec;
    co_await sweep->timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (sweep->proxy_gone) co_return;
    if (std::chrono::steady_clock::now() < sweep->at) continue;  // re-armed earlier
    sweep->at = closeIdle();
    if (sweep->at == std::chrono::steady_clock::time_point::max()) co_return;
  }
}

std::chrono::steady_clock::time_point UpstreamPool::closeIdle() {
  const auto now = std::chrono::steady_clock::now();
  auto next = std::chrono::steady_clock::time_point::max();
  for (auto it = idle_.begin(); it != idle_.end();) {
    auto& list = it->second;
    std::erase_if(list, [&](std::unique_ptr<Http1Connection>& connection) {
      if (connection->closedByPeer()) return true;
      if (connection->idle_until > now) {
        next = std::min(next, connection->idle_until);
        return false;
      }
      connection->stream->closeWrite();
      return true;
    });
    it = list.empty() ? idle_.erase(it) : std::next(it);
  }
  for (auto it = http2_.begin(); it != http2_.end();) {
    Http2Connection& connection = *it->second;
    const auto idle_until = connection.session().idleSince() + connection.idle_timeout;
    if (!connection.usable()) {
      it = http2_.erase(it);  // ending by itself already (GOAWAY, error)
      continue;
    }
    if (connection.idle_timeout.count() > 0) {
      if (connection.session().activeStreams() > 0) {
        next = std::min(next, now + connection.idle_timeout);  // idle at the earliest from now
      } else if (idle_until <= now) {
        connection.shutdown();
        it = http2_.erase(it);
        continue;
      } else {
        next = std::min(next, idle_until);
      }
    }
    ++it;
  }
  return next;
}

asio::awaitable<Result<std::unique_ptr<ByteStream>>> UpstreamPool::connectUpstream(
    const Endpoint& endpoint, const Downstream& who) {
  if (!endpoint.meshed) {
    auto socket = co_await net::connectSocket(ex_, endpoint.address, options_.sockets,
                                              options_.connect_timeout);
    if (!socket)
      co_return makeError("connect to " + net::formatAuthority(endpoint.address) +
                          " (outside the mesh): " + socket.message());
    co_return wrapSocket(std::move(*socket));
  }
  h2::Headers headers{{"forwarded", hbone::formatForwardedFor(who.source_ip)}};
  // Named, not temporaries: GCC 12 mishandles braced temporaries inside co_await expressions.
  const hbone::PoolKey key{options_.identity, endpoint.identity, endpoint.hbone};
  const std::string authority = net::formatAuthority(endpoint.address);
  auto stream = co_await pool_->open(key, authority, headers);
  if (!stream) co_return stream.error();
  int status = co_await (*stream)->response();
  if (status != 200)
    co_return makeError("HBONE CONNECT to " + authority + " answered " + std::to_string(status));
  co_return wrapStream(*stream);
}

asio::awaitable<Result<std::unique_ptr<UpstreamCall>>> UpstreamPool::call(
    const Endpoint& endpoint, const Downstream& who, bool http2, const ConnectionReuse& reuse,
    bool fresh, bool& reused) {
  reused = false;
  if (http2) {
    auto& slot = http2_[endpoint.address];
    if (slot && reuse.max_requests != 0 && slot->requests >= reuse.max_requests) {
      slot->shutdown();  // its streams finish; the next request opens a fresh connection
      slot.reset();
    }
    if (slot && slot->usable() && !fresh) {
      reused = true;
      co_return http2Call(slot);
    }
    auto opened = co_await connectUpstream(endpoint, who);
    if (!opened) co_return opened.error();
    auto connection = Http2Connection::create(ex_, h2::Role::kClient, std::move(*opened));
    if (!connection) co_return connection.error();
    // A connection that is full or going away finishes its streams and ends by itself.
    if (slot) slot->shutdown();
    slot = *connection;
    slot->idle_timeout = reuse.idle_timeout;
    asio::co_spawn(ex_, slot->run(), asio::detached);
    if (reuse.idle_timeout.count() > 0)
      sweepIdleAt(std::chrono::steady_clock::now() + reuse.idle_timeout);
    co_return http2Call(slot);
  }
  auto& idle = idle_[endpoint.address];
  const auto now = std::chrono::steady_clock::now();
  while (!fresh && !idle.empty()) {
    auto up = std::move(idle.back());
    idle.pop_back();
    if (!up->closedByPeer() && up->idle_until > now) {
      reused = true;
      co_return http1Call(std::move(up), true);
    }
  }
  auto opened = co_await connectUpstream(endpoint, who);
  if (!opened) co_return opened.error();
  auto up = std::make_unique<Http1Connection>();
  up->stream = std::move(*opened);
  up->address = endpoint.address;
  co_return http1Call(std::move(up), false);
}

}  // namespace sluice::waypoint
