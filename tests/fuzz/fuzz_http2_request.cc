// A downstream HTTP/2 connection's bytes, as the waypoint serves them: each request stream is
// turned into the proxy's request head, its body read to the end in small pieces, and a small
// answer with trailers goes back. It must never crash or throw, and it must end: the bytes run
// out, so every stream and the connection have to finish (a stream still waiting on the client
// when its bytes end is reset: it can never complete). The first byte picks how the bytes arrive;
// the rest is what the client sends (preface, frames).
#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <memory>
#include <string>

#include "core/h2/stream.h"
#include "support/memory_byte_stream.h"
#include "waypoint/exchange.h"
#include "waypoint/http2.h"
#include "waypoint/policy/match.h"

namespace {

using namespace sluice::waypoint;
namespace asio = boost::asio;
namespace h2 = sluice::h2;

// Fields RFC 9113 section 8.2.2 makes a request malformed with: nghttp2 must refuse the stream
// before the handler sees it.
bool connectionSpecific(const std::string& name, const std::string& value) {
  return name == "connection" || name == "keep-alive" || name == "proxy-connection" ||
         name == "transfer-encoding" || name == "upgrade" ||
         (name == "te" && !equalsIgnoreCase(value, "trailers"));
}

// What Proxy::serveStream and the start of Proxy::handle do with a stream, minus routing.
asio::awaitable<void> serveStream(std::shared_ptr<h2::Stream> stream) {
  for (const auto& [name, value] : stream->headers())
    if (connectionSpecific(name, value)) __builtin_trap();
  const std::string authority = stream->authority();
  auto request = http2Request(stream);
  const RequestHead& head = request->head();

  // The forwarded fields: the authority as `host`, first and only once; no pseudo-header and
  // nothing hop-by-hop.
  if (head.headers.empty() || head.headers.front().first != "host") __builtin_trap();
  if (!authority.empty() && head.headers.front().second != authority) __builtin_trap();
  for (size_t i = 1; i < head.headers.size(); ++i) {
    const auto& name = head.headers[i].first;
    if (name.starts_with(':') || isHopByHop(name) || equalsIgnoreCase(name, "host"))
      __builtin_trap();
  }
  RequestView view;
  view.method = head.method;
  view.authority = head.headers.front().second;
  view.setTarget(head.target);
  if (!std::string_view(head.target).starts_with(view.path)) __builtin_trap();
  (void)view.host();

  // Odd-sized pieces, so DATA frame boundaries fall everywhere.
  char body[37];
  uint64_t total = 0;
  error_code ec;
  while (!request->bodyDone()) {
    const size_t n = co_await request->readBody(body, sizeof body, ec);
    if (ec) break;
    if (n > sizeof body) __builtin_trap();
    total += n;
  }
  if (ec) {
    request->abort();
    co_return;
  }
  // A body taken as complete is the one announced: nghttp2 resets a stream whose DATA disagrees
  // with its content-length, and the proxy must not forward a truncated body as whole.
  if (head.body.length && total != *head.body.length) __builtin_trap();
  if (head.body.none && total != 0) __builtin_trap();
  for (const auto& [name, value] : request->trailers())
    if (name.starts_with(':')) __builtin_trap();

  // Hop-by-hop fields in the answer too: the HTTP/2 side must drop them, not send them.
  const HeaderList headers = {{"content-type", "text/plain"}, {"connection", "close"}};
  const HeaderList trailers = {{"x-checksum", "1"}, {"transfer-encoding", "chunked"}};
  const std::string text = "ok\n";
  BodySize size;
  size.length = text.size();
  co_await request->sendHead(200, {}, headers, size, ec);
  if (!ec) co_await request->sendData(text, true, ec);
  if (!ec) co_await request->endResponse(trailers, ec);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  // The first byte picks how the rest arrives: all at once (0), or in reads of 1..255 bytes.
  const std::string_view bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  const size_t piece = data[0] != 0 ? data[0] : std::max<size_t>(bytes.size(), 1);
  asio::io_context io;
  size_t started = 0, finished = 0;
  auto client = std::make_unique<sluice::testing::MemoryByteStream>(
      sluice::testing::MemoryByteStream::pieces(bytes, piece));
  auto connection = Http2Connection::create(
      io.get_executor(), h2::Role::kServer, std::move(client),
      [&](std::shared_ptr<h2::Stream> stream) {
        ++started;
        asio::co_spawn(io, serveStream(std::move(stream)), [&](std::exception_ptr error) {
          if (error) __builtin_trap();  // the request path must not throw
          ++finished;
        });
      });
  if (!connection) __builtin_trap();
  bool ended = false;
  asio::co_spawn(io, (*connection)->run(), [&](std::exception_ptr error) {
    if (error) __builtin_trap();
    ended = true;
  });
  // Nothing here waits on the clock: once no handler is ready, whatever still waits is stuck.
  while (io.poll() > 0) {
  }
  if (!ended || finished != started) __builtin_trap();
  return 0;
}
