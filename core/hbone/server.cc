#include "core/hbone/server.h"

#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "core/h2/stream.h"
#include "core/hbone/connection.h"
#include "core/identity/tls.h"
#include "core/net/authority.h"
#include "core/net/listener.h"
#include "core/net/sockets.h"

namespace sluice::hbone {

namespace asio = boost::asio;
using asio::ip::tcp;

Server::Server(asio::any_io_executor ex, tcp::acceptor acceptor, TlsProvider tls, Handler handler,
               ServerOptions options)
    : ex_(std::move(ex)),
      acceptor_(std::move(acceptor)),
      tls_(std::move(tls)),
      handler_(std::move(handler)),
      options_(options) {}

Server::~Server() { stop(); }

Result<std::unique_ptr<Server>> Server::create(asio::any_io_executor ex, tcp::endpoint listen,
                                               TlsProvider tls, Handler handler,
                                               ServerOptions options) {
  auto acceptor = net::listenOn(ex, listen, options.sockets);
  if (!acceptor) return makeError("HBONE " + acceptor.message());
  return std::unique_ptr<Server>(
      new Server(ex, std::move(*acceptor), std::move(tls), std::move(handler), options));
}

tcp::endpoint Server::localEndpoint() const {
  boost::system::error_code ec;
  return acceptor_.local_endpoint(ec);
}

void Server::start() {
  // `this` outlives the loop's use of it: once stop() clears alive_, the loop touches nothing.
  net::AcceptHandler serve_one = [this](tcp::socket socket) {
    asio::co_spawn(ex_, serve(std::move(socket)), asio::detached);
  };
  asio::co_spawn(
      ex_,
      net::acceptLoop(acceptor_, std::move(serve_one),
                      {.name = "HBONE on " + net::formatAuthority(localEndpoint())}, alive_),
      asio::detached);
}

void Server::stop() {
  *alive_ = false;
  boost::system::error_code ignored;
  acceptor_.close(ignored);
  // Open tunnels carry on to their end: GOAWAY turns new streams away, then each connection
  // closes once its last stream is done.
  auto connections = std::move(connections_);
  connections_.clear();
  for (const auto& connection : connections) connection->drain();
}

asio::awaitable<void> Server::serve(tcp::socket socket) {
  auto alive = alive_;
  boost::system::error_code ec;
  const auto peer_address = socket.remote_endpoint(ec);
  const auto local_address = socket.local_endpoint(ec);
  socket.set_option(tcp::no_delay(true), ec);
  auto tls = tls_();
  if (!tls) co_return;  // no certificate for this listener yet: refuse by closing
  auto stream =
      std::make_unique<TlsTransport>(std::move(socket), *tls, TlsTransport::Side::kServer);

  asio::steady_timer deadline(ex_, options_.handshake_timeout);
  auto finished = std::make_shared<bool>(false);
  deadline.async_wait([t = stream.get(), finished](boost::system::error_code wait_ec) {
    if (!wait_ec && !*finished) {
      boost::system::error_code ignored;
      t->socket().cancel(ignored);
    }
  });
  ec = co_await stream->handshake();
  *finished = true;
  deadline.cancel();
  if (ec) {
    std::string reason = identity::verificationFailure(stream->native_handle());
    spdlog::info("HBONE handshake from {}:{} refused: {}", peer_address.address().to_string(),
                 peer_address.port(), reason.empty() ? ec.message() : reason);
    co_return;
  }
  auto peer = identity::peerIdentity(stream->native_handle());
  if (!peer || !*alive) co_return;

  InboundContext context{*peer, peer_address, local_address};
  auto on_request = [this, alive, context](std::shared_ptr<h2::Stream> request) {
    if (!*alive) {
      request->respond(503);  // the listener is gone (workload removed): no new tunnels
      return;
    }
    asio::co_spawn(ex_, handler_(std::move(request), context), asio::detached);
  };
  auto session =
      h2::Session::create(ex_, h2::Role::kServer, options_.session, std::move(on_request));
  if (!session) co_return;
  auto connection = std::make_shared<Connection>(std::move(stream), std::move(*session), *peer);
  connections_.insert(connection);
  connection->onClosed([this, alive, weak = std::weak_ptr<Connection>(connection)] {
    if (auto closed = weak.lock(); closed && *alive) connections_.erase(closed);
  });
  connection->start();
}

}  // namespace sluice::hbone
