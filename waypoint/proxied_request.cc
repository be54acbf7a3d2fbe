// The waypoint's own answers to a request (see proxied_request.h).
#include "waypoint/proxied_request.h"

namespace sluice::waypoint {

namespace asio = boost::asio;
using telemetry::ResponseFlags;

asio::awaitable<bool> respond(ProxiedRequest& x, int status, ResponseFlags flags,
                              const HeaderList* extra) {
  x.status = status;
  x.flags = flags;
  HeaderList headers = extra ? *extra : HeaderList();
  error_code ec;
  const HeaderList no_trailers;
  if (x.grpc) {
    // gRPC clients read the outcome from grpc-status: a trailers-only answer, as the gRPC
    // spec has servers send errors (the HTTP status stays in metrics and the access log).
    headers.emplace_back("content-type", "application/grpc");
    headers.emplace_back("grpc-status", std::to_string(grpcStatusForHttp(status)));
    headers.emplace_back("grpc-message", grpcMessage(x.reply_body));
    BodySize none;
    none.none = true;
    co_await x.down.sendHead(200, {}, headers, none, ec);
    if (!ec) co_await x.down.endResponse(no_trailers, ec);
    co_return !ec && x.down.reusable();
  }
  headers.emplace_back("content-type", "text/plain");
  BodySize size;
  size.length = x.reply_body.size();
  co_await x.down.sendHead(status, {}, headers, size, ec);
  if (!ec) co_await x.down.sendData(x.reply_body, true, ec);
  if (!ec) co_await x.down.endResponse(no_trailers, ec);
  x.response_bytes = x.reply_body.size();
  co_return !ec && x.down.reusable();
}

asio::awaitable<void> fail(ProxiedRequest& x, int status, ResponseFlags flags) {
  x.reply_body = x.error + "\n";
  co_await respond(x, status, flags);
}

}  // namespace sluice::waypoint
