#include "waypoint/deadlines.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace sluice::waypoint {

Deadlines::Deadlines(const boost::asio::any_io_executor& ex) : timer_(ex) {}

Deadlines::~Deadlines() {
  *alive_ = false;
  entries_.clear();  // unlinks the entries still armed: their destructors find nothing to undo
}

void Deadlines::arm(Entry& entry, Clock::time_point at) {
  if (entry.is_linked()) entry.unlink();
  entry.at_ = at;
  entries_.insert(entry);
  if (at < timer_at_) setTimer(at);
}

void Deadlines::setTimer(Clock::time_point at) {
  timer_at_ = at;
  // A wait under way ends with operation_aborted; one that had already completed is for a later
  // time than `at`, so when it runs fire() finds due entries (or none) just the same.
  timer_.expires_at(at);
  timer_.async_wait([this, alive = alive_](boost::system::error_code ec) {
    if (!ec && *alive) fire();
  });
}

void Deadlines::fire() {
  timer_at_ = Clock::time_point::max();
  const auto now = Clock::now();
  // One at a time from the front: expire() may disarm (destroy) other entries.
  while (!entries_.empty() && entries_.begin()->at_ <= now) {
    Entry& due = *entries_.begin();
    entries_.erase(entries_.begin());
    due.expire();
  }
  if (!entries_.empty() && entries_.begin()->at_ < timer_at_) setTimer(entries_.begin()->at_);
}

boost::asio::awaitable<void> sleepFor(boost::asio::any_io_executor ex, Duration duration) {
  if (duration <= Duration::zero()) co_return;
  boost::asio::steady_timer timer(ex, duration);
  co_await timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
}

}  // namespace sluice::waypoint
