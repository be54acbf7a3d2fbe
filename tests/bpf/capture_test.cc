// cgroup/connect4, cgroup/connect6 and sockops against real sockets: a pod (netns + cgroup) with
// ztunnel's outbound listeners, and servers outside the pod it connects to.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <optional>
#include <thread>
#include <vector>

#include "core/bpf/capture_program.h"
#include "core/bpf/lazy_pinned_table.h"
#include "core/bpf/original_destination.h"
#include "tests/bpf/bpf_test_support.h"

namespace sluice::bpf {
namespace {

using namespace testing;

SocketAddress addr(std::string_view text) { return SocketAddress::parse(text).value(); }

class CaptureTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SLUICE_REQUIRE_BPF_ENVIRONMENT();
    auto cgroup = TestCgroup::create();
    ASSERT_OK(cgroup);
    cgroup_.emplace(std::move(*cgroup));
    auto network = PodNetwork::create();
    ASSERT_OK(network);
    net_.emplace(std::move(*network));
    ASSERT_OK(loadAndAttach());

    // ztunnel's outbound listeners inside the pod (marked, as ztunnel's sockets are), and the
    // servers the pod's application means to reach.
    outbound4_ = listenIn(pod(), addr("127.0.0.1:15001"), {.mark = kMark});
    outbound6_ = listenIn(pod(), addr("[::1]:15001"), {.mark = kMark});
    server4_ = listenIn(outside(), addr("198.18.0.1:80"));
    server6_ = listenIn(outside(), addr("[fd00:5::1]:80"));
    ASSERT_TRUE(outbound4_.valid() && outbound6_.valid() && server4_.valid() && server6_.valid());
  }

  void TearDown() override {
    if (capture_) {
      EXPECT_OK(capture_->uninstall());
    }
  }

  Result<void> loadAndAttach() {
    CaptureOptions options;
    options.cgroupPath = cgroup_->path();
    options.pinDirectory = pins_.path();
    auto capture = CaptureProgram::create(options);
    if (!capture) return capture.error();
    capture_.emplace(std::move(*capture));
    return capture_->attach();
  }

  const TestNetns& pod() const { return net_->pod; }
  const TestNetns& outside() const { return net_->outside; }

  ConnectResult podConnects(std::string_view target, PodConnectOptions options = {}) {
    auto result = connectFromPod(*cgroup_, pod(), addr(target), options);
    EXPECT_TRUE(result.ok()) << result.message();
    return result.ok() ? *result : ConnectResult{-1, {}};
  }

  std::uint64_t count(sluice_capture_decision decision) const {
    auto counters = capture_->counters();
    EXPECT_TRUE(counters.ok()) << counters.message();
    return counters.ok() ? (*counters)[decision] : 0;
  }

  // The pod's connection arrived at ztunnel's listener; returns its original destination.
  std::string capturedDestination(const UniqueFd& listener) {
    UniqueFd accepted = acceptWithin(listener.get());
    if (!accepted.valid()) return "<nothing reached the outbound listener>";
    auto original = capture_->takeOriginalDestination(accepted.get());
    return original.ok() ? original->toString() : original.message();
  }

  // The pod's connection arrived at @server untouched, and nothing at ztunnel's listeners.
  void expectReachedDirectly(const UniqueFd& server) {
    UniqueFd accepted = acceptWithin(server.get());
    EXPECT_TRUE(accepted.valid()) << "the connection did not reach its own destination";
    EXPECT_FALSE(hasPendingConnection(outbound4_.get()));
    EXPECT_FALSE(hasPendingConnection(outbound6_.get()));
  }

  static constexpr std::uint32_t kMark = SLUICE_ZTUNNEL_MARK_DEFAULT;

  TestPinDirectory pins_;
  std::optional<TestCgroup> cgroup_;
  std::optional<PodNetwork> net_;
  std::optional<CaptureProgram> capture_;
  UniqueFd outbound4_, outbound6_, server4_, server6_;
};

