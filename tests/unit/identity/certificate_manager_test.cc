#include "core/identity/certificate_manager.h"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <latch>
#include <thread>

#include "core/identity/ca.h"
#include "unit/identity/test_support.h"

namespace sluice::identity {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using std::chrono::system_clock;
using CertPtr = std::shared_ptr<const WorkloadCertificate>;

// A clock the test moves by hand.
class FakeClock {
 public:
  system_clock::time_point now() const { return system_clock::time_point(since_epoch_.load()); }
  void advanceTo(system_clock::time_point t) { since_epoch_ = t.time_since_epoch(); }
  void advance(system_clock::duration d) { since_epoch_ = since_epoch_.load() + d; }

 private:
  std::atomic<system_clock::duration> since_epoch_{testing::fixedNow().time_since_epoch()};
};

// An issuer backed by a real CA at the fake clock's time, that can be told to fail.
class TestIssuer {
 public:
  TestIssuer(const CertificateAuthority& ca, const FakeClock& clock) : ca_(ca), clock_(clock) {}

  CertificateManager::Issuer issuer() {
    return [this](const SpiffeId& id) -> Result<CertPtr> {
      ++calls;
      if (failing) return Error{"CA unavailable"};
      return ca_.issue(id, 24h, clock_.now());
    };
  }

  std::atomic<int> calls{0};
  std::atomic<bool> failing{false};

 private:
  const CertificateAuthority& ca_;
  const FakeClock& clock_;
};

class CertificateManagerTest : public ::testing::Test {
 protected:
  CertificateManagerTest()
      : ca_(*CertificateAuthority::generate("cluster.local", testing::fixedNow())),
        issuer_(ca_, clock_) {}

  CertificateManager::Options options() {
    CertificateManager::Options o;
    o.clock = [this] { return clock_.now(); };
    o.seed = 42;
    return o;
  }

  // Runs control-executor work until `done` holds; false if that takes more than 5 s.
  template <class Pred>
  bool runUntil(Pred done) {
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      if (ioc_.stopped()) ioc_.restart();
      ioc_.run_one_for(10ms);
    }
    return true;
  }

  // Runs whatever is ready now (posted handlers, timers already due) and nothing else.
  void runReady() {
    if (ioc_.stopped()) ioc_.restart();
    while (ioc_.poll() > 0) {
    }
  }

  system_clock::time_point nextRenewal(const CertificateManager& manager) {
    auto status = manager.status(id_);
    return status && status->next_renewal ? *status->next_renewal : system_clock::time_point{};
  }

  // Moves the clock to the manager's next attempt and waits for that attempt to happen.
  bool advanceToNextAttempt(CertificateManager& manager) {
    const int before = issuer_.calls;
    clock_.advanceTo(nextRenewal(manager));
    manager.reschedule();
    return runUntil([&] { return issuer_.calls > before; });
  }

  asio::io_context ioc_;
  FakeClock clock_;
  CertificateAuthority ca_;
  TestIssuer issuer_;
  const SpiffeId id_ = *SpiffeId::parse("spiffe://cluster.local/ns/shop/sa/cart");
};

TEST_F(CertificateManagerTest, IssuesOnFirstGetAndReusesTheCertificate) {
  CertificateManager manager(ioc_.get_executor(), issuer_.issuer(), options());

  auto first = manager.get(id_);
  auto second = manager.get(id_);

  ASSERT_TRUE(first) << first.message();
  ASSERT_TRUE(second) << second.message();
  EXPECT_EQ(*first, *second);
  EXPECT_EQ((*first)->id, id_);
  EXPECT_EQ(issuer_.calls, 1);
  EXPECT_EQ(nextRenewal(manager), renewalTime(**first));
}

TEST_F(CertificateManagerTest, RenewalIsScheduledAtHalfLife) {
  CertificateManager manager(ioc_.get_executor(), issuer_.issuer(), options());
  auto cert = manager.get(id_);
  ASSERT_TRUE(cert);
  const auto lifetime = (*cert)->not_after - (*cert)->not_before;
  EXPECT_EQ(nextRenewal(manager) - (*cert)->not_before, lifetime / 2);
}

