// Local-hop acceleration (sockops + sk_msg SOCKHASH redirection) against real sockets: a pod (its
// own netns and cgroup) whose application connects over loopback to "ztunnel's" 127.0.0.1:15001.
// Sockets belong to the cgroup of the process that creates them, so the pod's sockets are made by
// a child process in the pod's cgroup and netns and handed to the test over SCM_RIGHTS; the test
// then drives both ends itself.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <optional>
#include <thread>
#include <vector>

#include "core/bpf/capture_program.h"
#include "core/bpf/local_acceleration.h"
#include "tests/bpf/bpf_test_support.h"

namespace sluice::bpf {
namespace {

using namespace testing;

SocketAddress addr(std::string_view text) { return SocketAddress::parse(text).value(); }

// @count sockets of @family created by a child process inside @cgroup and @netns.
Result<std::vector<UniqueFd>> socketsInPod(const TestCgroup& cgroup, const TestNetns& netns,
                                           int family, int count) {
  int pair[2];
  if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, pair) != 0) {
    return makeError(std::string("socketpair: ") + std::strerror(errno));
  }
  UniqueFd parentEnd(pair[0]);
  UniqueFd childEnd(pair[1]);
  std::string procs = cgroup.path() + "/cgroup.procs";
  pid_t pid = fork();
  if (pid < 0) return makeError(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    // Child: plain system calls only, then _exit.
    int procsFd = open(procs.c_str(), O_WRONLY | O_CLOEXEC);
    std::string self = std::to_string(getpid());
    if (procsFd < 0 || write(procsFd, self.data(), self.size()) < 0) _exit(2);
    close(procsFd);
    if (setns(netns.fd(), CLONE_NEWNET) != 0) _exit(3);
    for (int i = 0; i < count; ++i) {
      int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (fd < 0) _exit(4);
      char byte = 0;
      iovec iov{&byte, 1};
      alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
      msghdr message{};
      message.msg_iov = &iov;
      message.msg_iovlen = 1;
      message.msg_control = control;
      message.msg_controllen = sizeof(control);
      cmsghdr* header = CMSG_FIRSTHDR(&message);
      header->cmsg_level = SOL_SOCKET;
      header->cmsg_type = SCM_RIGHTS;
      header->cmsg_len = CMSG_LEN(sizeof(int));
      std::memcpy(CMSG_DATA(header), &fd, sizeof(int));
      if (sendmsg(childEnd.get(), &message, 0) != 1) _exit(5);
      close(fd);
    }
    _exit(0);
  }
  childEnd = UniqueFd();
  std::vector<UniqueFd> sockets;
  for (int i = 0; i < count; ++i) {
    char byte = 0;
    iovec iov{&byte, 1};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    msghdr message{};
    message.msg_iov = &iov;
    message.msg_iovlen = 1;
    message.msg_control = control;
    message.msg_controllen = sizeof(control);
    pollfd pfd{parentEnd.get(), POLLIN, 0};
    if (poll(&pfd, 1, 10000) != 1 || recvmsg(parentEnd.get(), &message, MSG_CMSG_CLOEXEC) != 1) {
      break;
    }
    cmsghdr* header = CMSG_FIRSTHDR(&message);
    if (header == nullptr || header->cmsg_type != SCM_RIGHTS) break;
    int fd = -1;
    std::memcpy(&fd, CMSG_DATA(header), sizeof(int));
    sockets.emplace_back(fd);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  if (sockets.size() != static_cast<std::size_t>(count) || !WIFEXITED(status) ||
      WEXITSTATUS(status) != 0) {
    return makeError("pod socket helper failed (status " + std::to_string(status) + ")");
  }
  return sockets;
}

bool bindAndListen(int fd, const SocketAddress& address) {
  int one = 1;
  int v6 = 1;
  sockaddr_storage storage{};
  socklen_t length = address.toSockaddr(storage);
  return setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == 0 &&
         (storage.ss_family != AF_INET6 ||
          setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6, sizeof(v6)) == 0) &&
         bind(fd, reinterpret_cast<sockaddr*>(&storage), length) == 0 && listen(fd, 4096) == 0;
}

