// A small HTTP/1.1 server for the admin (15000), metrics (15020) and readiness (15021) ports.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/result.h"

namespace sluice::admin {

// Protections against slow or hostile clients; the defaults suit the admin ports.
struct HttpServerLimits {
  std::size_t header_limit = 8 * 1024;
  std::size_t body_limit = 8 * 1024;
  std::chrono::milliseconds read_timeout{10'000};
  std::size_t max_connections = 128;
};

// Serves fixed GET routes on one TCP endpoint, with keep-alive.
//
// Guarantees, aimed at slow or hostile clients on a port anyone in the cluster can reach:
// - a request whose header exceeds Limits::header_limit gets 431 and the connection is closed;
//   a body over Limits::body_limit gets 413; any other malformed request gets 400; all three close
//   the connection after the response;
// - a request not read completely within Limits::read_timeout (also the keep-alive idle time) and
//   a response not written within it close the connection, so a stalled client costs one socket
//   for at most that long and never delays other clients;
// - at most Limits::max_connections are served at once; further ones are closed on accept;
// - unknown paths get 404, methods other than GET get 405 (with "Allow: GET").
//
// Threading: all work runs on the executor given to create(), which must not run two handlers at
// once (a single-threaded io_context or a strand). Call start(), stop() and the destructor from
// that executor's thread, or while it is not running. Handlers run on that executor; they are
// never called once stop() has returned.
class HttpServer {
 public:
  // Gets the request target as sent (path and query); returns the status and body.
  using Handler = std::function<std::pair<unsigned, std::string>(std::string_view target)>;
  struct Route {
    std::string path;  // matched exactly against the target's path (the part before '?')
    std::string content_type;
    Handler handler;
  };
  using Limits = HttpServerLimits;

  // Binds and listens now, so a taken port fails start-up; the error names the address.
  static Result<std::unique_ptr<HttpServer>> create(boost::asio::any_io_executor ex,
                                                    const boost::asio::ip::tcp::endpoint& listen,
                                                    std::vector<Route> routes,
                                                    Limits limits = Limits{});

  ~HttpServer();  // stops
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // The bound address (the real port when listening on port 0).
  boost::asio::ip::tcp::endpoint localEndpoint() const;

  // Starts the accept loop. Call once.
  void start();
  // Closes the listener and every open connection. Idempotent.
  void stop();

  struct Impl;  // public only so the .cc's coroutines can name it
  explicit HttpServer(std::shared_ptr<Impl> impl);

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace sluice::admin
