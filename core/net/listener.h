// The one accept loop of every listener (HBONE, plaintext, capture, the waypoint's plain ports,
// admin), and TcpListener, a plain TCP listener handing each connection to a handler coroutine.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "core/net/sockets.h"
#include "core/result.h"

namespace sluice::net {

struct AcceptOptions {
  std::string name;  // for the log, e.g. "HBONE on 198.18.1.10:15008"
  // After a failed accept (EMFILE, ENFILE, ENOBUFS...) the loop waits this long: the kernel keeps
  // the connection queued, so accepting again at once would spin a core until an fd is free.
  std::chrono::milliseconds backoff{100};
  // A failing accept is logged at most once per interval, with the count since the last line.
  std::chrono::seconds log_interval{10};
};

using AcceptHandler = std::function<void(boost::asio::ip::tcp::socket)>;

// Accepts until the acceptor is closed, handing each connection (TCP_NODELAY set) to
// `on_accept`. When `alive` is given, the loop touches nothing once it reads false, so the
// acceptor's owner may be destroyed after closing it.
boost::asio::awaitable<void> acceptLoop(boost::asio::ip::tcp::acceptor& acceptor,
                                        AcceptHandler on_accept, AcceptOptions options,
                                        std::shared_ptr<const bool> alive = nullptr);

class TcpListener {
 public:
  using Handler = std::function<boost::asio::awaitable<void>(boost::asio::ip::tcp::socket)>;

  // Binds now, so a port conflict surfaces at start-up with the address in the message.
  static Result<std::unique_ptr<TcpListener>> create(boost::asio::any_io_executor ex,
                                                     boost::asio::ip::tcp::endpoint listen,
                                                     const SocketOptions& options);
  ~TcpListener();

  // Serves each connection with `handler`, spawned on the listener's executor.
  void start(Handler handler);
  void stop();
  boost::asio::ip::tcp::endpoint localEndpoint() const;
  int nativeHandle() { return acceptor_.native_handle(); }

 private:
  explicit TcpListener(boost::asio::ip::tcp::acceptor acceptor);

  boost::asio::ip::tcp::acceptor acceptor_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace sluice::net
