// How every Sluice daemon waits to be stopped: SIGINT and SIGTERM are blocked before any thread
// starts (threads inherit the mask, so no worker is interrupted) and taken synchronously by the
// main thread; SIGPIPE is ignored, since a peer closing a socket is an error code, not a death.
#pragma once

#include <pthread.h>

#include <csignal>

namespace sluice {

class StopSignals {
 public:
  // Construct first thing in main(), before any thread exists.
  StopSignals() {
    sigemptyset(&set_);
    sigaddset(&set_, SIGINT);
    sigaddset(&set_, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set_, nullptr);
    std::signal(SIGPIPE, SIG_IGN);
  }
  // Blocks until SIGINT or SIGTERM arrives; returns which.
  int wait() {
    int received = 0;
    sigwait(&set_, &received);
    return received;
  }

 private:
  sigset_t set_;
};

}  // namespace sluice
