#include "core/hbone/tls_transport.h"

#include <openssl/err.h>

#include <algorithm>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "core/net/sockets.h"

namespace sluice::hbone {

namespace asio = boost::asio;

namespace {
constexpr size_t kReadBatch = 256 * 1024;

boost::system::error_code sslError(SSL* ssl, int ret) {
  const int code = SSL_get_error(ssl, ret);
  if (code == SSL_ERROR_ZERO_RETURN) return asio::error::eof;
  const unsigned long err = ERR_get_error();
  ERR_clear_error();
  if (err != 0)
    return boost::system::error_code(static_cast<int>(err), asio::error::get_ssl_category());
  return asio::ssl::error::stream_truncated;
}
// SSL_get_error needs an empty error queue before each call. Clearing an empty queue walks all
// its slots, which cost as much as the record work for a small message: look first.
void clearErrors() {
  if (ERR_peek_error() != 0) ERR_clear_error();
}

// Empties a memory BIO whose bytes have left. BIO_reset would zero the BIO's whole capacity,
// which one bulk batch grows to hundreds of KiB: measured 25 us per 95-byte record once a 1 MiB
// batch had passed. Reading the bytes out costs only their own size.
void discard(BIO* bio, size_t size) {
  char scratch[16 * 1024];
  while (size > 0) {
    const int n = BIO_read(bio, scratch, static_cast<int>(std::min(size, sizeof scratch)));
    if (n <= 0) break;
    size -= static_cast<size_t>(n);
  }
}
}  // namespace

TlsTransport::TlsTransport(asio::ip::tcp::socket socket, asio::ssl::context& context, Side side)
    : socket_(std::move(socket)), read_buffer_(kReadBatch) {
  ssl_ = SSL_new(context.native_handle());
  in_ = BIO_new(BIO_s_mem());
  out_ = BIO_new(BIO_s_mem());
  // An empty memory BIO reports "retry" rather than end of file.
  BIO_set_mem_eof_return(in_, -1);
  BIO_set_mem_eof_return(out_, -1);
  SSL_set_bio(ssl_, in_, out_);
  spare_ = BIO_new(BIO_s_mem());
  BIO_set_mem_eof_return(spare_, -1);
  // Whether idle record buffers are released (SSL_MODE_RELEASE_BUFFERS) is the context's choice.
  SSL_set_mode(ssl_, SSL_MODE_ENABLE_PARTIAL_WRITE);
  if (side == Side::kServer) {
    SSL_set_accept_state(ssl_);
  } else {
    SSL_set_connect_state(ssl_);
  }
}

TlsTransport::~TlsTransport() {
  SSL_free(ssl_);
  BIO_free(spare_);
}

void TlsTransport::close() {
  boost::system::error_code ignored;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
}

bool TlsTransport::hasPendingOutput() const { return BIO_ctrl_pending(out_) > 0; }

asio::awaitable<void> TlsTransport::flush(boost::system::error_code& ec) {
  while (BIO_ctrl_pending(out_) > 0) {
    // Write straight from the BIO's memory. OpenSSL may add records while the write is under
    // way (a KeyUpdate answered by SSL_read), which could move that memory: so the full BIO is
    // taken out of the SSL first and an empty one put in its place.
    BIO* full = out_;
    BIO_up_ref(full);    // survives SSL_set0_wbio, which drops the SSL's reference
    BIO_up_ref(spare_);  // the SSL's reference to the new output BIO
    SSL_set0_wbio(ssl_, spare_);
    out_ = spare_;
    char* data = nullptr;
    const long size = BIO_get_mem_data(full, &data);
    const auto records = asio::buffer(data, static_cast<size_t>(size)) + out_sent_;
    out_sent_ = 0;
    // Most batches fit the socket at once: then no trip through the event loop.
    co_await net::writeAll(socket_, records, ec);
    discard(full, static_cast<size_t>(size));
    BIO_free(spare_);  // our own reference: the SSL holds it now
    spare_ = full;
    if (ec) co_return;
  }
}

asio::awaitable<void> TlsTransport::fill(boost::system::error_code& ec) {
  const size_t n = co_await socket_.async_read_some(asio::buffer(read_buffer_),
                                                    asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return;
  BIO_write(in_, read_buffer_.data(), static_cast<int>(n));
}

asio::awaitable<boost::system::error_code> TlsTransport::handshake() {
  boost::system::error_code ec;
  for (;;) {
    ERR_clear_error();
    const int ret = SSL_do_handshake(ssl_);
    co_await flush(ec);
    if (ec) co_return ec;
    if (ret == 1) co_return ec;
    const int code = SSL_get_error(ssl_, ret);
    if (code != SSL_ERROR_WANT_READ) co_return sslError(ssl_, ret);
    co_await fill(ec);
    if (ec) co_return ec;
  }
}

asio::awaitable<size_t> TlsTransport::readSome(asio::mutable_buffer buffer,
                                               boost::system::error_code& ec) {
  ec.clear();
  for (;;) {
    // Without ciphertext in hand the read can only ask for more: fetch it first.
    if (BIO_ctrl_pending(in_) == 0 && !SSL_has_pending(ssl_)) {
      co_await fill(ec);
      if (ec) co_return 0;
    }
    clearErrors();
    const int ret = SSL_read(ssl_, buffer.data(), static_cast<int>(buffer.size()));
    if (ret > 0) co_return static_cast<size_t>(ret);
    const int code = SSL_get_error(ssl_, ret);
    if (code != SSL_ERROR_WANT_READ) {
      ec = sslError(ssl_, ret);
      co_return 0;
    }
    co_await fill(ec);
    if (ec) co_return 0;
  }
}

bool TlsTransport::encrypt(asio::const_buffer data, boost::system::error_code& ec) {
  ec.clear();
  const auto* bytes = static_cast<const char*>(data.data());
  size_t left = data.size();
  while (left > 0) {
    clearErrors();
    const int ret = SSL_write(ssl_, bytes, static_cast<int>(std::min<size_t>(left, 1 << 30)));
    if (ret <= 0) {
      ec = sslError(ssl_, ret);
      return false;
    }
    bytes += ret;
    left -= static_cast<size_t>(ret);
  }
  return true;
}

asio::awaitable<void> TlsTransport::write(asio::const_buffer data, boost::system::error_code& ec) {
  if (!encrypt(data, ec)) co_return;
  co_await flush(ec);
}

bool TlsTransport::writeNow(asio::const_buffer data, boost::system::error_code& ec) {
  if (!encrypt(data, ec)) return false;
  char* records = nullptr;
  const size_t size = static_cast<size_t>(BIO_get_mem_data(out_, &records));
  if (size > out_sent_)
    out_sent_ += net::sendNow(socket_, asio::buffer(records + out_sent_, size - out_sent_), ec);
  if (ec || out_sent_ < size) return false;
  discard(out_, size);
  out_sent_ = 0;
  return true;
}

}  // namespace sluice::hbone
