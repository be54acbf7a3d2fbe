// The dialer both daemons give their HBONE pool: mTLS as the pool key's source identity, to the
// key's address, accepting only the key's destination identity.
#pragma once

#include <functional>
#include <memory>

#include "core/hbone/connection.h"
#include "core/hbone/pool.h"

namespace sluice::hbone {

// The client TLS context that presents `source`'s certificate; null when there is none (the dial
// then fails with "no certificate for <source>").
using ClientTls =
    std::function<std::shared_ptr<boost::asio::ssl::context>(const identity::SpiffeId& source)>;

Pool::Dialer tlsDialer(boost::asio::any_io_executor ex, ClientTls client_tls, DialOptions options);

}  // namespace sluice::hbone
