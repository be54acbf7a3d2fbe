#include "core/identity/certificate_manager.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cmath>
#include <exception>
#include <map>
#include <mutex>
#include <random>

namespace sluice::identity {

namespace asio = boost::asio;
using std::chrono::system_clock;
using CertPtr = std::shared_ptr<const WorkloadCertificate>;

std::chrono::milliseconds backoffDelay(int attempt, std::chrono::milliseconds min_backoff,
                                       std::chrono::milliseconds max_backoff, double jitter,
                                       double unit_random) {
  const double lo = static_cast<double>(min_backoff.count());
  const double hi = static_cast<double>(std::max(max_backoff, min_backoff).count());
  const double base = std::min(hi, lo * std::exp2(std::clamp(attempt, 0, 62)));
  const double factor = 1.0 + std::clamp(jitter, 0.0, 1.0) * (2.0 * unit_random - 1.0);
  return std::chrono::milliseconds(std::llround(std::clamp(base * factor, lo, hi)));
}

system_clock::time_point renewalTime(const WorkloadCertificate& cert) {
  return cert.not_before + (cert.not_after - cert.not_before) / 2;
}

struct CertificateManager::Impl : std::enable_shared_from_this<Impl> {
  struct Entry {
    explicit Entry(SpiffeId i) : id(std::move(i)) {}
    const SpiffeId id;
    std::mutex issue_mu;  // one issuance at a time per identity
    // Guarded by Impl::mu.
    CertPtr current;
    std::optional<system_clock::time_point> next_attempt;
    int failures = 0;
    std::string last_error;
    bool forgotten = false;
    // Touched only on the control executor.
    std::optional<asio::steady_timer> timer;
  };
  using EntryPtr = std::shared_ptr<Entry>;

  Impl(asio::any_io_executor c, Issuer i, Options o)
      : control(std::move(c)), issuer(std::move(i)), options(std::move(o)) {
    if (!options.clock) options.clock = [] { return system_clock::now(); };
    rng.seed(options.seed != 0 ? options.seed : std::random_device{}());
  }

  system_clock::time_point now() const { return options.clock(); }

  // Calls the issuer and checks that it answered the question asked.
  Result<CertPtr> callIssuer(const SpiffeId& id) {
    try {
      auto issued = issuer(id);
      if (!issued) return issued;
      if (!*issued) return Error{"issuer returned no certificate"};
      if ((*issued)->id != id) {
        return Error{"issuer returned a certificate for " + (*issued)->id.str()};
      }
      return issued;
    } catch (const std::exception& e) {
      return Error{std::string("issuer threw: ") + e.what()};
    }
  }

  // Renewal at half life, but never sooner than min_backoff from now, so an issuer handing out
  // nearly expired certificates cannot make us spin.
  system_clock::time_point nextRenewal(const WorkloadCertificate& cert) const {
    return std::max(renewalTime(cert), now() + options.min_backoff);
  }

  bool usable(const CertPtr& cert) const { return cert && now() < cert->not_after; }

  Result<CertPtr> get(const SpiffeId& id) {
    if (id.empty()) return Error{"cannot get a certificate for an empty identity"};
    EntryPtr entry;
    {
      std::lock_guard lock(mu);
      auto& slot = entries[id];
      if (!slot) slot = std::make_shared<Entry>(id);
      entry = slot;
      if (usable(entry->current)) return entry->current;
    }
    std::lock_guard issuing(entry->issue_mu);
    {
      std::lock_guard lock(mu);
      if (usable(entry->current)) return entry->current;  // another caller got there first
    }
    auto issued = callIssuer(id);
    std::lock_guard lock(mu);
    if (!issued) {
      entry->last_error = issued.message();
      if (entry->current) {
        return Error{"certificate for " + id.str() + " expired at " +
                     formatUtc(entry->current->not_after) +
                     " and cannot be renewed: " + issued.message()};
      }
      return Error{"cannot issue a certificate for " + id.str() + ": " + issued.message()};
    }
    entry->current = *issued;
    entry->failures = 0;
    entry->last_error.clear();
    if (!entry->forgotten && !stopped) {
      entry->next_attempt = nextRenewal(**issued);
      asio::post(control, [self = shared_from_this(), entry] { self->arm(entry); });
    }
    return entry->current;
  }

  // Control executor: (re)starts the entry's timer for its next attempt.
  void arm(const EntryPtr& entry) {
    system_clock::time_point deadline;
    {
      std::lock_guard lock(mu);
      if (entry->forgotten || stopped || !entry->next_attempt) {
        if (entry->timer) entry->timer->cancel();
        return;
      }
      deadline = *entry->next_attempt;
    }
    auto delay = std::max(deadline - now(), system_clock::duration::zero());
    if (!entry->timer) entry->timer.emplace(control);
    entry->timer->expires_after(std::chrono::duration_cast<asio::steady_timer::duration>(delay));
    entry->timer->async_wait([self = shared_from_this(), entry](boost::system::error_code ec) {
      if (ec != asio::error::operation_aborted) self->onTimer(entry);
    });
  }

