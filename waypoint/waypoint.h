// sluice-waypoint: the L7 proxy of a namespace (a Gateway of class sluice-waypoint). It takes
// HBONE tunnels on 15008 under its own SPIFFE identity, serves the HTTP inside them through
// the Proxy, and dials endpoints over HBONE. The configuration (a YAML directory) is compiled
// into routes on every change; new requests use the new routes, requests in flight finish
// with the ones they started with.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <memory>
#include <vector>

#include "core/result.h"
#include "waypoint/options.h"

namespace sluice::waypoint {

class Waypoint {
 public:
  // Loads the CA, the configuration and binds every listener (errors surface here).
  static Result<std::unique_ptr<Waypoint>> create(WaypointOptions options);
  ~Waypoint();
  void start();
  void stop();
  boost::asio::ip::tcp::endpoint hboneEndpoint() const;
  std::vector<boost::asio::ip::tcp::endpoint> plainEndpoints() const;

  struct Impl;

 private:
  explicit Waypoint(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace sluice::waypoint
