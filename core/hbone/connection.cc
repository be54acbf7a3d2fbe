#include "core/hbone/connection.h"

#include <sys/socket.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include "core/identity/tls.h"
#include "core/net/authority.h"
#include "core/net/signal.h"
#include "core/net/sockets.h"

namespace sluice::hbone {

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace asio::experimental::awaitable_operators;

namespace {
constexpr size_t kReadChunk = 64 * 1024;
constexpr size_t kWriteBatch = 256 * 1024;
}  // namespace

Connection::Connection(std::unique_ptr<TlsTransport> tls, std::unique_ptr<h2::Session> session,
                       identity::SpiffeId peer)
    : tls_(std::move(tls)), session_(std::move(session)), peer_(std::move(peer)) {}

Connection::~Connection() = default;

void Connection::start() {
  session_->setFlusher([this] { return flushNow(); });
  asio::co_spawn(
      tls_->socket().get_executor(),
      [self = shared_from_this()]() -> asio::awaitable<void> {
        // The write loop starts first so our SETTINGS and window leave before any input is
        // parsed (input may already be buffered with the handshake's last flight).
        co_await (self->writeLoop() || self->readLoop());
        self->close();
      },
      asio::detached);
}

void Connection::drain() {
  draining_ = true;
  session_->shutdown();
  if (session_->activeStreams() == 0) close();
}

void Connection::close() {
  if (closed_) return;
  closed_ = true;
  auto keep_alive = shared_from_this();  // the close callback may drop the last owner
  session_->fail("HBONE connection closed");
  tls_->close();
  if (auto callback = std::move(on_closed_)) callback();
}

asio::awaitable<void> Connection::readLoop() {
  std::vector<uint8_t> buffer(kReadChunk);
  for (;;) {
    boost::system::error_code ec;
    const size_t n = co_await tls_->readSome(asio::buffer(buffer), ec);
    if (ec) {
      session_->fail(ec == asio::error::eof || ec == asio::ssl::error::stream_truncated
                         ? "peer closed the HBONE connection"
                         : "HBONE connection read failed: " + ec.message());
      co_return;
    }
    if (auto received = session_->receive({buffer.data(), n}); !received) {
      // Stop reading; the write loop (the only writer) sends the GOAWAY nghttp2 queued and
      // then ends, which ends this loop too.
      protocol_error_ = received.message();
      session_->outputReady().notify();
      net::Signal never(tls_->socket().get_executor());
      for (;;) co_await never.wait();
    }
  }
}

asio::awaitable<void> Connection::writeLoop() {
  std::string out;
  for (;;) {
    out.clear();
    while (session_->produce(out, kWriteBatch) || tls_->hasPendingOutput()) {
      boost::system::error_code ec;
      writing_ = true;
      co_await tls_->write(asio::buffer(out), ec);
      writing_ = false;
      if (ec) {
        session_->fail("HBONE connection write failed: " + ec.message());
        co_return;
      }
      out.clear();
    }
    if (!write_error_.empty()) {
      session_->fail(write_error_);
      co_return;
    }
    if (!protocol_error_.empty()) {
      session_->fail(protocol_error_);
      co_return;
    }
    if (session_->failed() || !session_->alive()) co_return;
    if (draining_ && session_->activeStreams() == 0) co_return;
    co_await session_->outputReady().wait();
  }
}

bool Connection::flushNow() {
  // While a batch is on its way, or once the connection is ending, the write loop decides.
  if (writing_ || closed_ || session_->failed() || !write_error_.empty() ||
      !protocol_error_.empty())
    return false;
  flush_out_.clear();
  if (session_->produce(flush_out_, kWriteBatch) || tls_->hasPendingOutput()) {
    boost::system::error_code ec;
    const bool sent = tls_->writeNow(asio::buffer(flush_out_), ec);
    if (ec) write_error_ = "HBONE connection write failed: " + ec.message();
    // A full batch may have more behind it: the write loop carries on.
    if (!sent || flush_out_.size() >= kWriteBatch) return false;
  }
  // A session with nothing left to do ends the connection: the write loop's decision.
  return session_->alive() && !(draining_ && session_->activeStreams() == 0);
}

asio::awaitable<Result<std::shared_ptr<Connection>>> dial(asio::any_io_executor ex,
                                                          tcp::endpoint peer_address,
                                                          std::shared_ptr<asio::ssl::context> tls,
                                                          std::vector<identity::SpiffeId> expected,
                                                          DialOptions options) {
  const std::string where = net::formatAuthority(peer_address);
  auto connected = co_await net::connectSocket(ex, peer_address, options.sockets, options.timeout);
  if (!connected)
    co_return makeError(
        "HBONE dial " + where + ": " + connected.message() +
        " (is the peer's HBONE port reachable? maybe a NetworkPolicy blocks 15008)");
  auto transport =
      std::make_unique<TlsTransport>(std::move(*connected), *tls, TlsTransport::Side::kClient);
  asio::steady_timer handshake_deadline(ex, options.timeout);
  auto timed_out = std::make_shared<bool>(false);
  auto finished = std::make_shared<bool>(false);
  handshake_deadline.async_wait(
      [t = transport.get(), timed_out, finished](boost::system::error_code w) {
        if (w || *finished) return;
        *timed_out = true;
        boost::system::error_code ignored;
        t->socket().cancel(ignored);
      });
  identity::expectPeer(transport->native_handle(), expected);
  const boost::system::error_code ec = co_await transport->handshake();
  *finished = true;
  handshake_deadline.cancel();
  if (ec || *timed_out) {
    std::string reason = identity::verificationFailure(transport->native_handle());
    if (reason.empty()) reason = *timed_out ? "TLS handshake timed out" : ec.message();
    co_return makeError("HBONE dial " + where + ": TLS handshake failed: " + reason);
  }
  const unsigned char* alpn = nullptr;
  unsigned alpn_len = 0;
  SSL_get0_alpn_selected(transport->native_handle(), &alpn, &alpn_len);
  if (std::string_view(reinterpret_cast<const char*>(alpn), alpn_len) != "h2")
    co_return makeError("HBONE dial " + where + ": peer did not negotiate ALPN h2");
  auto peer = identity::peerIdentity(transport->native_handle());
  if (!peer) co_return makeError("HBONE dial " + where + ": " + peer.message());

  auto session = h2::Session::create(ex, h2::Role::kClient, options.session);
  if (!session) co_return session.error();
  auto connection =
      std::make_shared<Connection>(std::move(transport), std::move(*session), std::move(*peer));
  connection->start();
  co_return connection;
}

}  // namespace sluice::hbone