  // Control executor: renews if due (timers can fire early relative to an injected clock).
  void onTimer(const EntryPtr& entry) {
    {
      std::lock_guard lock(mu);
      if (entry->forgotten || stopped || !entry->next_attempt) return;
      if (now() < *entry->next_attempt) {
        // Not due yet by our clock: wait the rest.
        asio::post(control, [self = shared_from_this(), entry] { self->arm(entry); });
        return;
      }
    }
    std::lock_guard issuing(entry->issue_mu);
    {
      std::lock_guard lock(mu);
      if (entry->forgotten || stopped) return;
    }
    auto issued = callIssuer(entry->id);
    {
      std::lock_guard lock(mu);
      if (entry->forgotten || stopped) return;
      if (issued) {
        entry->current = *issued;
        entry->failures = 0;
        entry->last_error.clear();
        entry->next_attempt = nextRenewal(**issued);
        spdlog::info("identity: renewed certificate for {} (valid until {})", entry->id.str(),
                     formatUtc((*issued)->not_after));
      } else {
        const auto delay = backoffDelay(entry->failures, options.min_backoff, options.max_backoff,
                                        options.jitter, unitRandom());
        ++entry->failures;
        entry->last_error = issued.message();
        entry->next_attempt = now() + delay;
        spdlog::warn(
            "identity: cannot renew certificate for {} (attempt {}): {}; retrying in {} ms, the "
            "current certificate stays in use until {}",
            entry->id.str(), entry->failures, issued.message(), delay.count(),
            entry->current ? formatUtc(entry->current->not_after) : std::string("-"));
      }
    }
    arm(entry);
  }

  // Called with mu held.
  double unitRandom() { return std::uniform_real_distribution<double>(0.0, 1.0)(rng); }

  void forget(const SpiffeId& id) {
    EntryPtr entry;
    {
      std::lock_guard lock(mu);
      auto it = entries.find(id);
      if (it == entries.end()) return;
      entry = std::move(it->second);
      entries.erase(it);
      entry->forgotten = true;
      entry->next_attempt.reset();
    }
    asio::post(control, [entry] {
      if (entry->timer) entry->timer->cancel();
    });
  }

  void reschedule() {
    std::vector<EntryPtr> all;
    {
      std::lock_guard lock(mu);
      for (const auto& [id, entry] : entries) all.push_back(entry);
    }
    asio::post(control, [self = shared_from_this(), all = std::move(all)] {
      for (const auto& entry : all) self->arm(entry);
    });
  }

  void shutdown() {
    std::vector<EntryPtr> all;
    {
      std::lock_guard lock(mu);
      stopped = true;
      for (auto& [id, entry] : entries) {
        entry->forgotten = true;
        all.push_back(std::move(entry));
      }
      entries.clear();
    }
    asio::post(control, [all = std::move(all)] {
      for (const auto& entry : all) {
        if (entry->timer) entry->timer->cancel();
      }
    });
  }

  static CertificateStatus statusOf(const Entry& entry) {
    return CertificateStatus{entry.id, entry.current, entry.next_attempt, entry.failures,
                             entry.last_error};
  }

  const asio::any_io_executor control;
  const Issuer issuer;
  Options options;
  mutable std::mutex mu;
  std::map<SpiffeId, EntryPtr> entries;  // guarded by mu
  std::mt19937_64 rng;                   // guarded by mu
  bool stopped = false;                  // guarded by mu
};

CertificateManager::CertificateManager(asio::any_io_executor control, Issuer issuer)
    : CertificateManager(std::move(control), std::move(issuer), Options{}) {}

CertificateManager::CertificateManager(asio::any_io_executor control, Issuer issuer,
                                       Options options)
    : impl_(std::make_shared<Impl>(std::move(control), std::move(issuer), std::move(options))) {}

CertificateManager::~CertificateManager() { impl_->shutdown(); }

Result<CertPtr> CertificateManager::get(const SpiffeId& id) { return impl_->get(id); }

void CertificateManager::forget(const SpiffeId& id) { impl_->forget(id); }

void CertificateManager::reschedule() { impl_->reschedule(); }

std::optional<CertificateStatus> CertificateManager::status(const SpiffeId& id) const {
  std::lock_guard lock(impl_->mu);
  auto it = impl_->entries.find(id);
  if (it == impl_->entries.end()) return std::nullopt;
  return Impl::statusOf(*it->second);
}

std::vector<CertificateStatus> CertificateManager::statusAll() const {
  std::lock_guard lock(impl_->mu);
  std::vector<CertificateStatus> out;
  out.reserve(impl_->entries.size());
  for (const auto& [id, entry] : impl_->entries) out.push_back(Impl::statusOf(*entry));
  return out;
}

}  // namespace sluice::identity
