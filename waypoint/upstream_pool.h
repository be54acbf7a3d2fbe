// UpstreamPool: a worker's connections to endpoints. HBONE connections to each endpoint's
// ztunnel (one per destination identity and address, each carrying many CONNECT streams), plain
// TCP to pods outside the mesh, and over them the application connections an attempt uses:
// one HTTP/2 session per endpoint, multiplexed, or idle HTTP/1.1 connections kept for the next
// request. A single timer closes connections idle past their cluster's idleTimeout.
//
// Guarantees: single-threaded (one pool per worker, no locks); a pooled connection the peer
// closed is never handed out; destroying the pool stops its idle sweeper.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <map>
#include <memory>
#include <vector>

#include "core/hbone/pool.h"
#include "core/result.h"
#include "waypoint/exchange.h"
#include "waypoint/proxy_options.h"
#include "waypoint/service_routes.h"

namespace sluice::waypoint {

class UpstreamPool {
 public:
  // `options` (identity, TLS, connect timeout, socket marks) must outlive the pool.
  UpstreamPool(boost::asio::any_io_executor ex, const ProxyOptions& options);
  ~UpstreamPool();
  UpstreamPool(const UpstreamPool&) = delete;
  UpstreamPool& operator=(const UpstreamPool&) = delete;

  // An attempt's transport: a stream of the endpoint's HTTP/2 session when `http2`, else a
  // pooled HTTP/1.1 connection; `fresh` skips the pooled ones and opens a new connection.
  // `reused` tells whether the call went out on a connection opened before.
  boost::asio::awaitable<Result<std::unique_ptr<UpstreamCall>>> call(const Endpoint& endpoint,
                                                                     const Downstream& who,
                                                                     bool http2,
                                                                     const ConnectionReuse& reuse,
                                                                     bool fresh, bool& reused);

  // Pools an HTTP/1.1 connection for the next request, unless `reuse` says it has done enough.
  void keepIdle(std::unique_ptr<Http1Connection> connection, const ConnectionReuse& reuse);

 private:
  // A CONNECT stream through the pooled HBONE connection to the endpoint's ztunnel, or a plain
  // TCP connection to an endpoint outside the mesh.
  boost::asio::awaitable<Result<std::unique_ptr<ByteStream>>> connectUpstream(
      const Endpoint& endpoint, const Downstream& who);
  // Pooled connections idle past their cluster's idleTimeout are closed by one timer, armed
  // for the earliest deadline.
  struct IdleSweep;
  void sweepIdleAt(std::chrono::steady_clock::time_point when);
  boost::asio::awaitable<void> sweepIdle(std::shared_ptr<IdleSweep> sweep);
  // Closes what has idled too long; returns the next deadline (max(): none).
  std::chrono::steady_clock::time_point closeIdle();

  boost::asio::any_io_executor ex_;
  const ProxyOptions& options_;
  std::unique_ptr<hbone::Pool> pool_;
  std::map<boost::asio::ip::tcp::endpoint, std::vector<std::unique_ptr<Http1Connection>>> idle_;
  std::map<boost::asio::ip::tcp::endpoint, std::shared_ptr<Http2Connection>> http2_;
  std::shared_ptr<IdleSweep> sweep_;
};

}  // namespace sluice::waypoint
