// The one accept loop (core/net/listener.h): what reaches the handler, and what a full fd table
// does to it.
#include "core/net/listener.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <filesystem>
#include <sstream>

#include "core/net/unique_fd.h"
#include "support/async_test.h"

namespace sluice::net {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;

size_t count(const std::string& text, std::string_view needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

// The process's log lines, captured while the test runs.
class CapturedLog {
 public:
  CapturedLog() : previous_(spdlog::default_logger()) {
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(text_);
    spdlog::set_default_logger(std::make_shared<spdlog::logger>("captured", sink));
  }
  ~CapturedLog() { spdlog::set_default_logger(previous_); }
  std::string text() const { return text_.str(); }

 private:
  std::shared_ptr<spdlog::logger> previous_;
  std::ostringstream text_;
};

TEST(AcceptLoop, HandsEachConnectionToTheHandlerWithNoDelaySet) {
  asio::io_context io;
  tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  std::vector<tcp::socket> accepted;
  asio::co_spawn(io,
                 acceptLoop(acceptor, [&](tcp::socket s) { accepted.push_back(std::move(s)); },
                            {.name = "test"}),
                 asio::detached);
  tcp::socket a(io), b(io);
  a.connect(acceptor.local_endpoint());
  b.connect(acceptor.local_endpoint());
  testing::runAsync(io, [&]() -> asio::awaitable<void> {
    EXPECT_TRUE(co_await testing::eventually([&] { return accepted.size() == 2; },
                                             std::chrono::seconds(5)));
    tcp::no_delay no_delay;
    accepted.at(0).get_option(no_delay);
    EXPECT_TRUE(no_delay.value());
    acceptor.close();  // ends the loop
  });
}

TEST(AcceptLoop, AtTheFdLimitItBacksOffInsteadOfSpinningAndLosesNoConnection) {
  CapturedLog log;
  asio::io_context io;
  tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  asio::steady_timer window(io);
  size_t handled = 0;
  AcceptOptions options{.name = "test listener",
                        .backoff = std::chrono::milliseconds(100),
                        .log_interval = std::chrono::seconds(0)};  // every failure logged
  // Given a process with no free file descriptor and a client waiting in the accept queue
  tcp::socket client(io);
  client.connect(acceptor.local_endpoint());
  int highest = 0;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd"))
    highest = std::max(highest, std::stoi(entry.path().filename().string()));
  rlimit saved{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &saved), 0);
  rlimit full = saved;
  full.rlim_cur = highest + 1;
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &full), 0);
  std::vector<UniqueFd> fillers;  // every slot below the limit taken
  for (int fd; (fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0;) fillers.emplace_back(fd);
  ASSERT_EQ(errno, EMFILE);

  // When the loop runs for 350 ms
  asio::co_spawn(io,
                 acceptLoop(
                     acceptor, [&](tcp::socket) { ++handled; }, options),
                 asio::detached);
  testing::runAsync(io, [&]() -> asio::awaitable<void> {
    window.expires_after(std::chrono::milliseconds(350));
    co_await window.async_wait(asio::use_awaitable);
    // Then it tried a few times (every 100 ms), not thousands, and said what failed
    const auto failures = count(log.text(), "test listener: accept failed");
    EXPECT_GE(failures, 1u) << log.text();
    EXPECT_LE(failures, 8u);
    EXPECT_EQ(handled, 0u);
    // And once a descriptor is free again, the waiting client is served
    setrlimit(RLIMIT_NOFILE, &saved);
    EXPECT_TRUE(
        co_await testing::eventually([&] { return handled == 1; }, std::chrono::seconds(5)));
    acceptor.close();
  });
  setrlimit(RLIMIT_NOFILE, &saved);
}

}  // namespace
}  // namespace sluice::net