TEST_F(CaptureTest, SendsEnrolledPodConnectionToOutboundListenerAndKeepsOriginalDestination) {
  // given an enrolled pod
  ASSERT_OK(capture_->enroll(pod().cookie()));
  // when its application connects to a server outside
  ConnectResult client = podConnects("198.18.0.1:80");
  // then the connection lands on ztunnel's 15001 with the server as original destination
  ASSERT_EQ(client.error, 0) << std::strerror(client.error);
  EXPECT_EQ(client.local.address.toString(), "127.0.0.1");
  EXPECT_EQ(capturedDestination(outbound4_), "198.18.0.1:80");
  EXPECT_FALSE(hasPendingConnection(server4_.get()));
  EXPECT_EQ(count(SLUICE_CAPTURED), 1u);
  EXPECT_EQ(count(SLUICE_ORIG_DST_PUBLISHED), 1u);
}

TEST_F(CaptureTest, SendsIpv6ConnectionToIpv6OutboundListener) {
  ASSERT_OK(capture_->enroll(pod().cookie()));
  ConnectResult client = podConnects("[fd00:5::1]:80");
  ASSERT_EQ(client.error, 0) << std::strerror(client.error);
  EXPECT_EQ(capturedDestination(outbound6_), "[fd00:5::1]:80");
  EXPECT_FALSE(hasPendingConnection(server6_.get()));
}

TEST_F(CaptureTest, SendsV4MappedConnectionOfDualStackSocketToIpv4Listener) {
  // given an enrolled pod whose application uses AF_INET6 sockets for IPv4 too (as Java does)
  ASSERT_OK(capture_->enroll(pod().cookie()));
  // when it connects to ::ffff:198.18.0.1
  ConnectResult client = podConnects("198.18.0.1:80", {.dualStack = true});
  // then the IPv4 listener gets it, with the IPv4 destination
  ASSERT_EQ(client.error, 0) << std::strerror(client.error);
  EXPECT_EQ(capturedDestination(outbound4_), "198.18.0.1:80");
  EXPECT_FALSE(hasPendingConnection(outbound6_.get()));
}

// Clients that send a request and close at once, and a ztunnel slower to accept than the
// kernel's delayed ACK: each client's socket then finishes (orphaned in FIN_WAIT2, the kernel turns
// it into time-wait and the socket reaches TCP_CLOSE) while its connection still waits in the
// accept queue. Each client here waits for FIN_WAIT2 before close() to get there for certain.
TEST_F(CaptureTest, KeepsOriginalDestinationsOfClientsThatFinishBeforeZtunnelAccepts) {
  constexpr int kClients = 20;
  ASSERT_OK(capture_->enroll(pod().cookie()));
  auto clients = PodProcess::start(*cgroup_, pod(), [] {
    std::vector<UniqueFd> sockets;
    sockaddr_storage target{};
    socklen_t length = addr("198.18.0.1:80").toSockaddr(target);
    for (int i = 0; i < kClients; ++i) {
      UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
      if (connect(fd.get(), reinterpret_cast<sockaddr*>(&target), length) != 0 ||
          send(fd.get(), "hello", 5, MSG_NOSIGNAL) != 5 || shutdown(fd.get(), SHUT_WR) != 0) {
        return ConnectResult{errno, {}};
      }
      sockets.push_back(std::move(fd));
    }
    auto deadline = std::chrono::steady_clock::now() + 5s;
    for (const auto& fd : sockets) {
      tcp_info info{};
      socklen_t size = sizeof(info);
      while (getsockopt(fd.get(), IPPROTO_TCP, TCP_INFO, &info, &size) == 0 &&
             info.tcpi_state != TCP_FIN_WAIT2) {
        if (std::chrono::steady_clock::now() > deadline) return ConnectResult{ETIMEDOUT, {}};
        std::this_thread::sleep_for(5ms);  // the kernel offers no wake-up for a state change
      }
    }
    return ConnectResult{};  // the sockets close here, in FIN_WAIT2
  });
  ASSERT_OK(clients);
  auto done = clients->finish(10s);
  ASSERT_OK(done);
  ASSERT_EQ(done->error, 0) << std::strerror(done->error);
  // when ztunnel accepts them, then every original destination and request is still there
  for (int i = 0; i < kClients; ++i) {
    UniqueFd accepted = acceptWithin(outbound4_.get());
    ASSERT_TRUE(accepted.valid()) << "client " << i;
    auto original = capture_->takeOriginalDestination(accepted.get());
    ASSERT_OK(original);
    EXPECT_EQ(original->toString(), "198.18.0.1:80");
    char request[8] = {};
    EXPECT_EQ(recv(accepted.get(), request, sizeof(request), 0), 5);
    EXPECT_STREQ(request, "hello");
  }
}

