// BodyPump: a request body on its way upstream. It is read from the client as the current
// attempt takes it (so a gRPC client that waits for answers before sending more is never
// stalled), and kept for a retry while it fits the replay limit (Envoy's way: stream and
// buffer at once). A retry is possible while everything read so far is kept.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <memory>
#include <string>

#include "core/net/signal.h"
#include "waypoint/exchange.h"

namespace sluice::waypoint {

class BodyPump {
 public:
  BodyPump(boost::asio::any_io_executor ex, DownstreamRequest& down, size_t replay_limit);
  BodyPump(const BodyPump&) = delete;
  BodyPump& operator=(const BodyPump&) = delete;
  // stop() must have completed: the reading coroutine refers to this object.
  ~BodyPump() = default;

  // Starts reading (nothing to do for a body that came complete with the head).
  void start();

  // Makes `up` the attempt the body goes to: sends `request`'s head with the body read so far,
  // then the rest as it arrives, then its end. The pump keeps its own reference to `up`, so
  // the caller may drop it at any time after detach().
  boost::asio::awaitable<void> attach(std::shared_ptr<UpstreamCall> up,
                                      const UpstreamRequest& request, error_code& ec);
  // The attempt is abandoned (abort it too, so a send in flight ends). Reading goes on only
  // while what is read can be kept.
  void detach();

  // Every byte read so far is kept: another attempt can send the whole body.
  bool replayable() const { return !overflowed_; }
  // The whole body was read and handed, with its end, to the attempt attached now.
  bool delivered() const { return finished_ && ended_ == current_.get() && current_; }
  // Reading the client's body failed (a malformed chunk, a reset): the request is lost.
  bool failed() const { return !failure_.empty(); }
  const std::string& failure() const { return failure_; }
  uint64_t bytes() const { return bytes_; }

  // Ends the pump once the response is over: a body still arriving is read and dropped for up
  // to `grace` (an HTTP/1.1 client that is cut off mid-upload may lose the response it has
  // not read yet), then the client's request is aborted.
  boost::asio::awaitable<void> stop(std::chrono::milliseconds grace);

 private:
  enum class Mode {
    kDetached,  // no attempt: read only while the copy has room
    kStarting,  // attach() is sending the head and the copy: hold what arrives
    kAttached,  // each piece goes to the attempt as it arrives
    kDraining,  // the response is over: read and drop
  };

  boost::asio::awaitable<void> run();
  bool mayRead() const;
  // Adds a piece read to the copy (or marks the copy incomplete).
  void keep(std::string_view piece);

  boost::asio::any_io_executor ex_;
  DownstreamRequest& down_;
  size_t replay_limit_;
  Mode mode_ = Mode::kDetached;
  std::shared_ptr<UpstreamCall> current_;
  const UpstreamCall* ended_ = nullptr;  // the attempt that was sent the body's end
  std::string kept_;                     // the body so far, while replayable
  std::string held_;                     // read while attach() was sending
  bool overflowed_ = false;
  bool finished_ = false;
  bool running_ = false;
  std::string failure_;
  uint64_t bytes_ = 0;
  net::Signal may_read_;  // the pump waits on it
  net::Signal stopped_;   // stop() waits on it
};

}  // namespace sluice::waypoint