TEST_F(CertificateManagerTest, RenewsAtHalfLifeAndSwapsWithoutTouchingOldSnapshots) {
  CertificateManager manager(ioc_.get_executor(), issuer_.issuer(), options());
  auto old_cert = manager.get(id_);
  ASSERT_TRUE(old_cert);
  const auto renew_at = renewalTime(**old_cert);

  // Given the clock just short of half life, nothing happens.
  clock_.advanceTo(renew_at - 1s);
  manager.reschedule();
  runReady();
  EXPECT_EQ(issuer_.calls, 1);

  // When half life is reached, the certificate is renewed on the control executor.
  clock_.advanceTo(renew_at);
  manager.reschedule();
  ASSERT_TRUE(runUntil([&] { return issuer_.calls == 2; }));

  auto new_cert = manager.get(id_);
  ASSERT_TRUE(new_cert);
  EXPECT_NE(*new_cert, *old_cert);
  EXPECT_GT((*new_cert)->not_after, (*old_cert)->not_after);
  EXPECT_EQ(nextRenewal(manager), renewalTime(**new_cert));
  // A connection that took the old snapshot still holds a complete certificate.
  EXPECT_EQ((*old_cert)->id, id_);
  EXPECT_NE((*old_cert)->leaf, nullptr);
  EXPECT_EQ(issuer_.calls, 2);
}

TEST_F(CertificateManagerTest, KeepsCurrentCertificateAndRetriesWithBackoffWhenIssuerFails) {
  CertificateManager manager(ioc_.get_executor(), issuer_.issuer(), options());
  auto original = manager.get(id_);
  ASSERT_TRUE(original);
  issuer_.failing = true;

  std::vector<std::chrono::milliseconds> delays;
  for (int attempt = 0; attempt < 12; ++attempt) {
    ASSERT_TRUE(advanceToNextAttempt(manager)) << "attempt " << attempt;
    auto status = manager.status(id_);
    ASSERT_TRUE(status);
    EXPECT_EQ(status->consecutive_failures, attempt + 1);
    EXPECT_EQ(status->last_error, "CA unavailable");
    delays.push_back(
        std::chrono::duration_cast<std::chrono::milliseconds>(nextRenewal(manager) - clock_.now()));
    // The old certificate stays in force: same snapshot, no synchronous reissue.
    auto current = manager.get(id_);
    ASSERT_TRUE(current) << current.message();
    EXPECT_EQ(*current, *original);
  }
  // 1 s doubling up to 5 min, each within +-20 % jitter, never below 1 s or above 5 min.
  for (std::size_t i = 0; i < delays.size(); ++i) {
    const double base = std::min(1000.0 * (1 << i), 300000.0);
    EXPECT_GE(delays[i].count(), std::max(1000.0, base * 0.8)) << "retry " << i;
    EXPECT_LE(delays[i].count(), std::min(300000.0, base * 1.2)) << "retry " << i;
  }
  EXPECT_GE(delays[11].count(), 240000);

  // When the issuer recovers, the next retry installs a new certificate and clears the failure.
  issuer_.failing = false;
  ASSERT_TRUE(advanceToNextAttempt(manager));
  auto status = manager.status(id_);
  ASSERT_TRUE(status);
  EXPECT_EQ(status->consecutive_failures, 0);
  EXPECT_EQ(status->last_error, "");
  EXPECT_NE(status->certificate, *original);
  EXPECT_EQ(nextRenewal(manager), renewalTime(*status->certificate));
}

TEST_F(CertificateManagerTest, ForgetStopsRenewal) {
  CertificateManager manager(ioc_.get_executor(), issuer_.issuer(), options());
  auto cert = manager.get(id_);
  ASSERT_TRUE(cert);
  const auto renew_at = renewalTime(**cert);
  runReady();  // the renewal timer is now armed

  manager.forget(id_);
  EXPECT_FALSE(manager.status(id_));
  clock_.advanceTo(renew_at + 1h);
  manager.reschedule();

  // With the timer cancelled the control executor runs out of work instead of renewing.
  ioc_.restart();
  ioc_.run_for(5s);
  EXPECT_TRUE(ioc_.stopped()) << "a renewal timer is still pending";
  EXPECT_EQ(issuer_.calls, 1);

  // A later get() starts afresh.
  auto again = manager.get(id_);
  ASSERT_TRUE(again);
  EXPECT_NE(*again, *cert);
  EXPECT_EQ(issuer_.calls, 2);
}

TEST_F(CertificateManagerTest, ReissuesSynchronouslyOnceTheCertificateHasExpired) {
  CertificateManager manager(ioc_.get_executor(), issuer_.issuer(), options());
  auto cert = manager.get(id_);
  ASSERT_TRUE(cert);

  clock_.advanceTo((*cert)->not_after + 1s);  // e.g. the node was suspended past expiry
  auto fresh = manager.get(id_);

  ASSERT_TRUE(fresh) << fresh.message();
  EXPECT_NE(*fresh, *cert);
  EXPECT_GT((*fresh)->not_after, clock_.now());
}