// Connects @fd to @target; an AF_INET6 socket names an IPv4 target by its v4-mapped address.
int connectTo(int fd, const SocketAddress& target) {
  sockaddr_storage storage{};
  socklen_t length = 0;
  sockaddr_storage own{};
  socklen_t ownLength = sizeof(own);
  getsockname(fd, reinterpret_cast<sockaddr*>(&own), &ownLength);
  if (own.ss_family == AF_INET6 && target.address.isV4()) {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&storage);
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(target.port);
    std::memcpy(&in6->sin6_addr, target.address.bytes.data(), 16);
    length = sizeof(sockaddr_in6);
  } else {
    length = target.toSockaddr(storage);
  }
  return connect(fd, reinterpret_cast<sockaddr*>(&storage), length) == 0 ? 0 : errno;
}

std::string pattern(std::size_t size, unsigned seed) {
  std::string data(size, '\0');
  std::uint32_t state = seed * 2654435761u + 1;
  for (auto& byte : data) {
    state = state * 1664525u + 1013904223u;
    byte = static_cast<char>(state >> 24);
  }
  return data;
}

bool sendAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t sent = send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (sent <= 0) return false;
    data.remove_prefix(static_cast<std::size_t>(sent));
  }
  return true;
}

// Reads until @size bytes or end of stream (or 10 s without data).
std::string receive(int fd, std::size_t size) {
  std::string data;
  char buffer[65536];
  while (data.size() < size) {
    pollfd pfd{fd, POLLIN, 0};
    if (poll(&pfd, 1, 10000) != 1) break;
    ssize_t got = recv(fd, buffer, std::min(sizeof(buffer), size - data.size()), 0);
    if (got <= 0) break;
    data.append(buffer, static_cast<std::size_t>(got));
  }
  return data;
}

// 0 at end of stream, 1 when a byte arrived instead, -1 on timeout or error.
int readEnd(int fd) {
  pollfd pfd{fd, POLLIN, 0};
  if (poll(&pfd, 1, 10000) != 1) return -1;
  char byte;
  ssize_t got = recv(fd, &byte, 1, 0);
  return got < 0 ? -1 : static_cast<int>(got);
}

struct Hop {
  UniqueFd app;      // the application's socket, connected to ztunnel's listener
  UniqueFd ztunnel;  // ztunnel's accepted socket
};

class AccelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SLUICE_REQUIRE_BPF_ENVIRONMENT();
    auto cgroup = TestCgroup::create();
    ASSERT_OK(cgroup);
    cgroup_.emplace(std::move(*cgroup));
    auto netns = TestNetns::create();
    ASSERT_OK(netns);
    pod_.emplace(std::move(*netns));
    ASSERT_OK(loadAndAttach());
    // ztunnel's outbound listeners, made in the pod's cgroup (ztunnel is below the cgroup root
    // the agent attaches to), so their accepted sockets are in it too.
    auto listener4 = socketsInPod(*cgroup_, *pod_, AF_INET, 1);
    auto listener6 = socketsInPod(*cgroup_, *pod_, AF_INET6, 1);
    ASSERT_OK(listener4);
    ASSERT_OK(listener6);
    listener4_ = std::move((*listener4)[0]);
    listener6_ = std::move((*listener6)[0]);
    ASSERT_TRUE(bindAndListen(listener4_.get(), addr("127.0.0.1:15001")));
    ASSERT_TRUE(bindAndListen(listener6_.get(), addr("[::1]:15001")));
  }

  void TearDown() override {
    if (accel_) {
      EXPECT_OK(accel_->uninstall());
    }
  }

  Result<void> loadAndAttach() {
    LocalAccelerationOptions options;
    options.cgroupPath = cgroup_->path();
    options.pinDirectory = pins_.path();
    auto accel = LocalAcceleration::create(options);
    if (!accel) return accel.error();
    accel_.emplace(std::move(*accel));
    return accel_->attach();
  }

  // An application socket of the pod (AF_INET unless @family) connected to @target, and the
  // socket @listener accepted for it.
  Hop connectHop(const UniqueFd& listener, std::string_view target, int family = AF_INET) {
    Hop hop;
    auto sockets = socketsInPod(*cgroup_, *pod_, family, 1);
    EXPECT_TRUE(sockets.ok()) << sockets.message();
    if (!sockets.ok()) return hop;
    hop.app = std::move((*sockets)[0]);
    int error = connectTo(hop.app.get(), addr(target));
    EXPECT_EQ(error, 0) << std::strerror(error);
    hop.ztunnel = acceptWithin(listener.get());
    EXPECT_TRUE(hop.ztunnel.valid());
    return hop;
  }

  std::uint64_t count(sluice_accel_decision decision) const {
    auto counters = accel_->counters();
    EXPECT_TRUE(counters.ok()) << counters.message();
    return counters.ok() ? (*counters)[decision] : 0;
  }

  std::size_t socketsInMap() const {
    auto size = accel_->socketCount();
    EXPECT_TRUE(size.ok()) << size.message();
    return size.ok() ? *size : 0;
  }

  // Sends @size bytes each way (concurrently read, so large sizes cannot block on full buffers)
  // and checks they arrived unchanged.
  void expectExchangeUnchanged(Hop& hop, std::size_t size) {
    std::string request = pattern(size, 1);
    std::string response = pattern(size, 2);
    std::string receivedRequest;
    std::thread reader([&] { receivedRequest = receive(hop.ztunnel.get(), size); });
    EXPECT_TRUE(sendAll(hop.app.get(), request));
    reader.join();
    EXPECT_TRUE(receivedRequest == request)
        << "request of " << size << " bytes changed, got " << receivedRequest.size() << " bytes";
    std::string receivedResponse;
    std::thread responder([&] { receivedResponse = receive(hop.app.get(), size); });
    EXPECT_TRUE(sendAll(hop.ztunnel.get(), response));
    responder.join();
    EXPECT_TRUE(receivedResponse == response)
        << "response of " << size << " bytes changed, got " << receivedResponse.size() << " bytes";
  }

  TestPinDirectory pins_;
  std::optional<TestCgroup> cgroup_;
  std::optional<TestNetns> pod_;
  std::optional<LocalAcceleration> accel_;
  UniqueFd listener4_, listener6_;
};

