// A downstream connection's bytes, as the waypoint reads them: request heads, then bodies in
// small pieces, message after message until the connection errs or ends. It must never crash,
// never hand out more body bytes than asked for, and always end (every read makes progress).
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <string>

#include "support/memory_byte_stream.h"
#include "waypoint/http1.h"

namespace {

using namespace sluice::waypoint;
namespace asio = boost::asio;

asio::awaitable<void> readAll(ByteStream& stream) {
  boost::beast::flat_buffer in;
  // Odd-sized pieces, so chunk boundaries fall everywhere.
  char body[37];
  for (int message = 0; message < 1000; ++message) {
    RequestReader reader(stream, in);
    if (co_await reader.readHeader()) co_return;
    HeaderList headers = forwardableHeaders(reader.message());
    for (const auto& [name, value] : headers)
      if (isHopByHop(name)) __builtin_trap();
    while (!reader.done()) {
      error_code ec;
      const size_t n = co_await reader.readBody(body, sizeof body, ec);
      if (ec) co_return;
      if (n > sizeof body) __builtin_trap();
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  // The first byte picks how the bytes arrive: all at once, or in reads of 1..255 bytes.
  const size_t piece = size > 0 && data[0] != 0 ? data[0] : (size > 0 ? size : 1);
  sluice::testing::MemoryByteStream stream(sluice::testing::MemoryByteStream::pieces(bytes, piece));
  asio::io_context io;
  bool finished = false;
  asio::co_spawn(io, readAll(stream), [&](std::exception_ptr error) {
    if (error) __builtin_trap();  // the request path must not throw
    finished = true;
  });
  io.run();
  if (!finished) __builtin_trap();  // the stream never waits, so the reader must have ended
  return 0;
}
