// Splice: copies bytes both ways between a TCP socket and an HBONE tunnel (a CONNECT stream)
// until both directions end, carrying half-close and resets across (a reset stream aborts the
// socket with RST, an aborted socket resets the stream).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "core/net/splice.h"

namespace sluice::h2 {
class Stream;
}

namespace sluice::hbone {

boost::asio::awaitable<net::SpliceResult> splice(boost::asio::ip::tcp::socket& local,
                                                 h2::Stream& tunnel, net::ByteCounter count = {});

}  // namespace sluice::hbone