TEST_F(AccelTest, KernelOffersWhatAccelerationNeeds) {
  // (the VM suite runs this on Debian's 6.1 and 6.12 kernels)
  EXPECT_OK(LocalAcceleration::checkKernelSupport());
}

TEST_F(AccelTest, DeliversBytesUnchangedBothWaysWhenRedirected) {
  // given an enrolled pod with acceleration on
  ASSERT_OK(accel_->enroll(pod_->cookie()));
  std::uint64_t total = 0;
  for (std::size_t size : {std::size_t{1}, std::size_t{100}, std::size_t{4096}, std::size_t{65536},
                           std::size_t{65537}, std::size_t{1} << 20, std::size_t{4} << 20}) {
    // when the application and ztunnel exchange @size bytes each way over the local hop
    Hop hop = connectHop(listener4_, "127.0.0.1:15001");
    ASSERT_TRUE(hop.app.valid() && hop.ztunnel.valid());
    EXPECT_EQ(socketsInMap(), 2u);
    expectExchangeUnchanged(hop, size);
    total += 2 * size;
  }
  // then every byte went by redirection, none by the normal path
  EXPECT_GT(count(SLUICE_ACCEL_REDIRECTED), 0u);
  EXPECT_EQ(count(SLUICE_ACCEL_REDIRECTED_BYTES), total);
  EXPECT_EQ(count(SLUICE_ACCEL_PASS_NO_PEER), 0u);
  EXPECT_EQ(count(SLUICE_ACCEL_SOCKET_ADDED), 14u);
}

TEST_F(AccelTest, AcceleratesIpv6AndV4MappedHops) {
  ASSERT_OK(accel_->enroll(pod_->cookie()));
  Hop v6 = connectHop(listener6_, "[::1]:15001", AF_INET6);
  Hop mapped = connectHop(listener4_, "127.0.0.1:15001", AF_INET6);
  ASSERT_TRUE(v6.ztunnel.valid() && mapped.ztunnel.valid());
  EXPECT_EQ(socketsInMap(), 4u);
  expectExchangeUnchanged(v6, 100000);
  expectExchangeUnchanged(mapped, 100000);
  EXPECT_EQ(count(SLUICE_ACCEL_REDIRECTED_BYTES), 400000u);
  EXPECT_EQ(count(SLUICE_ACCEL_PASS_NO_PEER), 0u);
}

