#include "core/admin/http_server.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <exception>
#include <unordered_set>

#include "core/net/authority.h"
#include "core/net/listener.h"

namespace sluice::admin {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
constexpr auto kAwait = asio::as_tuple(asio::use_awaitable);
// After a failed accept (out of file descriptors, say) wait before retrying rather than spin.
// How long and how much of a rejected request we read and discard before closing.
constexpr std::chrono::milliseconds kLinger{2000};
constexpr std::size_t kLingerBytes = 64 * 1024;

http::response<http::string_body> makeResponse(unsigned version, http::status status,
                                               std::string_view content_type, std::string body,
                                               bool keep_alive) {
  http::response<http::string_body> res{status, version};
  res.set(http::field::content_type, content_type);
  res.keep_alive(keep_alive);
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

http::response<http::string_body> errorResponse(http::status status) {
  std::string body(http::obsolete_reason(status));
  body.push_back('\n');
  return makeResponse(11, status, "text/plain; charset=utf-8", std::move(body), false);
}

}  // namespace

struct HttpServer::Impl {
  Impl(asio::any_io_executor executor, std::vector<Route> r, Limits l)
      : ex(std::move(executor)), acceptor(ex), routes(std::move(r)), limits(l) {}

  void stop() {
    if (stopped) return;
    stopped = true;
    boost::system::error_code ec;
    acceptor.close(ec);
    // Completions of the cancelled operations run later, so the set is stable while we iterate.
    for (beast::tcp_stream* stream : streams) stream->close();
  }

  http::response<http::string_body> respond(const http::request<http::string_body>& req) const {
    if (req.method() != http::verb::get) {
      auto res =
          makeResponse(req.version(), http::status::method_not_allowed, "text/plain; charset=utf-8",
                       "method not allowed\n", req.keep_alive());
      res.set(http::field::allow, "GET");
      return res;
    }
    const std::string_view target = req.target();
    const std::string_view path = target.substr(0, target.find('?'));
    for (const Route& route : routes) {
      if (route.path != path) continue;
      std::pair<unsigned, std::string> out;
      try {
        out = route.handler(target);
      } catch (const std::exception& e) {
        spdlog::error("admin: handler for {} failed: {}", route.path, e.what());
        out = {500, "internal error\n"};
      }
      if (out.first < 100 || out.first > 599) {
        spdlog::error("admin: handler for {} returned status {}", route.path, out.first);
        out = {500, "internal error\n"};
      }
      return makeResponse(req.version(), static_cast<http::status>(out.first), route.content_type,
                          std::move(out.second), req.keep_alive());
    }
    return makeResponse(req.version(), http::status::not_found, "text/plain; charset=utf-8",
                        "not found\n", req.keep_alive());
  }

  asio::any_io_executor ex;
  tcp::acceptor acceptor;
  tcp::endpoint local;
  std::vector<Route> routes;
  Limits limits;
  bool started = false;
  bool stopped = false;
  std::size_t active = 0;                          // accepted connections not yet finished
  std::unordered_set<beast::tcp_stream*> streams;  // those whose session has begun
};

namespace {

using Impl = HttpServer::Impl;

// Keeps Impl's connection bookkeeping right on every way out of a session.
class SessionRegistration {
 public:
  SessionRegistration(Impl& impl, beast::tcp_stream& stream) : impl_(impl), stream_(stream) {
    impl_.streams.insert(&stream_);
  }
  ~SessionRegistration() {
    impl_.streams.erase(&stream_);
    --impl_.active;
  }
  SessionRegistration(const SessionRegistration&) = delete;
  SessionRegistration& operator=(const SessionRegistration&) = delete;

