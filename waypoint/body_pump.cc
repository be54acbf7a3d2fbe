// The request body's way upstream (see body_pump.h).
#include "waypoint/body_pump.h"

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>

namespace sluice::waypoint {

namespace asio = boost::asio;

BodyPump::BodyPump(asio::any_io_executor ex, DownstreamRequest& down, size_t replay_limit)
    : ex_(ex), down_(down), replay_limit_(replay_limit), may_read_(ex), stopped_(ex) {}

void BodyPump::start() {
  if (down_.bodyDone()) {
    finished_ = true;
    return;
  }
  running_ = true;
  asio::co_spawn(ex_, run(), asio::detached);
}

bool BodyPump::mayRead() const {
  switch (mode_) {
    case Mode::kAttached:
    case Mode::kDraining:
      return true;
    case Mode::kStarting:
      return false;
    case Mode::kDetached:
      return !overflowed_ && kept_.size() < replay_limit_;
  }
  return false;
}

void BodyPump::keep(std::string_view piece) {
  if (overflowed_) return;
  // A piece that went to no attempt is kept even past the limit (only a read begun for an
  // attempt that was abandoned meanwhile can bring one): it exists nowhere else.
  const bool sent = mode_ != Mode::kDetached;
  if (sent && kept_.size() + piece.size() > replay_limit_) {
    overflowed_ = true;
    std::string().swap(kept_);
    return;
  }
  kept_.append(piece);
}

asio::awaitable<void> BodyPump::run() {
  BodyBuffer buffer;
  error_code ec;
  while (!down_.bodyDone()) {
    while (!mayRead()) co_await may_read_.wait();
    // With no attempt to take it, no more is read than the copy has room for.
    const size_t room = mode_ == Mode::kDetached ? replay_limit_ - kept_.size() : buffer.size();
    size_t n = co_await down_.readBody(buffer.data(), std::min(room, buffer.size()), ec);
    if (ec) {
      failure_ = ec.message();
      if (current_) current_->abort();  // the attempt cannot complete: let it see so at once
      break;
    }
    bytes_ += n;
    const std::string_view piece(buffer.data(), n);
    if (n == 0 || mode_ == Mode::kDraining) continue;
    if (mode_ == Mode::kStarting) {
      held_.append(piece);  // attach() sends it after the head, in order
      continue;
    }
    keep(piece);
    if (mode_ != Mode::kAttached) continue;
    // Our own reference: the attempt may be abandoned while this send waits.
    std::shared_ptr<UpstreamCall> up = current_;
    error_code send_ec;
    co_await up->sendBody(piece, send_ec);
    // A failed attempt takes no more; the copy still fills for the next one.
    if (send_ec && up == current_ && mode_ == Mode::kAttached) mode_ = Mode::kDetached;
  }
  if (!ec) {
    finished_ = true;
    if (mode_ == Mode::kAttached && current_) {
      std::shared_ptr<UpstreamCall> up = current_;
      const HeaderList trailers = down_.trailers();
      error_code end_ec;
      co_await up->endBody(trailers, end_ec);
      if (!end_ec && up == current_) ended_ = up.get();
    }
  }
  running_ = false;
  stopped_.notify();
}

asio::awaitable<void> BodyPump::attach(std::shared_ptr<UpstreamCall> up,
                                       const UpstreamRequest& request, error_code& ec) {
  ec = {};
  current_ = up;
  ended_ = nullptr;
  if (failed() || overflowed_) {
    ec = asio::error::connection_aborted;  // the body cannot be sent whole any more
    co_return;
  }
  mode_ = Mode::kStarting;
  // A body with trailers ends on them, after the head and data.
  HeaderList trailers;
  if (finished_) trailers = down_.trailers();
  const bool whole = finished_ && trailers.empty();
  co_await up->start(request, kept_, whole, ec);
  // While the head went out the pump read at most one piece more, into held_.
  if (!held_.empty()) {
    if (!ec) co_await up->sendBody(held_, ec);
    if (ec) mode_ = Mode::kDetached;  // it went nowhere: the copy keeps all of it
    keep(held_);
    held_.clear();
  }
  if (!ec && finished_ && !whole) {
    trailers = down_.trailers();
    co_await up->endBody(trailers, ec);
  }
  if (up != current_) co_return;  // detached meanwhile
  if (!ec && finished_) ended_ = up.get();
  mode_ = ec ? Mode::kDetached : Mode::kAttached;
  may_read_.notify();
}

void BodyPump::detach() {
  current_.reset();
  ended_ = nullptr;
  if (mode_ != Mode::kDraining) mode_ = Mode::kDetached;
  may_read_.notify();
}

asio::awaitable<void> BodyPump::stop(std::chrono::milliseconds grace) {
  current_.reset();
  mode_ = Mode::kDraining;
  may_read_.notify();
  if (!running_) co_return;
  asio::steady_timer timer(ex_, grace);
  auto waiting = std::make_shared<bool>(true);
  timer.async_wait([this, waiting](error_code timer_ec) {
    if (!timer_ec && *waiting) down_.abort();  // the pending read ends with an error
  });
  while (running_) co_await stopped_.wait();
  *waiting = false;
}

}  // namespace sluice::waypoint