TEST_F(CertificateManagerTest, ReportsExpiryWhenTheCertificateCannotBeReplaced) {
  CertificateManager manager(ioc_.get_executor(), issuer_.issuer(), options());
  auto cert = manager.get(id_);
  ASSERT_TRUE(cert);
  issuer_.failing = true;

  clock_.advanceTo((*cert)->not_after + 1s);
  auto result = manager.get(id_);

  ASSERT_FALSE(result);
  EXPECT_NE(result.message().find("expired at " + formatUtc((*cert)->not_after)), std::string::npos)
      << result.message();
  EXPECT_NE(result.message().find("CA unavailable"), std::string::npos) << result.message();
}

TEST_F(CertificateManagerTest, ReportsFirstIssuanceFailure) {
  issuer_.failing = true;
  CertificateManager manager(ioc_.get_executor(), issuer_.issuer(), options());

  auto result = manager.get(id_);

  ASSERT_FALSE(result);
  EXPECT_EQ(
      result.message(),
      "cannot issue a certificate for spiffe://cluster.local/ns/shop/sa/cart: CA unavailable");
  // The next get() tries again rather than caching the failure.
  issuer_.failing = false;
  EXPECT_TRUE(manager.get(id_));
  EXPECT_EQ(issuer_.calls, 2);
}

TEST_F(CertificateManagerTest, RejectsCertificateForTheWrongIdentity) {
  CertificateManager manager(
      ioc_.get_executor(),
      [this](const SpiffeId&) -> Result<CertPtr> {
        return ca_.issue(*SpiffeId::parse("spiffe://cluster.local/ns/x/sa/y"), 24h, clock_.now());
      },
      options());

  auto result = manager.get(id_);

  ASSERT_FALSE(result);
  EXPECT_NE(
      result.message().find("issuer returned a certificate for spiffe://cluster.local/ns/x/sa/y"),
      std::string::npos)
      << result.message();
}

TEST_F(CertificateManagerTest, ConcurrentFirstGetsShareOneIssuance) {
  CertificateManager manager(ioc_.get_executor(), issuer_.issuer(), options());
  constexpr int kCallers = 8;
  std::latch start(kCallers);
  std::vector<CertPtr> got(kCallers);
  std::vector<std::thread> threads;
  for (int i = 0; i < kCallers; ++i) {
    threads.emplace_back([&, i] {
      start.arrive_and_wait();
      auto cert = manager.get(id_);
      if (cert) got[i] = *cert;
    });
  }
  for (auto& t : threads) t.join();

  EXPECT_EQ(issuer_.calls, 1);
  for (const auto& cert : got) {
    ASSERT_NE(cert, nullptr);
    EXPECT_EQ(cert, got[0]);
  }
}

TEST_F(CertificateManagerTest, KeepsOneCertificatePerIdentity) {
  CertificateManager manager(ioc_.get_executor(), issuer_.issuer(), options());
  const auto other = *SpiffeId::parse("spiffe://cluster.local/ns/shop/sa/payments");

  auto a = manager.get(id_);
  auto b = manager.get(other);

  ASSERT_TRUE(a && b);
  EXPECT_EQ((*a)->id, id_);
  EXPECT_EQ((*b)->id, other);
  EXPECT_EQ(manager.statusAll().size(), 2u);
}

TEST(BackoffDelayTest, DoublesFromOneSecondUpToFiveMinutes) {
  using std::chrono::milliseconds;
  auto delay = [](int attempt) { return backoffDelay(attempt, 1s, 5min, 0.2, 0.5); };
  EXPECT_EQ(delay(0), milliseconds(1000));
  EXPECT_EQ(delay(1), milliseconds(2000));
  EXPECT_EQ(delay(3), milliseconds(8000));
  EXPECT_EQ(delay(8), milliseconds(256000));
  EXPECT_EQ(delay(9), milliseconds(300000));
  EXPECT_EQ(delay(1000), milliseconds(300000));
}

TEST(BackoffDelayTest, JitterStaysWithinBoundsAndLimits) {
  using std::chrono::milliseconds;
  EXPECT_EQ(backoffDelay(2, 1s, 5min, 0.2, 0.0), milliseconds(3200));
  EXPECT_EQ(backoffDelay(2, 1s, 5min, 0.2, 1.0), milliseconds(4800));
  EXPECT_EQ(backoffDelay(0, 1s, 5min, 0.2, 0.0), milliseconds(1000));     // not below the minimum
  EXPECT_EQ(backoffDelay(20, 1s, 5min, 0.2, 1.0), milliseconds(300000));  // nor above the maximum
}

}  // namespace
}  // namespace sluice::identity
