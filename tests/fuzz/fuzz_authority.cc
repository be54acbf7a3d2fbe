// The HBONE :authority parser takes whatever a peer sends.
#include <cstdint>
#include <string_view>

#include "core/net/authority.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto parsed = sluice::net::parseAuthority(text);
  if (parsed) {
    // Whatever parses must print back to something that parses to the same endpoint.
    auto again = sluice::net::parseAuthority(sluice::net::formatAuthority(*parsed));
    if (!again || *again != *parsed) __builtin_trap();
  }
  return 0;
}
