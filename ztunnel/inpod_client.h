// InPodClient: ztunnel's side of the node agent protocol (core/inpod/protocol.h). Connects to
// the agent's socket, reconnecting with backoff, hands each message to a handler and answers
// with its ack. Runs on the control executor.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <atomic>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include "core/inpod/protocol.h"

namespace sluice::ztunnel {

class InPodClient {
 public:
  // Returns the ack's error text ("" on success). Owns `fd` (-1 when none came).
  using Handler = std::function<std::string(const inpod::Message&, int fd)>;

  InPodClient(boost::asio::any_io_executor ex, std::filesystem::path socket_path, Handler handler);
  ~InPodClient();

  void start();
  void stop();  // on the executor's thread, or while it is not running
  bool connected() const { return connected_; }

 private:
  boost::asio::awaitable<void> run(std::shared_ptr<bool> alive);

  boost::asio::any_io_executor ex_;
  std::filesystem::path path_;
  Handler handler_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  std::atomic<bool> connected_{false};
  int fd_ = -1;
};

}  // namespace sluice::ztunnel
