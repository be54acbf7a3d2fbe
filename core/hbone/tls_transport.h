// TlsTransport: TLS over a TCP socket through memory BIOs, batching records per system call.
//
// Asio's ssl::stream moves one TLS record (16 KiB) per read or write system call; a tunnel
// moving bulk data pays that on every record. Here SSL_write fills an unbounded memory BIO and
// the whole batch of records leaves in one write; reads take up to 256 KiB of ciphertext at
// once. Single-threaded, one reader and one writer at a time (they may overlap).
#pragma once

#include <openssl/ssl.h>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/system/error_code.hpp>
#include <memory>
#include <vector>

namespace sluice::hbone {

class TlsTransport {
 public:
  enum class Side { kClient, kServer };

  TlsTransport(boost::asio::ip::tcp::socket socket, boost::asio::ssl::context& context, Side side);
  ~TlsTransport();
  TlsTransport(const TlsTransport&) = delete;
  TlsTransport& operator=(const TlsTransport&) = delete;

  boost::asio::awaitable<boost::system::error_code> handshake();
  // Returns decrypted bytes (at least one), or 0 with ec (eof on a clean close).
  boost::asio::awaitable<size_t> readSome(boost::asio::mutable_buffer buffer,
                                          boost::system::error_code& ec);
  // Encrypts all of `data` and writes the records in as few system calls as the kernel allows.
  boost::asio::awaitable<void> write(boost::asio::const_buffer data, boost::system::error_code& ec);
  // Encrypts all of `data` and sends what the socket takes without waiting; true when every
  // record has left. What is left stays queued for the next write(). Not while write() is under
  // way (the records would overtake the batch it is sending).
  bool writeNow(boost::asio::const_buffer data, boost::system::error_code& ec);
  // Writes records produced outside write() (e.g. a TLS 1.3 KeyUpdate answered while reading).
  bool hasPendingOutput() const;

  SSL* native_handle() { return ssl_; }
  boost::asio::ip::tcp::socket& socket() { return socket_; }
  void close();

 private:
  boost::asio::awaitable<void> flush(boost::system::error_code& ec);
  boost::asio::awaitable<void> fill(boost::system::error_code& ec);
  bool encrypt(boost::asio::const_buffer data, boost::system::error_code& ec);

  boost::asio::ip::tcp::socket socket_;
  SSL* ssl_ = nullptr;
  BIO* in_ = nullptr;   // ciphertext from the peer (owned by ssl_)
  BIO* out_ = nullptr;  // ciphertext to the peer (owned by ssl_)
  BIO* spare_ = nullptr;  // the other output BIO, swapped in while out_'s bytes are written
  size_t out_sent_ = 0;   // bytes at the head of out_ that writeNow() already sent
  std::vector<char> read_buffer_;
};

}  // namespace sluice::hbone
