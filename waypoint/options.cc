#include "waypoint/options.h"

#include "core/daemon/flags.h"
#include "core/net/authority.h"

namespace sluice::waypoint {

namespace {

Result<WaypointOptions::PlainListener> parsePlain(std::string_view value) {
  const auto eq = value.find('=');
  if (eq == std::string_view::npos)
    return makeError("'" + std::string(value) + "': expected LISTEN=VIP:PORT");
  auto listen = net::parseListenAddress(value.substr(0, eq));
  auto vip = net::parseAuthority(value.substr(eq + 1));
  if (!listen || !vip)
    return makeError("'" + std::string(value) +
                     "': " + (!listen ? listen.message() : vip.message()));
  return WaypointOptions::PlainListener{*listen, *vip};
}

// The flag table, bound to `options`.
daemon::FlagSet flagTable(WaypointOptions& options) {
  daemon::FlagSet flags(
      "sluice-waypoint --name NAME --namespace NS --config-dir DIR --ca-dir DIR [options]",
      "The L7 proxy of a namespace (a Gateway of class sluice-waypoint): HBONE in under its own\n"
      "SPIFFE identity spiffe://<trust domain>/ns/NS/sa/<service account>, HTTP routing with the\n"
      "VirtualService, DestinationRule, HTTPRoute and AuthorizationPolicy of the configuration,\n"
      "HBONE out to the chosen endpoint.");
  flags.add("--name", "NAME", "the waypoint (Gateway) name", daemon::assign(options.name));
  flags.add("--namespace", "NS", "its namespace", daemon::assign(options.ns));
  flags.add("--service-account", "SA", "its service account (default: NAME)",
            daemon::assign(options.service_account));
  daemon::addSharedFlags(flags, options);
  flags.require("--name").require("--namespace").require("--config-dir").require("--ca-dir");
  flags.add(
      "--hbone", "ADDR:PORT", "HBONE listener",
      [&options](std::string_view value) -> Result<void> {
        auto parsed = net::parseListenAddress(value);
        if (!parsed) return parsed.error();
        options.hbone = *parsed;
        return success();
      },
      net::formatAuthority(options.hbone));
  flags.add("--plain", "LISTEN=VIP:PORT",
            "a plain HTTP listener whose requests act as if sent to VIP:PORT\n"
            "(benchmarks and tests of the proxy alone); repeatable",
            daemon::append(options.plain, parsePlain));
  flags.add("--connect-timeout", "MS", "upstream HBONE connect + handshake",
            daemon::milliseconds(options.connect_timeout, std::chrono::milliseconds(1),
                                 std::chrono::milliseconds(86'400'000)),
            std::to_string(options.connect_timeout.count()));
  return flags;
}

}  // namespace

Result<WaypointOptions> parseWaypointOptions(int argc, char** argv, bool& help) {
  WaypointOptions options;
  if (auto parsed = flagTable(options).parse(argc, argv, help); !parsed) return parsed.error();
  if (options.service_account.empty()) options.service_account = options.name;
  return options;
}

}  // namespace sluice::waypoint
