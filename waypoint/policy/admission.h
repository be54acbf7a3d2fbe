// A counted slot (one pending request, one active request, one retry in flight), held for as
// long as the ticket lives. The shared building block of circuit breakers and retry budgets.
//
// Guarantees: a ticket decrements its counter exactly once (on destruction, move-assignment or
// release()); a moved-from ticket holds nothing. Counters live on one worker (no locks on the
// data path), and the owner of the counter must outlive its tickets.
#pragma once

#include <cstdint>
#include <utility>

namespace sluice::waypoint {

class Ticket {
 public:
  Ticket() = default;
  explicit Ticket(uint32_t& counter) : counter_(&counter) { ++counter; }
  Ticket(Ticket&& other) noexcept : counter_(std::exchange(other.counter_, nullptr)) {}
  Ticket& operator=(Ticket&& other) noexcept {
    if (this != &other) {
      release();
      counter_ = std::exchange(other.counter_, nullptr);
    }
    return *this;
  }
  Ticket(const Ticket&) = delete;
  Ticket& operator=(const Ticket&) = delete;
  ~Ticket() { release(); }

  void release() {
    if (counter_) --*std::exchange(counter_, nullptr);
  }
  bool held() const { return counter_ != nullptr; }

 private:
  uint32_t* counter_ = nullptr;
};

}  // namespace sluice::waypoint