TEST_F(CaptureTest, LeavesZtunnelsMarkedSocketsAlone) {
  ASSERT_OK(capture_->enroll(pod().cookie()));
  ConnectResult client = podConnects("198.18.0.1:80", {.mark = kMark});
  ASSERT_EQ(client.error, 0) << std::strerror(client.error);
  expectReachedDirectly(server4_);
  EXPECT_EQ(count(SLUICE_BYPASS_MARK), 1u);
  EXPECT_EQ(count(SLUICE_CAPTURED), 0u);
}

TEST_F(CaptureTest, LeavesNamespaceThatIsNotEnrolledAlone) {
  // given a pod in the cgroup whose netns is not enrolled
  ConnectResult client = podConnects("198.18.0.1:80");
  ASSERT_EQ(client.error, 0) << std::strerror(client.error);
  expectReachedDirectly(server4_);
  EXPECT_EQ(count(SLUICE_BYPASS_NOT_ENROLLED), 1u);
}

TEST_F(CaptureTest, UnenrollingStopsCaptureOfNewConnections) {
  ASSERT_OK(capture_->enroll(pod().cookie()));
  ASSERT_EQ(podConnects("198.18.0.1:80").error, 0);
  EXPECT_EQ(capturedDestination(outbound4_), "198.18.0.1:80");

  ASSERT_OK(capture_->unenroll(pod().cookie()));
  ASSERT_EQ(podConnects("198.18.0.1:80").error, 0);
  expectReachedDirectly(server4_);
  auto enrolled = capture_->enrolledNamespaces();
  ASSERT_OK(enrolled);
  EXPECT_TRUE(enrolled->empty());
}

TEST_F(CaptureTest, LeavesLoopbackDestinationsAlone) {
  ASSERT_OK(capture_->enroll(pod().cookie()));
  UniqueFd local4 = listenIn(pod(), addr("127.0.0.1:8080"));
  UniqueFd local6 = listenIn(pod(), addr("[::1]:8080"));
  ASSERT_EQ(podConnects("127.0.0.1:8080").error, 0);
  ASSERT_EQ(podConnects("[::1]:8080").error, 0);
  expectReachedDirectly(local4);
  expectReachedDirectly(local6);
  EXPECT_EQ(count(SLUICE_BYPASS_LOOPBACK), 2u);
}

TEST_F(CaptureTest, LeavesConnectionsToZtunnelPortsAlone) {
  ASSERT_OK(capture_->enroll(pod().cookie()));
  UniqueFd hbone = listenIn(outside(), addr("198.18.0.1:15008"));
  ASSERT_EQ(podConnects("198.18.0.1:15008").error, 0);
  expectReachedDirectly(hbone);
  EXPECT_EQ(count(SLUICE_BYPASS_PORT), 1u);
}

TEST_F(CaptureTest, LeavesExcludedCidrAlone) {
  ASSERT_OK(capture_->enroll(pod().cookie()));
  ASSERT_OK(capture_->addExclusion(Cidr::parse("198.18.0.0/24").value()));
  ASSERT_OK(capture_->addExclusion(Cidr::parse("fd00:5::/64").value()));
  ASSERT_EQ(podConnects("198.18.0.1:80").error, 0);
  expectReachedDirectly(server4_);
  ASSERT_EQ(podConnects("[fd00:5::1]:80").error, 0);
  expectReachedDirectly(server6_);
  EXPECT_EQ(count(SLUICE_BYPASS_EXCLUDED), 2u);

  // and once the exclusion is removed, capture resumes
  ASSERT_OK(capture_->removeExclusion(Cidr::parse("198.18.0.0/24").value()));
  ASSERT_EQ(podConnects("198.18.0.1:80").error, 0);
  EXPECT_EQ(capturedDestination(outbound4_), "198.18.0.1:80");
}

