// Connection: drives one HBONE session over mutual TLS: a read loop feeding the session and a
// write loop draining it, both on the connection's executor.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/h2/session.h"
#include "core/hbone/tls_transport.h"
#include "core/identity/spiffe_id.h"
#include "core/net/sockets.h"
#include "core/result.h"

namespace sluice::hbone {

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(std::unique_ptr<TlsTransport> tls, std::unique_ptr<h2::Session> session,
             identity::SpiffeId peer);
  ~Connection();

  // Runs the session until the peer or close() ends it; returns at once.
  void start();
  // Sends GOAWAY, then closes once open streams are done.
  void drain();
  // Closes now; open streams are reset.
  void close();

  h2::Session& session() { return *session_; }
  const identity::SpiffeId& peer() const { return peer_; }
  bool closed() const { return closed_; }
  // Called once when the connection has closed (pool and server bookkeeping).
  void onClosed(std::function<void()> callback) { on_closed_ = std::move(callback); }

 private:
  boost::asio::awaitable<void> readLoop();
  boost::asio::awaitable<void> writeLoop();
  // The session's flusher: sends its output at once unless the write loop is busy or must look.
  bool flushNow();

  std::unique_ptr<TlsTransport> tls_;
  std::unique_ptr<h2::Session> session_;
  identity::SpiffeId peer_;
  bool closed_ = false;
  bool draining_ = false;
  std::string protocol_error_;  // set by the read loop; the write loop flushes, then closes
  std::string write_error_;     // set by flushNow(); the write loop closes
  bool writing_ = false;        // the write loop is sending a batch
  std::string flush_out_;       // flushNow()'s output, kept to reuse its memory
  std::function<void()> on_closed_;
};

struct DialOptions {
  std::chrono::milliseconds timeout{10000};  // TCP connect + TLS handshake
  net::SocketOptions sockets;                // mark (capture never takes it), namespace
  h2::SessionSettings session;
};

// Opens an mTLS HBONE connection to `peer_address` whose certificate must carry one of
// `expected` identities; the error says what to check (reachability of 15008, identity).
boost::asio::awaitable<Result<std::shared_ptr<Connection>>> dial(
    boost::asio::any_io_executor ex, boost::asio::ip::tcp::endpoint peer_address,
    std::shared_ptr<boost::asio::ssl::context> tls, std::vector<identity::SpiffeId> expected,
    DialOptions options);

}  // namespace sluice::hbone