TEST_F(AccelTest, HalfCloseAndCloseStillWork) {
  ASSERT_OK(accel_->enroll(pod_->cookie()));
  Hop hop = connectHop(listener4_, "127.0.0.1:15001");
  ASSERT_TRUE(hop.ztunnel.valid());
  // when the application sends a request and half-closes
  ASSERT_TRUE(sendAll(hop.app.get(), "request"));
  ASSERT_EQ(shutdown(hop.app.get(), SHUT_WR), 0);
  // then ztunnel reads the request, then the end of the stream
  EXPECT_EQ(receive(hop.ztunnel.get(), 7), "request");
  EXPECT_EQ(readEnd(hop.ztunnel.get()), 0);
  // and can still answer on the other half, then close
  ASSERT_TRUE(sendAll(hop.ztunnel.get(), "response"));
  hop.ztunnel = UniqueFd();
  EXPECT_EQ(receive(hop.app.get(), 8), "response");
  EXPECT_EQ(readEnd(hop.app.get()), 0);
  EXPECT_EQ(count(SLUICE_ACCEL_REDIRECTED), 2u);
  hop.app = UniqueFd();
  EXPECT_EQ(socketsInMap(), 0u);
}

TEST_F(AccelTest, RemovesSocketsOfClosedConnectionsFromTheMap) {
  constexpr int kConnections = 1000;
  ASSERT_OK(accel_->enroll(pod_->cookie()));
  // given an application that opens 1,000 connections in turn, each a one-byte exchange
  auto client = PodProcess::start(*cgroup_, *pod_, [] {
    for (int i = 0; i < kConnections; ++i) {
      UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
      char byte = 'x';
      if (connectTo(fd.get(), addr("127.0.0.1:15001")) != 0 || send(fd.get(), &byte, 1, 0) != 1 ||
          recv(fd.get(), &byte, 1, 0) != 1 || byte != 'y') {
        return ConnectResult{errno == 0 ? EPROTO : errno, {}};
      }
    }
    return ConnectResult{};
  });
  ASSERT_OK(client);
  for (int i = 0; i < kConnections; ++i) {
    UniqueFd accepted = acceptWithin(listener4_.get(), 10s);
    ASSERT_TRUE(accepted.valid()) << "connection " << i;
    char byte = 0;
    ASSERT_EQ(recv(accepted.get(), &byte, 1, 0), 1);
    ASSERT_EQ(byte, 'x');
    byte = 'y';
    ASSERT_EQ(send(accepted.get(), &byte, 1, MSG_NOSIGNAL), 1);
  }
  auto done = client->finish(30s);
  ASSERT_OK(done);
  EXPECT_EQ(done->error, 0) << std::strerror(done->error);
  // then all were accelerated and none is left in the map
  EXPECT_EQ(count(SLUICE_ACCEL_SOCKET_ADDED), 2u * kConnections);
  EXPECT_EQ(count(SLUICE_ACCEL_REDIRECTED_BYTES) + count(SLUICE_ACCEL_PASS_NO_PEER),
            2u * kConnections);
  EXPECT_EQ(socketsInMap(), 0u);
  // How often the application's first byte beat ztunnel's end into the map (then that connection
  // stays on TCP): a property of the kernel's loopback timing, not a failure.
  RecordProperty("pass_no_peer", std::to_string(count(SLUICE_ACCEL_PASS_NO_PEER)));
}

TEST_F(AccelTest, RedirectsNothingForNamespaceThatIsNotEnrolled) {
  // given acceleration loaded, but the pod not enrolled
  Hop hop = connectHop(listener4_, "127.0.0.1:15001");
  ASSERT_TRUE(hop.ztunnel.valid());
  // then bytes go the normal way and no socket entered the map
  expectExchangeUnchanged(hop, 100000);
  EXPECT_EQ(socketsInMap(), 0u);
  auto counters = accel_->counters();
  ASSERT_OK(counters);
  for (int i = 0; i < SLUICE_ACCEL_DECISION_COUNT; ++i) {
    EXPECT_EQ(counters->values[i], 0u) << accelerationDecisionName(sluice_accel_decision(i));
  }
}

TEST_F(AccelTest, RedirectsNothingOnceDetachedButKeepsOpenHopsWorking) {
  ASSERT_OK(accel_->enroll(pod_->cookie()));
  Hop open = connectHop(listener4_, "127.0.0.1:15001");
  ASSERT_TRUE(open.ztunnel.valid());
  // when acceleration is switched off
  ASSERT_OK(accel_->detach());
  EXPECT_FALSE(std::filesystem::exists(pins_.path() + "/link_accel_sockops"));
  // then new hops are not accelerated
  Hop hop = connectHop(listener4_, "127.0.0.1:15001");
  ASSERT_TRUE(hop.ztunnel.valid());
  expectExchangeUnchanged(hop, 100000);
  EXPECT_EQ(count(SLUICE_ACCEL_SOCKET_ADDED), 2u);
  EXPECT_EQ(count(SLUICE_ACCEL_REDIRECTED), 0u);
  // and the hop opened before still delivers
  expectExchangeUnchanged(open, 100000);
}

