// Deadlines: a worker's request timeouts on one timer. Almost every timeout is disarmed long
// before it is due (the answer came), and a timer each would cost a timerfd_settime to arm
// and a cancelled-handler dispatch to disarm, per attempt. Here arming is an insertion into an
// intrusive tree and disarming an unlink; the one timer is only ever moved earlier, and when it
// fires for a deadline that was disarmed meanwhile it is set for the next one still armed.
//
// Guarantees: an entry expires (once) no earlier than its time and only while armed; expire()
// runs on the worker, outside arm(). Single-threaded: one queue per worker, like the proxy.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/intrusive/set.hpp>
#include <memory>

#include "waypoint/policy/deadline.h"

namespace sluice::waypoint {

class Deadlines {
 public:
  // Armed while linked; destroying it disarms it.
  class Entry : public boost::intrusive::set_base_hook<
                    boost::intrusive::link_mode<boost::intrusive::auto_unlink>> {
   public:
    virtual ~Entry() = default;
    Clock::time_point at() const { return at_; }
    bool armed() const { return is_linked(); }

   protected:
    Entry() = default;
    Entry(const Entry&) = delete;
    Entry& operator=(const Entry&) = delete;
    // Called when its time has come; the entry is already disarmed.
    virtual void expire() = 0;

   private:
    friend class Deadlines;
    Clock::time_point at_;
  };

  explicit Deadlines(const boost::asio::any_io_executor& ex);
  ~Deadlines();
  Deadlines(const Deadlines&) = delete;
  Deadlines& operator=(const Deadlines&) = delete;

  // Arms `entry` for `at` (re-arming it if it was armed).
  void arm(Entry& entry, Clock::time_point at);
  size_t armedCount() const { return entries_.size(); }

 private:
  struct ByTime {
    bool operator()(const Entry& a, const Entry& b) const { return a.at_ < b.at_; }
  };
  using Set = boost::intrusive::multiset<Entry, boost::intrusive::compare<ByTime>,
                                         boost::intrusive::constant_time_size<false>>;

  void setTimer(Clock::time_point at);
  void fire();

  Set entries_;
  boost::asio::steady_timer timer_;
  Clock::time_point timer_at_ = Clock::time_point::max();  // max(): not set
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

// Waits `duration` on the worker (a fault's delay, a retry's backoff); none at all for zero or
// less.
boost::asio::awaitable<void> sleepFor(boost::asio::any_io_executor ex, Duration duration);

}  // namespace sluice::waypoint
