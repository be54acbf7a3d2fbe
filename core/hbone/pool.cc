#include "core/hbone/pool.h"

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "core/h2/stream.h"
#include "core/hbone/connection.h"
#include "core/net/signal.h"

namespace sluice::hbone {

namespace asio = boost::asio;

struct Pool::Pooled {
  explicit Pooled(const asio::any_io_executor& ex) : dialed(ex) {}
  std::shared_ptr<Connection> connection;  // null while dialing, or after a failed dial
  bool dialing = true;
  std::string dial_error;
  size_t pending = 0;  // callers holding a slot on this connection before their stream exists
  net::Signal dialed;

  bool usable() const {
    return connection && !connection->closed() && connection->session().acceptsNewStreams();
  }
};

Pool::Pool(asio::any_io_executor ex, Dialer dialer, PoolOptions options)
    : ex_(ex), dialer_(std::move(dialer)), options_(options), sweep_timer_(ex) {
  asio::co_spawn(ex_, sweepIdle(), asio::detached);
}

Pool::~Pool() {
  *alive_ = false;
  sweep_timer_.cancel();
  closeAll();
}

size_t Pool::connectionCount() const {
  size_t count = 0;
  for (const auto& [key, list] : entries_)
    for (const auto& pooled : list)
      if (pooled->connection && !pooled->connection->closed()) ++count;
  return count;
}

void Pool::closeAll() {
  auto entries = std::move(entries_);
  entries_.clear();
  for (auto& [key, list] : entries)
    for (auto& pooled : list)
      if (pooled->connection) pooled->connection->close();
}

void Pool::prune(std::vector<std::shared_ptr<Pooled>>& list) {
  std::erase_if(list, [](const auto& pooled) {
    return !pooled->dialing && (!pooled->connection || pooled->connection->closed());
  });
}

asio::awaitable<Result<std::shared_ptr<h2::Stream>>> Pool::open(const PoolKey& key,
                                                                const std::string& authority,
                                                                const h2::Headers& headers) {
  auto alive = alive_;
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto& list = entries_[key];
    prune(list);
    std::shared_ptr<Pooled> chosen;
    for (const auto& pooled : list) {
      const size_t limit = pooled->connection ? pooled->connection->session().streamLimit()
                                              : options_.max_streams_per_connection;
      const size_t used = (pooled->connection ? pooled->connection->session().activeStreams() : 0) +
                          pooled->pending;
      const bool room = used < std::min(limit, options_.max_streams_per_connection);
      if (room && (pooled->dialing || pooled->usable())) {
        chosen = pooled;
        break;
      }
    }
    if (!chosen) {
      chosen = std::make_shared<Pooled>(ex_);
      list.push_back(chosen);
      asio::co_spawn(ex_, dialInto(key, chosen), asio::detached);
    }
    ++chosen->pending;
    while (chosen->dialing) co_await chosen->dialed.wait();
    --chosen->pending;
    if (!*alive) co_return makeError("connection pool closed");
    if (!chosen->connection) co_return makeError(chosen->dial_error);
    if (!chosen->usable()) continue;  // closed or full meanwhile: pick again
    auto stream = chosen->connection->session().connect(authority, headers);
    if (stream) co_return std::move(*stream);
  }
  co_return makeError("no pooled HBONE connection to " + key.destination.str() +
                      " accepted a new stream");
}

asio::awaitable<void> Pool::dialInto(PoolKey key, std::shared_ptr<Pooled> pooled) {
  auto result = co_await dialer_(key);
  if (result) {
    pooled->connection = std::move(*result);
  } else {
    pooled->dial_error = result.message();
  }
  pooled->dialing = false;
  pooled->dialed.notify();
}

asio::awaitable<void> Pool::sweepIdle() {
  auto alive = alive_;
  const auto period = std::clamp<std::chrono::milliseconds>(
      options_.idle_timeout / 4, std::chrono::milliseconds(10), std::chrono::seconds(30));
  while (*alive) {
    sweep_timer_.expires_after(period);
    co_await sweep_timer_.async_wait(asio::as_tuple(asio::use_awaitable));
    if (!*alive) co_return;
    const auto now = std::chrono::steady_clock::now();
    for (auto& [key, list] : entries_) {
      for (auto& pooled : list) {
        auto& connection = pooled->connection;
        if (connection && !connection->closed() && pooled->pending == 0 &&
            connection->session().activeStreams() == 0 &&
            now - connection->session().idleSince() >= options_.idle_timeout)
          connection->close();
      }
      prune(list);
    }
    std::erase_if(entries_, [](const auto& entry) { return entry.second.empty(); });
  }
}

}  // namespace sluice::hbone
