// Pool: reuses HBONE connections per (source identity, destination identity, address).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <tuple>
#include <vector>

#include "core/h2/session.h"
#include "core/identity/spiffe_id.h"
#include "core/result.h"

namespace sluice::h2 {
class Stream;
}  // namespace sluice::h2

namespace sluice::hbone {

class Connection;

// Connections are never shared between source identities: a pooled connection authenticates
// as one workload, so the key carries the source.
struct PoolKey {
  identity::SpiffeId source;
  identity::SpiffeId destination;
  boost::asio::ip::tcp::endpoint address;
  bool operator==(const PoolKey&) const = default;
  bool operator<(const PoolKey& other) const {
    return std::tie(source, destination, address) <
           std::tie(other.source, other.destination, other.address);
  }
};

struct PoolOptions {
  size_t max_streams_per_connection = 100;
  std::chrono::milliseconds idle_timeout = std::chrono::minutes(5);
};

// Single-threaded: one pool per worker, used only from that worker's executor.
class Pool {
 public:
  using Dialer =
      std::function<boost::asio::awaitable<Result<std::shared_ptr<Connection>>>(const PoolKey&)>;

  Pool(boost::asio::any_io_executor ex, Dialer dialer, PoolOptions options = {});
  ~Pool();
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  // Opens a CONNECT stream on a connection with room, dialing a new one when none has; callers
  // that arrive while a dial is under way wait for it rather than dialing again.
  boost::asio::awaitable<Result<std::shared_ptr<h2::Stream>>> open(const PoolKey& key,
                                                                   const std::string& authority,
                                                                   const h2::Headers& headers);

  size_t connectionCount() const;
  void closeAll();

 private:
  struct Pooled;
  boost::asio::awaitable<void> dialInto(PoolKey key, std::shared_ptr<Pooled> pooled);
  boost::asio::awaitable<void> sweepIdle();
  void prune(std::vector<std::shared_ptr<Pooled>>& list);

  boost::asio::any_io_executor ex_;
  Dialer dialer_;
  PoolOptions options_;
  std::map<PoolKey, std::vector<std::shared_ptr<Pooled>>> entries_;
  boost::asio::steady_timer sweep_timer_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace sluice::hbone
