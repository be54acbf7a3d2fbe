// TcpListener: a plain TCP accept loop handing each connection to a handler coroutine.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <functional>
#include <memory>

#include "core/net/sockets.h"
#include "core/result.h"

namespace sluice::ztunnel {

class TcpListener {
 public:
  using Handler = std::function<boost::asio::awaitable<void>(boost::asio::ip::tcp::socket)>;

  // Binds now, so a port conflict surfaces at start-up with the address in the message.
  static Result<std::unique_ptr<TcpListener>> create(boost::asio::any_io_executor ex,
                                                     boost::asio::ip::tcp::endpoint listen,
                                                     const net::SocketOptions& options);
  ~TcpListener();

  void start(Handler handler);
  void stop();
  boost::asio::ip::tcp::endpoint localEndpoint() const;
  int nativeHandle() { return acceptor_.native_handle(); }

 private:
  explicit TcpListener(boost::asio::ip::tcp::acceptor acceptor);
  boost::asio::awaitable<void> acceptLoop(Handler handler, std::shared_ptr<bool> alive);

  boost::asio::ip::tcp::acceptor acceptor_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace sluice::ztunnel
