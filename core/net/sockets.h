// Opening the sockets ztunnel uses: listeners and outgoing connections, marked so capture never
// takes them, optionally created inside a pod's network namespace.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <cstdint>
#include <functional>

#include "core/result.h"

namespace sluice::net {

struct SocketOptions {
  uint32_t mark = 0;        // SO_MARK (needs CAP_NET_ADMIN); 0: none
  bool reuse_port = false;  // listeners: one per worker on the same address
  // Makes the raw socket (non-blocking, close-on-exec) for an address family, e.g. inside a pod's
  // network namespace; unset: an ordinary socket in the caller's namespace.
  std::function<Result<int>(int domain)> make_socket;
};

Result<boost::asio::ip::tcp::acceptor> listenOn(const boost::asio::any_io_executor& ex,
                                                const boost::asio::ip::tcp::endpoint& endpoint,
                                                const SocketOptions& options);
Result<boost::asio::ip::tcp::socket> openSocket(const boost::asio::any_io_executor& ex,
                                                const boost::asio::ip::tcp& protocol,
                                                const SocketOptions& options);

// Opens a socket (as openSocket) and connects it to `target` within `timeout`. The error is the
// bare reason ("timed out", "Connection refused"): callers say what was being connected.
boost::asio::awaitable<Result<boost::asio::ip::tcp::socket>> connectSocket(
    boost::asio::any_io_executor ex, boost::asio::ip::tcp::endpoint target, SocketOptions options,
    std::chrono::milliseconds timeout);

// Sends what the kernel takes at once, never waiting: returns the bytes sent (0 when the socket
// is full, with ec clear). Latency: a write that completes here needs no trip through the event
// loop, where an async_write completing at once still queues its completion as a handler.
size_t sendNow(boost::asio::ip::tcp::socket& socket, boost::asio::const_buffer data,
               boost::system::error_code& ec);
// Writes all of `data`: sendNow(), then an async_write only for what the socket did not take.
boost::asio::awaitable<void> writeAll(boost::asio::ip::tcp::socket& socket,
                                      boost::asio::const_buffer data,
                                      boost::system::error_code& ec);

}  // namespace sluice::net
