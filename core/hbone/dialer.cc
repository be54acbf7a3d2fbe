#include "core/hbone/dialer.h"

namespace sluice::hbone {
namespace {

// A free coroutine taking everything by value: the dial may outlast the caller's references.
boost::asio::awaitable<Result<std::shared_ptr<Connection>>> dialAs(
    boost::asio::any_io_executor ex, PoolKey key, std::shared_ptr<boost::asio::ssl::context> tls,
    DialOptions options) {
  if (!tls) co_return makeError("no certificate for " + key.source.str());
  std::vector<identity::SpiffeId> expected{key.destination};
  co_return co_await dial(ex, key.address, std::move(tls), std::move(expected), std::move(options));
}

}  // namespace

Pool::Dialer tlsDialer(boost::asio::any_io_executor ex, ClientTls client_tls, DialOptions options) {
  return [ex, client_tls = std::move(client_tls), options = std::move(options)](
             const PoolKey& key) { return dialAs(ex, key, client_tls(key.source), options); };
}

}  // namespace sluice::hbone