TEST_F(AccelTest, LeavesOtherLoopbackConnectionsAlone) {
  ASSERT_OK(accel_->enroll(pod_->cookie()));
  auto sockets = socketsInPod(*cgroup_, *pod_, AF_INET, 1);
  ASSERT_OK(sockets);
  UniqueFd other = std::move((*sockets)[0]);
  ASSERT_TRUE(bindAndListen(other.get(), addr("127.0.0.1:8080")));
  Hop hop = connectHop(other, "127.0.0.1:8080");
  ASSERT_TRUE(hop.ztunnel.valid());
  expectExchangeUnchanged(hop, 1000);
  EXPECT_EQ(socketsInMap(), 0u);
  EXPECT_EQ(count(SLUICE_ACCEL_SOCKET_ADDED), 0u);
}

TEST_F(AccelTest, FallsBackToTcpWhenThePeerIsNotInTheMap) {
  // given ztunnel's listener outside the cgroup the programs are attached to: the accepted socket
  // never enters the map, only the application's does
  ASSERT_OK(accel_->enroll(pod_->cookie()));
  listener4_ = UniqueFd();
  UniqueFd outsider = listenIn(*pod_, addr("127.0.0.1:15001"));
  ASSERT_TRUE(outsider.valid());
  Hop hop = connectHop(outsider, "127.0.0.1:15001");
  ASSERT_TRUE(hop.ztunnel.valid());
  EXPECT_EQ(socketsInMap(), 1u);
  // when they exchange data, then it arrives through the normal path
  expectExchangeUnchanged(hop, 1 << 20);
  EXPECT_EQ(count(SLUICE_ACCEL_REDIRECTED), 0u);
  EXPECT_EQ(count(SLUICE_ACCEL_PASS_NO_PEER), 1u);  // once; then the socket stays on TCP
  EXPECT_GT(count(SLUICE_ACCEL_PASS_STICKY), 0u);
}

TEST_F(AccelTest, KeepsAcceleratingAcrossRestartAndUninstallRemovesEverything) {
  ASSERT_OK(accel_->enroll(pod_->cookie()));
  const std::string linkPin = pins_.path() + "/link_accel_sockops";
  std::uint32_t linkId = pinnedLinkId(linkPin);
  ASSERT_NE(linkId, 0u);
  // when the agent goes away, acceleration goes on from the pins
  accel_.reset();
  Hop during = connectHop(listener4_, "127.0.0.1:15001");
  ASSERT_TRUE(during.ztunnel.valid());
  // and when it comes back, it takes over the link in place and finds the enrollment and sockets
  ASSERT_OK(loadAndAttach());
  EXPECT_EQ(pinnedLinkId(linkPin), linkId);
  EXPECT_EQ(socketsInMap(), 2u);
  expectExchangeUnchanged(during, 1000);
  EXPECT_EQ(count(SLUICE_ACCEL_REDIRECTED_BYTES), 2000u);
  Hop after = connectHop(listener4_, "127.0.0.1:15001");
  ASSERT_TRUE(after.ztunnel.valid());
  expectExchangeUnchanged(after, 1000);
  EXPECT_EQ(count(SLUICE_ACCEL_REDIRECTED_BYTES), 4000u);
  // and uninstall leaves no pin
  during = Hop();
  after = Hop();
  ASSERT_OK(accel_->uninstall());
  EXPECT_FALSE(std::filesystem::exists(pins_.path()));
}

TEST_F(AccelTest, AcceleratesCapturedConnectionAndKeepsItsOriginalDestination) {
  // given capture and acceleration at the same cgroup, pinned in the same directory
  CaptureOptions options;
  options.cgroupPath = cgroup_->path();
  options.pinDirectory = pins_.path();
  auto capture = CaptureProgram::create(options);
  ASSERT_OK(capture);
  ASSERT_OK(capture->attach());
  ASSERT_OK(capture->enroll(pod_->cookie()));
  ASSERT_OK(accel_->enroll(pod_->cookie()));
  // when the pod's application connects to a server elsewhere, and is captured to 15001
  Hop hop = connectHop(listener4_, "198.18.0.1:80");
  ASSERT_TRUE(hop.ztunnel.valid());
  // then ztunnel still learns the original destination, and the hop is accelerated
  auto original = capture->takeOriginalDestination(hop.ztunnel.get());
  ASSERT_OK(original);
  EXPECT_EQ(original->toString(), "198.18.0.1:80");
  EXPECT_EQ(socketsInMap(), 2u);
  expectExchangeUnchanged(hop, 100000);
  EXPECT_EQ(count(SLUICE_ACCEL_REDIRECTED_BYTES), 200000u);
  ASSERT_OK(capture->uninstall());
}

