// Opening the sockets ztunnel uses: listeners and outgoing connections, marked so capture never
// takes them, optionally created inside a pod's network namespace.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <cstdint>
#include <functional>

#include "core/result.h"

namespace sluice::hbone {

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

}  // namespace sluice::hbone