TEST_F(CaptureTest, ExclusionWithPortCoversOnlyThatPort) {
  ASSERT_OK(capture_->enroll(pod().cookie()));
  ASSERT_OK(capture_->addExclusion(Cidr::parse("198.18.0.1").value(), 81));
  UniqueFd server81 = listenIn(outside(), addr("198.18.0.1:81"));
  ASSERT_EQ(podConnects("198.18.0.1:81").error, 0);
  expectReachedDirectly(server81);
  ASSERT_EQ(podConnects("198.18.0.1:80").error, 0);
  EXPECT_EQ(capturedDestination(outbound4_), "198.18.0.1:80");
}

TEST_F(CaptureTest, CountsEveryDecisionOnce) {
  // given one connect of each kind from an enrolled pod (and one while not enrolled); those left
  // alone that find no listener are refused, which does not matter here
  ASSERT_OK(capture_->addExclusion(Cidr::parse("198.18.0.1").value(), 81));
  ASSERT_EQ(podConnects("198.18.0.1:80").error, 0);  // not enrolled yet
  ASSERT_OK(capture_->enroll(pod().cookie()));
  ASSERT_EQ(podConnects("198.18.0.1:80").error, 0);                        // captured
  ASSERT_EQ(podConnects("198.18.0.1:80", {.mark = kMark}).error, 0);       // marked
  ASSERT_EQ(podConnects("198.18.0.1:53", {.type = SOCK_DGRAM}).error, 0);  // UDP
  EXPECT_EQ(podConnects("127.0.0.1:9").error, ECONNREFUSED);               // loopback
  EXPECT_EQ(podConnects("198.18.0.1:15020").error, ECONNREFUSED);          // ztunnel's port
  EXPECT_EQ(podConnects("198.18.0.1:81").error, ECONNREFUSED);             // excluded
  // then each decision was counted exactly once
  auto counters = capture_->counters();
  ASSERT_OK(counters);
  std::array<std::uint64_t, SLUICE_CAPTURE_DECISION_COUNT> expected{};
  for (auto decision : {SLUICE_CAPTURED, SLUICE_BYPASS_MARK, SLUICE_BYPASS_NOT_ENROLLED,
                        SLUICE_BYPASS_PROTOCOL, SLUICE_BYPASS_LOOPBACK, SLUICE_BYPASS_PORT,
                        SLUICE_BYPASS_EXCLUDED, SLUICE_ORIG_DST_PUBLISHED}) {
    expected[decision] = 1;
  }
  for (int i = 0; i < SLUICE_CAPTURE_DECISION_COUNT; ++i) {
    auto decision = static_cast<sluice_capture_decision>(i);
    EXPECT_EQ(counters->values[i], expected[i]) << captureDecisionName(decision);
  }
}

TEST_F(CaptureTest, ConnectionThatNeverEstablishesLeavesNoEntry) {
  // given an enrolled pod and no ztunnel listening on 15001
  ASSERT_OK(capture_->enroll(pod().cookie()));
  outbound4_ = UniqueFd();
  // when its connect is captured and refused
  EXPECT_EQ(podConnects("198.18.0.1:80").error, ECONNREFUSED);
  // then its entry was published and removed again
  EXPECT_EQ(count(SLUICE_ORIG_DST_PUBLISHED), 1u);
  EXPECT_EQ(count(SLUICE_ORIG_DST_DISCARDED), 1u);
  auto size = capture_->originalDestinations().size();
  ASSERT_OK(size);
  EXPECT_EQ(*size, 0u);
}