 private:
  Impl& impl_;
  beast::tcp_stream& stream_;
};

// Answers a request the parser rejected, then closes: after a framing error the rest of the
// byte stream cannot be trusted.
asio::awaitable<void> rejectAndClose(Impl& impl, beast::tcp_stream& stream, http::status status) {
  auto res = errorResponse(status);
  stream.expires_after(impl.limits.read_timeout);
  auto [write_ec, written] = co_await http::async_write(stream, res, kAwait);
  if (write_ec) co_return;
  boost::system::error_code ec;
  stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  // Lingering close: closing with the rest of the request unread would make the kernel send a
  // reset, which can destroy the response before the client reads it. Drain a bounded amount.
  stream.expires_after(std::min<std::chrono::milliseconds>(impl.limits.read_timeout, kLinger));
  std::array<char, 4096> discard;
  for (std::size_t drained = 0; drained < kLingerBytes && !impl.stopped;) {
    auto [read_ec, n] = co_await stream.async_read_some(asio::buffer(discard), kAwait);
    if (read_ec) break;
    drained += n;
  }
  stream.close();
}

asio::awaitable<void> serveConnection(std::shared_ptr<Impl> impl, tcp::socket socket) {
  beast::tcp_stream stream(std::move(socket));
  SessionRegistration registration(*impl, stream);
  if (impl->stopped) co_return;

  beast::flat_buffer buffer;
  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(impl->limits.header_limit));
    parser.body_limit(impl->limits.body_limit);
    // One deadline for the whole request, so trickling bytes cannot extend it.
    stream.expires_after(impl->limits.read_timeout);
    auto [read_ec, read_n] = co_await http::async_read(stream, buffer, parser, kAwait);
    if (impl->stopped) co_return;
    if (read_ec) {
      if (read_ec == http::error::header_limit) {
        co_await rejectAndClose(*impl, stream, http::status::request_header_fields_too_large);
      } else if (read_ec == http::error::body_limit) {
        co_await rejectAndClose(*impl, stream, http::status::payload_too_large);
      } else if (read_ec.category() == http::make_error_code(http::error::bad_target).category() &&
                 read_ec != http::error::end_of_stream && read_ec != http::error::partial_message) {
        co_await rejectAndClose(*impl, stream, http::status::bad_request);
      }
      // Otherwise the peer went away, timed out or we are stopping: nothing to answer.
      co_return;
    }

    auto res = impl->respond(parser.get());
    stream.expires_after(impl->limits.read_timeout);
    auto [write_ec, write_n] = co_await http::async_write(stream, res, kAwait);
    if (write_ec || impl->stopped) co_return;
    if (!res.keep_alive()) {
      boost::system::error_code ec;
      stream.socket().shutdown(tcp::socket::shutdown_send, ec);
      co_return;
    }
  }
}

asio::awaitable<void> acceptLoop(std::shared_ptr<Impl> impl) {
  // `impl` is held by this frame: the acceptor outlives the loop.
  net::AcceptHandler serve_one = [impl](tcp::socket socket) {
    if (impl->stopped) return;
    if (impl->active >= impl->limits.max_connections) {
      // Shedding here bounds the sockets and memory a flood of idle clients can hold.
      boost::system::error_code ignored;
      socket.close(ignored);
      return;
    }
    ++impl->active;
    asio::co_spawn(impl->ex, serveConnection(impl, std::move(socket)), [](std::exception_ptr e) {
      if (!e) return;
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        spdlog::error("admin: connection failed: {}", ex.what());
      }
    });
  };
  // A named argument: GCC 12 destroys some temporaries of a co_await expression twice.
  net::AcceptOptions options{.name = "admin on " + net::formatAuthority(impl->local)};
  co_await net::acceptLoop(impl->acceptor, std::move(serve_one), std::move(options));
}

}  // namespace

Result<std::unique_ptr<HttpServer>> HttpServer::create(asio::any_io_executor ex,
                                                       const tcp::endpoint& listen,
                                                       std::vector<Route> routes, Limits limits) {
  const std::string address = net::formatAuthority(listen);
  std::unordered_set<std::string_view> paths;
  for (const Route& route : routes) {
    if (route.path.empty() || route.path.front() != '/' || !route.handler) {
      return Error{"admin server on " + address + ": route \"" + route.path +
                   "\" needs a path starting with '/' and a handler"};
    }
    if (!paths.insert(route.path).second) {
      return Error{"admin server on " + address + ": route " + route.path + " is given twice"};
    }
  }

  auto impl = std::make_shared<Impl>(std::move(ex), std::move(routes), limits);
  boost::system::error_code ec;
  auto failed = [&](std::string_view step) {
    std::string message =
        "admin server: cannot " + std::string(step) + " " + address + ": " + ec.message();
    if (ec == asio::error::address_in_use) {
      message += " (is another sluice or ztunnel process using this port?)";
    } else if (ec == boost::system::errc::address_not_available) {
      message += " (the address is not configured on this host)";
    }
    return Error{std::move(message)};
  };
  impl->acceptor.open(listen.protocol(), ec);
  if (ec) return failed("open a socket for");
  impl->acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (ec) return failed("set SO_REUSEADDR on");
  impl->acceptor.bind(listen, ec);
  if (ec) return failed("bind");
  impl->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return failed("listen on");
  impl->local = impl->acceptor.local_endpoint(ec);
  if (ec) return failed("read the local address of");
  return std::make_unique<HttpServer>(std::move(impl));
}

HttpServer::HttpServer(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpServer::~HttpServer() { stop(); }

tcp::endpoint HttpServer::localEndpoint() const { return impl_->local; }

void HttpServer::start() {
  if (impl_->started || impl_->stopped) return;
  impl_->started = true;
  asio::co_spawn(impl_->ex, acceptLoop(impl_), [](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      spdlog::error("admin: accept loop failed: {}", ex.what());
    }
  });
}

void HttpServer::stop() { impl_->stop(); }

}  // namespace sluice::admin
