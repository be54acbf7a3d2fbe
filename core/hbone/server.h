// Server: accepts mTLS HBONE connections on one listener and hands each CONNECT stream to a
// handler coroutine.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <set>

#include "core/h2/session.h"
#include "core/identity/spiffe_id.h"
#include "core/net/sockets.h"
#include "core/result.h"

namespace sluice::h2 {
class Stream;
}  // namespace sluice::h2

namespace sluice::hbone {

class Connection;

struct InboundContext {
  identity::SpiffeId peer;  // verified client identity (chain + trust domain)
  boost::asio::ip::tcp::endpoint peer_address;
  boost::asio::ip::tcp::endpoint local_address;
};

struct ServerOptions {
  net::SocketOptions sockets;  // the listener's: mark, SO_REUSEPORT, namespace
  std::chrono::milliseconds handshake_timeout{10000};
  h2::SessionSettings session;
};

class Server {
 public:
  // The handler answers the stream (Stream::respond) and carries the tunnel; it owns the stream.
  using Handler =
      std::function<boost::asio::awaitable<void>(std::shared_ptr<h2::Stream>, InboundContext)>;
  // Gives the TLS context for each new connection, so certificate rotation needs no restart.
  using TlsProvider = std::function<std::shared_ptr<boost::asio::ssl::context>()>;

  static Result<std::unique_ptr<Server>> create(boost::asio::any_io_executor ex,
                                                boost::asio::ip::tcp::endpoint listen,
                                                TlsProvider tls, Handler handler,
                                                ServerOptions options = {});
  ~Server();

  boost::asio::ip::tcp::endpoint localEndpoint() const;
  void start();
  // Stops accepting; open connections are sent GOAWAY and close when their streams end, so
  // removing a workload never cuts a tunnel that is carrying traffic.
  void stop();
  size_t connectionCount() const { return connections_.size(); }

 private:
  Server(boost::asio::any_io_executor ex, boost::asio::ip::tcp::acceptor acceptor, TlsProvider tls,
         Handler handler, ServerOptions options);
  boost::asio::awaitable<void> serve(boost::asio::ip::tcp::socket socket);

  boost::asio::any_io_executor ex_;
  boost::asio::ip::tcp::acceptor acceptor_;
  TlsProvider tls_;
  Handler handler_;
  ServerOptions options_;
  std::set<std::shared_ptr<Connection>> connections_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace sluice::hbone
