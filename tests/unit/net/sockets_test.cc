// Writing to TCP sockets on 127.0.0.1 without a trip through the event loop: sendNow() takes
// what the kernel accepts at once, writeAll() waits only for the rest.
#include "core/net/sockets.h"

#include <gtest/gtest.h>

#include <boost/asio/read.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <string>

#include "support/async_test.h"

namespace sluice::net {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;

// A connected pair on loopback; the sender's buffer is kept small so that megabytes never fit.
struct SocketPair {
  explicit SocketPair(asio::io_context& io) : sender(io), receiver(io) {
    tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    sender.connect(acceptor.local_endpoint());
    receiver = acceptor.accept();
    sender.set_option(asio::socket_base::send_buffer_size(64 * 1024));
    receiver.set_option(asio::socket_base::receive_buffer_size(64 * 1024));
    sender.non_blocking(true);
  }
  tcp::socket sender, receiver;
};

std::string pattern(size_t size) {
  std::string out(size, '\0');
  for (size_t i = 0; i < size; ++i) out[i] = static_cast<char>('a' + i * 7 % 26);
  return out;
}

TEST(SendNow, TakesWhatFitsAndReportsAFullSocketWithoutAnError) {
  asio::io_context io;
  SocketPair pair(io);
  const std::string data = pattern(8 * 1024 * 1024);
  boost::system::error_code ec;
  const size_t first = sendNow(pair.sender, asio::buffer(data), ec);
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_GT(first, 0u);
  EXPECT_LT(first, data.size()) << "nobody reads: the socket cannot take 8 MiB";
  EXPECT_EQ(sendNow(pair.sender, asio::buffer(data) + first, ec), 0u);
  EXPECT_FALSE(ec) << "a full socket is not an error: " << ec.message();
}

TEST(WriteAll, DeliversMoreThanTheSocketTakesAtOnceWholeAndInOrder) {
  asio::io_context io;
  SocketPair pair(io);
  const std::string data = pattern(8 * 1024 * 1024);
  std::string received(data.size(), '\0');
  boost::system::error_code write_ec, read_ec;
  bool written = false;
  testing::runAsync(io, [&]() -> asio::awaitable<void> {
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          co_await writeAll(pair.sender, asio::buffer(data), write_ec);
          written = true;
        },
        asio::detached);
    co_await asio::async_read(pair.receiver, asio::buffer(received),
                              asio::redirect_error(asio::use_awaitable, read_ec));
  });
  EXPECT_TRUE(written);
  EXPECT_FALSE(write_ec) << write_ec.message();
  EXPECT_FALSE(read_ec) << read_ec.message();
  EXPECT_TRUE(received == data) << "the bytes arrived changed or out of order";
}

TEST(WriteAll, ReportsAPeerThatResetTheConnection) {
  asio::io_context io;
  SocketPair pair(io);
  pair.receiver.set_option(asio::socket_base::linger(true, 0));
  pair.receiver.close();  // RST
  const std::string data = pattern(1024 * 1024);
  boost::system::error_code ec;
  testing::runAsync(io, [&]() -> asio::awaitable<void> {
    // The first bytes may be accepted before the reset is known; a later write fails.
    for (int i = 0; i < 4 && !ec; ++i) co_await writeAll(pair.sender, asio::buffer(data), ec);
  });
  EXPECT_TRUE(ec == asio::error::connection_reset || ec == asio::error::broken_pipe)
      << ec.message();
}

}  // namespace
}  // namespace sluice::net
