// A map pinned by another process (the agent), opened on first use: the pinning may happen after
// the reader starts, and once open each use costs one atomic load.
#pragma once

#include <atomic>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

#include "core/result.h"

namespace sluice::bpf {

// @Table is a map wrapper with `static Result<Table> openPinned(const std::string& pinDirectory)`
// (e.g. OriginalDestinationTable). Until a get() succeeds, every get() tries to open the pin
// again; after that the same table is returned for the object's lifetime, even if the pin is
// removed (the map lives while it is open). Thread-safe.
template <class Table>
class LazyPinnedTable {
 public:
  explicit LazyPinnedTable(std::string pinDirectory) : pinDirectory_(std::move(pinDirectory)) {}
  LazyPinnedTable(const LazyPinnedTable&) = delete;
  LazyPinnedTable& operator=(const LazyPinnedTable&) = delete;

  // The open table, or why it cannot be opened yet (nothing pinned there, no permission).
  Result<const Table*> get() {
    if (const Table* table = ready_.load(std::memory_order_acquire)) return table;
    std::lock_guard lock(opening_);
    if (!table_) {
      auto opened = Table::openPinned(pinDirectory_);
      if (!opened) return opened.error();
      table_.emplace(std::move(*opened));
    }
    ready_.store(&*table_, std::memory_order_release);
    return &*table_;
  }

 private:
  const std::string pinDirectory_;
  std::mutex opening_;
  std::optional<Table> table_;  // set once, under opening_
  std::atomic<const Table*> ready_{nullptr};
};

}  // namespace sluice::bpf
