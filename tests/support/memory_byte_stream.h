// A waypoint ByteStream over memory, for tests and fuzz targets: reads serve the given chunks
// in order (one read never crosses a chunk, so a test decides exactly how bytes arrive), then
// end of stream; writes are recorded. Nothing here ever waits.
#pragma once

#include <algorithm>
#include <boost/asio/error.hpp>
#include <cstring>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "waypoint/http1.h"

namespace sluice::testing {

class MemoryByteStream final : public waypoint::ByteStream {
 public:
  explicit MemoryByteStream(std::vector<std::string> chunks = {})
      : chunks_(chunks.begin(), chunks.end()) {}

  // `bytes` split into reads of at most `piece` bytes each (1: one byte per read).
  static std::vector<std::string> pieces(std::string_view bytes, size_t piece) {
    std::vector<std::string> out;
    for (size_t at = 0; at < bytes.size(); at += piece)
      out.emplace_back(bytes.substr(at, std::min(piece, bytes.size() - at)));
    return out;
  }

  boost::asio::awaitable<size_t> read(boost::asio::mutable_buffer buffer,
                                      waypoint::error_code& ec) override {
    ec = {};
    if (aborted_) {
      ec = boost::asio::error::connection_reset;
      co_return 0;
    }
    while (!chunks_.empty() && chunks_.front().empty()) chunks_.pop_front();
    if (chunks_.empty()) {
      ec = boost::asio::error::eof;
      co_return 0;
    }
    std::string& front = chunks_.front();
    const size_t n = std::min(buffer.size(), front.size());
    std::memcpy(buffer.data(), front.data(), n);
    front.erase(0, n);
    ++reads_;
    co_return n;
  }

  boost::asio::awaitable<void> write(boost::asio::const_buffer data,
                                     waypoint::error_code& ec) override {
    ec = aborted_ || write_closed_ ? waypoint::error_code(boost::asio::error::broken_pipe)
                                   : waypoint::error_code();
    if (!ec) written_.append(static_cast<const char*>(data.data()), data.size());
    co_return;
  }

  void closeWrite() override { write_closed_ = true; }
  void abort() override { aborted_ = true; }
  bool closedByPeer() const override { return aborted_; }

  const std::string& written() const { return written_; }
  bool writeClosed() const { return write_closed_; }
  bool aborted() const { return aborted_; }
  size_t reads() const { return reads_; }

 private:
  std::deque<std::string> chunks_;
  std::string written_;
  bool write_closed_ = false;
  bool aborted_ = false;
  size_t reads_ = 0;
};

}  // namespace sluice::testing
