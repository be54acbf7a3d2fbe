// An HBONE server session fed arbitrary bytes from a peer: it must never crash, and every
// request it surfaces is answered as the ztunnel would (200 with data, or a refusal).
#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <string>

#include "core/h2/session.h"
#include "core/h2/stream.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sluice::h2;
  boost::asio::io_context io;
  std::vector<std::shared_ptr<Stream>> streams;
  auto session =
      Session::create(io.get_executor(), Role::kServer, {}, [&](std::shared_ptr<Stream> stream) {
        stream->respond(stream->authority().empty() ? 400 : 200);
        streams.push_back(std::move(stream));
      });
  if (!session) __builtin_trap();
  // Feed in uneven slices, as TLS records would arrive, producing output between them.
  size_t offset = 0;
  size_t slice = 1;
  std::string out;
  while (offset < size) {
    const size_t n = std::min(slice, size - offset);
    if (!(*session)->receive({data + offset, n})) break;
    offset += n;
    slice = slice * 3 + 1;
    out.clear();
    (*session)->produce(out, 1 << 20);
    for (auto& stream : streams) stream->closeWrite();
  }
  io.poll();
  return 0;
}
