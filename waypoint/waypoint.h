// sluice-waypoint: the L7 proxy of a namespace (a Gateway of class sluice-waypoint). It takes
// HBONE tunnels on 15008 under its own SPIFFE identity, serves the HTTP inside them through
// the Proxy, and dials endpoints over HBONE. The configuration (a YAML directory) is compiled
// into routes on every change; new requests use the new routes, requests in flight finish
// with the ones they started with.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/result.h"

namespace sluice::waypoint {

struct WaypointOptions {
  std::string name;             // the Gateway's name
  std::string ns;               // and namespace
  std::string service_account;  // default: the name (what Istio's waypoint deployments use)
  std::string trust_domain = "cluster.local";
  std::filesystem::path config_dir;
  std::filesystem::path ca_dir;
  boost::asio::ip::tcp::endpoint hbone{boost::asio::ip::address_v4::any(), 15008};
  std::optional<boost::asio::ip::tcp::endpoint> admin{
      boost::asio::ip::tcp::endpoint{boost::asio::ip::address_v4::loopback(), 15000}};
  std::optional<boost::asio::ip::tcp::endpoint> metrics{
      boost::asio::ip::tcp::endpoint{boost::asio::ip::address_v4::any(), 15020}};
  std::optional<boost::asio::ip::tcp::endpoint> readiness{
      boost::asio::ip::tcp::endpoint{boost::asio::ip::address_v4::any(), 15021}};
  // Plain HTTP listeners that act as if every request came in a tunnel to `vip` (benchmarks
  // and tests of the proxy alone; no identity, so only policies without principals admit).
  struct PlainListener {
    boost::asio::ip::tcp::endpoint listen, vip;
  };
  std::vector<PlainListener> plain;
  std::string access_log = "-";  // a file, "-" for stdout, "" for none
  std::string log_level = "info";
  std::chrono::milliseconds connect_timeout{10000};
};

// Parses argv; on --help returns an error holding the usage text and sets `help`.
Result<WaypointOptions> parseWaypointOptions(int argc, char** argv, bool& help);

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