TEST_F(CaptureTest, LeavesNoEntriesAfterTenThousandConnections) {
  constexpr int kConnections = 10000;
  ASSERT_OK(capture_->enroll(pod().cookie()));
  // given a pod that opens and closes 10,000 connections
  auto client = PodProcess::start(*cgroup_, pod(), [] {
    ConnectResult last;
    for (int i = 0; i < kConnections; ++i) {
      last = connectOnce(addr("198.18.0.1:80"), {});
      if (last.error != 0) break;
    }
    return last;
  });
  ASSERT_OK(client);
  // when ztunnel accepts each one and takes its original destination
  int recovered = 0;
  for (int i = 0; i < kConnections; ++i) {
    UniqueFd accepted = acceptWithin(outbound4_.get(), 10s);
    ASSERT_TRUE(accepted.valid()) << "connection " << i << " did not arrive";
    auto original = capture_->takeOriginalDestination(accepted.get());
    if (original.ok() && original->toString() == "198.18.0.1:80") ++recovered;
  }
  auto done = client->finish(30s);
  ASSERT_OK(done);
  EXPECT_EQ(done->error, 0) << std::strerror(done->error);
  // then every destination was recovered and nothing is left in the table
  EXPECT_EQ(recovered, kConnections);
  auto size = capture_->originalDestinations().size();
  ASSERT_OK(size);
  EXPECT_EQ(*size, 0u);
  EXPECT_EQ(count(SLUICE_CAPTURED), static_cast<std::uint64_t>(kConnections));
  EXPECT_EQ(count(SLUICE_ORIG_DST_PUBLISHED), static_cast<std::uint64_t>(kConnections));
}

TEST_F(CaptureTest, KeepsCapturingWhileTheAgentIsGoneAndResumesFromPins) {
  // given capture attached with pins, and a pod enrolled
  ASSERT_OK(capture_->enroll(pod().cookie()));
  const std::string connect4Pin = pins_.path() + "/link_connect4";
  std::uint32_t linkId = pinnedLinkId(connect4Pin);
  ASSERT_NE(linkId, 0u);
  // when the agent goes away (its objects destroyed, pins left)
  capture_.reset();
  // then capture goes on, and ztunnel reads destinations from the pinned table alone
  ASSERT_EQ(podConnects("198.18.0.1:80").error, 0);
  auto table = OriginalDestinationTable::openPinned(pins_.path());
  ASSERT_OK(table);
  UniqueFd accepted = acceptWithin(outbound4_.get());
  ASSERT_TRUE(accepted.valid());
  auto original = table->take(accepted.get());
  ASSERT_OK(original);
  EXPECT_EQ(original->toString(), "198.18.0.1:80");

  // and when the agent comes back, it finds the enrollment and takes over the links in place
  ASSERT_OK(loadAndAttach());
  EXPECT_EQ(pinnedLinkId(connect4Pin), linkId);
  auto enrolled = capture_->enrolledNamespaces();
  ASSERT_OK(enrolled);
  EXPECT_EQ(*enrolled, std::vector<std::uint64_t>{pod().cookie()});
  ASSERT_EQ(podConnects("198.18.0.1:80").error, 0);
  EXPECT_EQ(capturedDestination(outbound4_), "198.18.0.1:80");
  EXPECT_EQ(count(SLUICE_CAPTURED), 2u);  // counters survived the restart too

  // and after uninstall nothing is captured and nothing is pinned
  ASSERT_OK(capture_->uninstall());
  ASSERT_EQ(podConnects("198.18.0.1:80").error, 0);
  expectReachedDirectly(server4_);
  EXPECT_FALSE(std::filesystem::exists(pins_.path()));
}

TEST_F(CaptureTest, ZtunnelStartedBeforeTheAgentOpensThePinnedTableOnFirstUse) {
  // given ztunnel's lazy table, made while nothing is pinned yet
  ASSERT_OK(capture_->uninstall());
  LazyPinnedTable<OriginalDestinationTable> lazy(pins_.path());
  auto early = lazy.get();
  ASSERT_FALSE(early.ok());
  EXPECT_NE(early.message().find("is not pinned"), std::string::npos) << early.message();
  // when the agent pins the maps and a pod's connection is captured
  ASSERT_OK(loadAndAttach());
  ASSERT_OK(capture_->enroll(pod().cookie()));
  ASSERT_EQ(podConnects("198.18.0.1:80").error, 0);
  // then the next use opens the table, reads the destination from it, and keeps it open
  auto table = lazy.get();
  ASSERT_OK(table);
  UniqueFd accepted = acceptWithin(outbound4_.get());
  ASSERT_TRUE(accepted.valid());
  auto original = (*table)->take(accepted.get());
  ASSERT_OK(original);
  EXPECT_EQ(original->toString(), "198.18.0.1:80");
  auto again = lazy.get();
  ASSERT_OK(again);
  EXPECT_EQ(*again, *table);
}

