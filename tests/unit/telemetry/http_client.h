// A real HTTP/1.1 client (Beast's) for the tests of the admin servers.
#pragma once

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <string>

namespace sluice::admin::http_client {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

struct Reply {
  unsigned status = 0;
  std::string body;
  std::string content_type;
  std::string allow;
  bool keep_alive = false;
};

// Sends one request on an open stream and reads the response (a real HTTP client, Beast's).
inline asio::awaitable<Reply> request(beast::tcp_stream& stream, http::verb method,
                                      std::string target) {
  http::request<http::string_body> req{method, target, 11};
  req.set(http::field::host, "127.0.0.1");
  req.keep_alive(true);
  req.prepare_payload();
  co_await http::async_write(stream, req, asio::use_awaitable);
  beast::flat_buffer buffer;
  http::response<http::string_body> res;
  co_await http::async_read(stream, buffer, res, asio::use_awaitable);
  co_return Reply{res.result_int(), res.body(), std::string(res[http::field::content_type]),
                  std::string(res[http::field::allow]), res.keep_alive()};
}

inline asio::awaitable<Reply> fetch(asio::ip::tcp::endpoint ep, http::verb method,
                                    std::string target) {
  beast::tcp_stream stream(co_await asio::this_coro::executor);
  co_await stream.async_connect(ep, asio::use_awaitable);
  co_return co_await request(stream, method, std::move(target));
}

}  // namespace sluice::admin::http_client
