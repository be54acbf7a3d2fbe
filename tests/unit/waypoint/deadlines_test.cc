// The worker's request timeouts on one timer: order, disarming, re-arming, and the cases where
// the timer must move (an earlier deadline armed after a later one) or must not act (entries
// gone, queue gone). Deadlines are tens of milliseconds; the tests wait for expiries, never
// for time.
#include "waypoint/deadlines.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <functional>
#include <string>
#include <vector>

namespace sluice::waypoint {
namespace {

using namespace std::chrono_literals;

struct Recorded {
  std::string name;
  Clock::time_point due, at;
};

class Probe final : public Deadlines::Entry {
 public:
  Probe(std::string name, std::vector<Recorded>& log, std::function<void()> then = {})
      : name_(std::move(name)), log_(log), then_(std::move(then)) {}

 private:
  void expire() override {
    log_.push_back({name_, at(), Clock::now()});
    if (then_) then_();
  }
  std::string name_;
  std::vector<Recorded>& log_;
  std::function<void()> then_;
};

class DeadlinesTest : public ::testing::Test {
 protected:
  // Runs the worker until `count` entries have expired (at most 10 s).
  void runUntilExpired(size_t count) {
    const auto give_up = Clock::now() + 10s;
    while (log_.size() < count && Clock::now() < give_up) io_.run_one_for(100ms);
    ASSERT_EQ(log_.size(), count) << "expected expiries did not happen within 10 s";
  }
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& r : log_) out.push_back(r.name);
    return out;
  }

  boost::asio::io_context io_;
  std::vector<Recorded> log_;
  Deadlines deadlines_{io_.get_executor()};
};

TEST_F(DeadlinesTest, EntriesExpireInTimeOrderAndNeverEarly) {
  const auto now = Clock::now();
  Probe late("late", log_), early("early", log_), middle("middle", log_);
  deadlines_.arm(late, now + 30ms);
  deadlines_.arm(early, now + 10ms);
  deadlines_.arm(middle, now + 20ms);
  runUntilExpired(3);
  EXPECT_EQ(names(), (std::vector<std::string>{"early", "middle", "late"}));
  for (const auto& r : log_) EXPECT_GE(r.at, r.due) << r.name;
  EXPECT_EQ(deadlines_.armedCount(), 0u);
  EXPECT_FALSE(early.armed());
}

TEST_F(DeadlinesTest, AnEarlierDeadlineArmedAfterALaterOneMovesTheTimer) {
  const auto now = Clock::now();
  Probe far("far", log_), soon("soon", log_);
  deadlines_.arm(far, now + 1h);
  deadlines_.arm(soon, now + 10ms);
  runUntilExpired(1);  // within 10 s, so not at the hour
  EXPECT_EQ(names(), std::vector<std::string>{"soon"});
  EXPECT_TRUE(far.armed());
}

TEST_F(DeadlinesTest, ADisarmedEntryNeverExpiresAndTheNextOneStillDoes) {
  const auto now = Clock::now();
  Probe kept("kept", log_);
  {
    // The timer is set for this one; it is disarmed (destroyed) before its time.
    Probe answered("answered", log_);
    deadlines_.arm(answered, now + 10ms);
    deadlines_.arm(kept, now + 40ms);
  }
  EXPECT_EQ(deadlines_.armedCount(), 1u);
  runUntilExpired(1);
  EXPECT_EQ(names(), std::vector<std::string>{"kept"});
}

TEST_F(DeadlinesTest, ReArmingAnEntryReplacesItsDeadline) {
  const auto now = Clock::now();
  Probe moved("moved", log_), marker("marker", log_);
  deadlines_.arm(moved, now + 10ms);
  deadlines_.arm(moved, now + 1h);
  deadlines_.arm(marker, now + 30ms);
  EXPECT_EQ(deadlines_.armedCount(), 2u);
  runUntilExpired(1);
  EXPECT_EQ(names(), std::vector<std::string>{"marker"});
  EXPECT_TRUE(moved.armed());
}

TEST_F(DeadlinesTest, AnExpiryMayDisarmAnotherDueEntry) {
  const auto now = Clock::now();
  auto second = std::make_unique<Probe>("second", log_);
  Probe first("first", log_, [&] { second.reset(); });
  Probe third("third", log_);
  deadlines_.arm(first, now + 10ms);
  deadlines_.arm(*second, now + 11ms);
  deadlines_.arm(third, now + 12ms);
  runUntilExpired(2);
  EXPECT_EQ(names(), (std::vector<std::string>{"first", "third"}));
}

TEST(DeadlinesLifetime, EntriesAndAPendingTimerOutliveTheQueueSafely) {
  boost::asio::io_context io;
  std::vector<Recorded> log;
  Probe entry("entry", log);
  {
    Deadlines deadlines(io.get_executor());
    deadlines.arm(entry, Clock::now() + 1ms);
  }
  EXPECT_FALSE(entry.armed());
  io.run();  // the destroyed timer's handler runs (aborted) and touches nothing
  EXPECT_TRUE(log.empty());
}

}  // namespace
}  // namespace sluice::waypoint