TEST_F(CaptureTest, MovesPinnedLinksToAnotherCgroup) {
  // given capture pinned at one cgroup
  ASSERT_OK(capture_->enroll(pod().cookie()));
  std::uint32_t oldLink = pinnedLinkId(pins_.path() + "/link_connect4");
  // when the agent restarts configured for another cgroup
  auto other = TestCgroup::create();
  ASSERT_OK(other);
  CaptureOptions options = capture_->options();
  options.cgroupPath = other->path();
  capture_.reset();
  auto moved = CaptureProgram::create(options);
  ASSERT_OK(moved);
  capture_.emplace(std::move(*moved));
  ASSERT_OK(capture_->attach());
  // then the pin names a new link, and only pods in the new cgroup are captured
  EXPECT_NE(pinnedLinkId(pins_.path() + "/link_connect4"), oldLink);
  ASSERT_EQ(podConnects("198.18.0.1:80").error, 0);
  expectReachedDirectly(server4_);
  auto captured = connectFromPod(*other, pod(), addr("198.18.0.1:80"));
  ASSERT_OK(captured);
  ASSERT_EQ(captured->error, 0);
  EXPECT_EQ(capturedDestination(outbound4_), "198.18.0.1:80");
  ASSERT_OK(capture_->uninstall());  // before the other cgroup goes
}

TEST_F(CaptureTest, ReportsWhichCgroupCouldNotBeAttached) {
  CaptureOptions options;
  options.cgroupPath = cgroup_->path() + "/missing";
  options.pinDirectory = "";
  auto capture = CaptureProgram::create(options);
  ASSERT_OK(capture);
  auto attached = capture->attach();
  ASSERT_FALSE(attached.ok());
  EXPECT_NE(attached.message().find(options.cgroupPath), std::string::npos) << attached.message();
}

TEST_F(CaptureTest, ReportsMissingPrivilegesWithWhatIsNeeded) {
  // given a process without root's capabilities (a child that drops to nobody)
  UniqueFd pipeEnds[2];
  int fds[2];
  ASSERT_EQ(pipe2(fds, O_CLOEXEC), 0);
  pipeEnds[0] = UniqueFd(fds[0]);
  pipeEnds[1] = UniqueFd(fds[1]);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    if (setresgid(65534, 65534, 65534) != 0 || setresuid(65534, 65534, 65534) != 0) _exit(2);
    // when it loads the capture programs
    auto capture = CaptureProgram::create({.cgroupPath = "/nonexistent", .pinDirectory = ""});
    std::string message = capture.ok() ? "loaded" : capture.message();
    _exit(write(fds[1], message.data(), message.size()) > 0 ? 0 : 3);
  }
  pipeEnds[1] = UniqueFd();
  std::string message;
  char buffer[512];
  for (ssize_t got; (got = read(pipeEnds[0].get(), buffer, sizeof(buffer))) > 0;) {
    message.append(buffer, static_cast<std::size_t>(got));
  }
  int status = 0;
  waitpid(child, &status, 0);
  // then the error says which step failed and what it needs
  EXPECT_NE(message.find("load capture programs"), std::string::npos) << message;
  EXPECT_NE(message.find("CAP_BPF"), std::string::npos) << message;
}

TEST_F(CaptureTest, RefusesPinDirectoryOutsideBpfFilesystem) {
  CaptureOptions options;
  options.cgroupPath = cgroup_->path();
  options.pinDirectory = "/tmp/" + uniqueName();
  auto capture = CaptureProgram::create(options);
  ASSERT_FALSE(capture.ok());
  EXPECT_NE(capture.message().find("not a BPF filesystem"), std::string::npos) << capture.message();
}

}  // namespace
}  // namespace sluice::bpf
