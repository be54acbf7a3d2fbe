// SPIFFE IDs come from peers' certificates: the parser takes arbitrary bytes.
#include <cstdint>
#include <string_view>

#include "core/identity/spiffe_id.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto id = sluice::identity::SpiffeId::parse(text);
  if (id) {
    // A parsed identity prints back to itself.
    auto again = sluice::identity::SpiffeId::parse(id->str());
    if (!again || *again != *id) __builtin_trap();
  }
  return 0;
}
