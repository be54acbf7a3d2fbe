#include "waypoint/policy/outlier_detector.h"

#include <algorithm>

namespace sluice::waypoint {

OutlierDetector::OutlierDetector(OutlierConfig config, size_t endpoints)
    : config_(config), hosts_(endpoints) {}

void OutlierDetector::resize(size_t endpoints) { hosts_.resize(endpoints); }

bool OutlierDetector::reportResponse(size_t endpoint, int status, Clock::time_point now) {
  if (endpoint >= hosts_.size() || isEjected(endpoint, now)) return false;
  if (status >= 500 && status <= 599)
    return recordFailure(endpoint, status == 502 || status == 503 || status == 504, now);
  hosts_[endpoint].consecutive_5xx = 0;
  hosts_[endpoint].consecutive_gateway = 0;
  return false;
}

bool OutlierDetector::reportLocalFailure(size_t endpoint, Clock::time_point now) {
  if (endpoint >= hosts_.size() || isEjected(endpoint, now)) return false;
  return recordFailure(endpoint, true, now);
}

bool OutlierDetector::recordFailure(size_t endpoint, bool gateway_error, Clock::time_point now) {
  Host& host = hosts_[endpoint];
  ++host.consecutive_5xx;
  if (gateway_error) ++host.consecutive_gateway;
  bool tripped = (config_.consecutive_5xx > 0 && host.consecutive_5xx >= config_.consecutive_5xx) ||
                 (config_.consecutive_gateway_errors > 0 &&
                  host.consecutive_gateway >= config_.consecutive_gateway_errors);
  if (!tripped || !mayEject(now)) return false;
  ++host.times_ejected;
  Duration length = config_.base_ejection_time * host.times_ejected;
  if (config_.max_ejection_time > Duration::zero())
    length = std::min(length, std::max(config_.max_ejection_time, config_.base_ejection_time));
  host.ejected_until = now + length;
  host.consecutive_5xx = 0;
  host.consecutive_gateway = 0;
  return true;
}

bool OutlierDetector::mayEject(Clock::time_point now) const {
  if (config_.max_ejection_percent == 0) return false;
  size_t ejected = ejectedCount(now);
  if (ejected == 0) return !hosts_.empty();
  // (ejected + 1) / hosts <= max_percent / 100, in integers.
  return (ejected + 1) * 100 <= static_cast<size_t>(config_.max_ejection_percent) * hosts_.size();
}

bool OutlierDetector::isEjected(size_t endpoint, Clock::time_point now) const {
  const auto& until = hosts_[endpoint].ejected_until;
  return until && now < *until;
}

size_t OutlierDetector::ejectedCount(Clock::time_point now) const {
  size_t n = 0;
  for (size_t i = 0; i < hosts_.size(); ++i) n += isEjected(i, now);
  return n;
}

void OutlierDetector::ejectedMask(Clock::time_point now, std::vector<uint8_t>& ejected) const {
  ejected.resize(hosts_.size());
  for (size_t i = 0; i < hosts_.size(); ++i) ejected[i] = isEjected(i, now);
}

std::optional<Clock::time_point> OutlierDetector::ejectedUntil(size_t endpoint) const {
  return hosts_[endpoint].ejected_until;
}

}  // namespace sluice::waypoint
