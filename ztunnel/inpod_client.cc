#include "ztunnel/inpod_client.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cerrno>
#include <cstring>
#include <spdlog/spdlog.h>

namespace sluice::ztunnel {

namespace asio = boost::asio;

namespace {

Result<int> connectTo(const std::filesystem::path& path) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (path.native().size() >= sizeof address.sun_path)
    return makeError("socket path too long: " + path.string());
  std::strcpy(address.sun_path, path.c_str());
  const int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0) return makeError(std::string("socket: ") + std::strerror(errno));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    const int saved = errno;
    ::close(fd);
    return makeError("connect to the node agent at " + path.string() + ": " +
                     std::strerror(saved));
  }
  return fd;
}

}  // namespace

InPodClient::InPodClient(asio::any_io_executor ex, std::filesystem::path socket_path,
                         Handler handler)
    : ex_(std::move(ex)), path_(std::move(socket_path)), handler_(std::move(handler)) {}

InPodClient::~InPodClient() { stop(); }

void InPodClient::start() { asio::co_spawn(ex_, run(alive_), asio::detached); }

void InPodClient::stop() {
  *alive_ = false;
  if (fd_ >= 0) ::shutdown(fd_, SHUT_RDWR);  // wakes the read wait
}

asio::awaitable<void> InPodClient::run(std::shared_ptr<bool> alive) {
  auto backoff = std::chrono::milliseconds(100);
  asio::steady_timer timer(ex_);
  std::string last_error;
  while (*alive) {
    auto fd = connectTo(path_);
    if (!fd) {
      if (fd.message() != last_error) spdlog::warn("{}; retrying", fd.message());
      last_error = fd.message();
      timer.expires_after(backoff);
      co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
      backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
      continue;
    }
    last_error.clear();
    backoff = std::chrono::milliseconds(100);
    fd_ = *fd;
    asio::posix::stream_descriptor descriptor(ex_, *fd);  // owns the fd from here
    inpod::Message hello;
    hello.type = inpod::Message::Type::kHello;
    if (auto sent = inpod::sendMessage(*fd, hello); !sent) {
      spdlog::warn("node agent: {}", sent.message());
      fd_ = -1;
      continue;
    }
    handler_(hello, -1);
    connected_ = true;
    spdlog::info("connected to the node agent at {}", path_.string());
    while (*alive) {
      auto [ec] = co_await descriptor.async_wait(asio::posix::stream_descriptor::wait_read,
                                                 asio::as_tuple(asio::use_awaitable));
      if (ec || !*alive) break;
      auto received = inpod::receiveMessage(*fd);
      if (!received) {
        spdlog::warn("node agent connection: {}; reconnecting", received.message());
        break;
      }
      inpod::Message ack;
      ack.type = inpod::Message::Type::kAck;
      ack.error = received->invalid.empty() ? handler_(received->message, received->fd)
                                            : "invalid message: " + received->invalid;
      if (!ack.error.empty()) spdlog::warn("node agent message refused: {}", ack.error);
      if (auto sent = inpod::sendMessage(*fd, ack); !sent) {
        spdlog::warn("node agent: {}; reconnecting", sent.message());
        break;
      }
    }
    connected_ = false;
    fd_ = -1;
  }
}

}  // namespace sluice::ztunnel