TEST_F(AccelTest, UninstallingKeepsOpenHopsWorkingAndLosesNoBytes) {
  ASSERT_OK(accel_->enroll(pod_->cookie()));
  Hop hop = connectHop(listener4_, "127.0.0.1:15001");
  ASSERT_TRUE(hop.ztunnel.valid());
  // given bytes redirected into ztunnel's socket but not read yet
  std::string first = pattern(100000, 4);
  ASSERT_TRUE(sendAll(hop.app.get(), first));
  ASSERT_EQ(count(SLUICE_ACCEL_REDIRECTED_BYTES), first.size());
  // when acceleration is uninstalled
  ASSERT_OK(accel_->uninstall());
  EXPECT_FALSE(std::filesystem::exists(pins_.path()));
  // then ztunnel still reads them, and the open hop stays accelerated until it closes
  EXPECT_TRUE(receive(hop.ztunnel.get(), first.size()) == first);
  expectExchangeUnchanged(hop, 100000);
  EXPECT_EQ(count(SLUICE_ACCEL_REDIRECTED_BYTES), first.size() + 200000);
  // and when the agent's last reference goes too, the hop still works
  accel_.reset();
  expectExchangeUnchanged(hop, 100000);
  Hop next = connectHop(listener4_, "127.0.0.1:15001");
  ASSERT_TRUE(next.ztunnel.valid());
  expectExchangeUnchanged(next, 100000);
}

// Not a check but a measurement (run with --gtest_also_run_disabled_tests): the same local hop
// with and without acceleration, request/response latency of 1-byte messages and throughput of
// 64 KiB writes. Prints one line per mode.
TEST_F(AccelTest, DISABLED_MeasuresLatencyAndThroughputWithAndWithout) {
  constexpr int kRoundTrips = 20000;
  constexpr std::size_t kChunk = 64 * 1024;
  constexpr std::size_t kBulk = std::size_t{512} << 20;
  for (bool accelerated : {false, true}) {
    if (accelerated) ASSERT_OK(accel_->enroll(pod_->cookie()));
    Hop hop = connectHop(listener4_, "127.0.0.1:15001");
    ASSERT_TRUE(hop.ztunnel.valid());
    std::thread echo([&] {
      char byte;
      for (int i = 0; i < kRoundTrips; ++i) {
        if (recv(hop.ztunnel.get(), &byte, 1, 0) != 1 || send(hop.ztunnel.get(), &byte, 1, 0) != 1)
          return;
      }
    });
    std::vector<double> micros;
    micros.reserve(kRoundTrips);
    char byte = 'x';
    for (int i = 0; i < kRoundTrips; ++i) {
      auto start = std::chrono::steady_clock::now();
      ASSERT_EQ(send(hop.app.get(), &byte, 1, 0), 1);
      ASSERT_EQ(recv(hop.app.get(), &byte, 1, 0), 1);
      micros.push_back(
          std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start)
              .count());
    }
    echo.join();
    std::sort(micros.begin(), micros.end());
    std::string chunk = pattern(kChunk, 3);
    std::size_t received = 0;
    std::thread sink([&] {
      std::vector<char> buffer(kChunk);
      while (received < kBulk) {
        ssize_t got = recv(hop.ztunnel.get(), buffer.data(), buffer.size(), 0);
        if (got <= 0) return;
        received += static_cast<std::size_t>(got);
      }
    });
    auto start = std::chrono::steady_clock::now();
    for (std::size_t sent = 0; sent < kBulk; sent += kChunk) {
      ASSERT_TRUE(sendAll(hop.app.get(), chunk));
    }
    sink.join();
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    EXPECT_EQ(received, kBulk);
    std::printf("%-12s rr_p50_us %.1f rr_p99_us %.1f throughput_gbps %.2f redirected_bytes %llu\n",
                accelerated ? "accelerated" : "tcp", micros[kRoundTrips / 2],
                micros[kRoundTrips * 99 / 100], kBulk * 8 / seconds / 1e9,
                static_cast<unsigned long long>(count(SLUICE_ACCEL_REDIRECTED_BYTES)));
  }
}

}  // namespace
}  // namespace sluice::bpf
