// CertificateManager: one current workload certificate per identity, renewed in the background.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/identity/certificate.h"
#include "core/identity/spiffe_id.h"
#include "core/result.h"

namespace sluice::identity {

// What the manager knows about one identity (for status pages, sluicectl and tests).
struct CertificateStatus {
  SpiffeId id;
  std::shared_ptr<const WorkloadCertificate> certificate;             // null until first issued
  std::optional<std::chrono::system_clock::time_point> next_renewal;  // next (re)issue attempt
  int consecutive_failures = 0;  // failed renewals since the last success
  std::string last_error;        // of the last failed attempt, "" after a success
};

// Guarantees:
// - get() returns a certificate that is valid at the time of the call (by the injected clock),
//   issuing one synchronously on first use or when the current one has expired.
// - Each certificate is renewed at half its life; a failed renewal is retried with exponential
//   backoff (1 s doubling to 5 min, with jitter) and the current certificate stays in force until
//   a new one exists.
// - Swapping replaces a shared_ptr: connections that took a snapshot keep theirs, so rotation
//   never drops a connection. Take a fresh snapshot (get()) for each new connection.
// - get(), forget(), reschedule() and status() are thread-safe. Renewal timers and renewal calls
//   to the issuer run on the control executor. Destroy the manager before that executor's
//   io_context.
class CertificateManager {
 public:
  using Issuer = std::function<Result<std::shared_ptr<const WorkloadCertificate>>(const SpiffeId&)>;
  using Clock = std::function<std::chrono::system_clock::time_point()>;

  struct Options {
    Clock clock;  // wall clock by default; tests inject a fake one and call reschedule()
    std::chrono::milliseconds min_backoff{std::chrono::seconds(1)};
    std::chrono::milliseconds max_backoff{std::chrono::minutes(5)};
    double jitter = 0.2;     // each delay is scaled by a random factor in [1 - jitter, 1 + jitter]
    std::uint64_t seed = 0;  // jitter randomness; 0 picks a random seed
  };

  CertificateManager(boost::asio::any_io_executor control, Issuer issuer);
  CertificateManager(boost::asio::any_io_executor control, Issuer issuer, Options options);
  ~CertificateManager();
  CertificateManager(const CertificateManager&) = delete;
  CertificateManager& operator=(const CertificateManager&) = delete;

  // The current certificate for `id`, issuing it on first use (synchronously, on the caller's
  // thread). Concurrent first calls for one id share a single issuance.
  Result<std::shared_ptr<const WorkloadCertificate>> get(const SpiffeId& id);

  // Stops renewing `id` and drops its certificate (the workload was removed). Connections
  // holding a snapshot keep it; a later get() starts afresh.
  void forget(const SpiffeId& id);

  // Re-reads the clock and re-arms every renewal timer, so attempts that are now due run at
  // once. For wall-clock jumps; tests call it after advancing an injected clock.
  void reschedule();

  std::optional<CertificateStatus> status(const SpiffeId& id) const;
  std::vector<CertificateStatus> statusAll() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

// The delay before retry number `attempt` (0 for the first retry): min_backoff doubled per
// attempt up to max_backoff, scaled by 1 + jitter * (2 * unit_random - 1), kept within
// [min_backoff, max_backoff]. Pure, so the policy is testable on its own.
std::chrono::milliseconds backoffDelay(int attempt, std::chrono::milliseconds min_backoff,
                                       std::chrono::milliseconds max_backoff, double jitter,
                                       double unit_random);

// When a certificate should be renewed: halfway between not_before and not_after.
std::chrono::system_clock::time_point renewalTime(const WorkloadCertificate& cert);

}  // namespace sluice::identity
