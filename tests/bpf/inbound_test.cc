// sk_lookup against real connections from outside a pod netns, and through BPF_PROG_TEST_RUN.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <gtest/gtest.h>
#include <linux/bpf.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <optional>

#include "core/bpf/inbound_steering.h"
#include "tests/bpf/bpf_test_support.h"

namespace sluice::bpf {
namespace {

using namespace testing;

SocketAddress addr(std::string_view text) { return SocketAddress::parse(text).value(); }

std::uint64_t socketCookie(int fd) {
  std::uint64_t cookie = 0;
  socklen_t length = sizeof(cookie);
  EXPECT_EQ(getsockopt(fd, SOL_SOCKET, SO_COOKIE, &cookie, &length), 0) << std::strerror(errno);
  return cookie;
}

class InboundTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SLUICE_REQUIRE_BPF_ENVIRONMENT();
    auto network = PodNetwork::create();
    ASSERT_OK(network);
    net_.emplace(std::move(*network));
    ASSERT_OK(loadAndAttach());
    // ztunnel's dual-stack inbound listener, the pod's application, and ztunnel's HBONE port.
    inbound_ =
        listenIn(pod(), addr("[::]:15006"), {.mark = SLUICE_ZTUNNEL_MARK_DEFAULT, .v6only = false});
    app4_ = listenIn(pod(), addr("0.0.0.0:8080"));
    app6_ = listenIn(pod(), addr("[::]:8080"));
    hbone_ = listenIn(pod(), addr("[::]:15008"), {.v6only = false});
    ASSERT_TRUE(inbound_.valid() && app4_.valid() && app6_.valid() && hbone_.valid());
  }

  void TearDown() override {
    if (steering_) {
      EXPECT_OK(steering_->uninstall());
    }
  }

  Result<void> loadAndAttach() {
    auto steering = InboundSteering::create({.pinDirectory = pins_.path()});
    if (!steering) return steering.error();
    steering_.emplace(std::move(*steering));
    return steering_->attach(pod().fd());
  }

  const TestNetns& pod() const { return net_->pod; }
  const TestNetns& outside() const { return net_->outside; }

  std::uint64_t count(sluice_inbound_decision decision) const {
    auto counters = steering_->counters();
    EXPECT_TRUE(counters.ok()) << counters.message();
    return counters.ok() ? (*counters)[decision] : 0;
  }

  // Where a connection accepted on @listener was addressed to (its local address).
  std::string acceptedAt(const UniqueFd& listener) {
    UniqueFd accepted = acceptWithin(listener.get());
    if (!accepted.valid()) return "<nothing arrived>";
    auto local = SocketAddress::localOf(accepted.get());
    return local.ok() ? local->toString() : local.message();
  }

  TestPinDirectory pins_;
  std::optional<PodNetwork> net_;
  std::optional<InboundSteering> steering_;
  UniqueFd inbound_, app4_, app6_, hbone_;
};

TEST_F(InboundTest, SteersConnectionFromOutsideToInboundListenerWithOriginalDestination) {
  // given ztunnel's inbound listener registered for the pod
  ASSERT_OK(steering_->setListener(inbound_.get()));
  // when a peer outside the pod connects to the application's port
  ConnectResult client = connectFrom(outside(), addr("198.18.0.2:8080"));
  // then ztunnel accepts it, and the accepted socket's local address is where the peer dialled
  ASSERT_EQ(client.error, 0) << std::strerror(client.error);
  EXPECT_EQ(acceptedAt(inbound_), "198.18.0.2:8080");
  EXPECT_FALSE(hasPendingConnection(app4_.get()));
  EXPECT_EQ(count(SLUICE_INBOUND_STEERED), 1u);
}

TEST_F(InboundTest, SteersIpv6ConnectionFromOutside) {
  ASSERT_OK(steering_->setListener(inbound_.get()));
  ConnectResult client = connectFrom(outside(), addr("[fd00:5::2]:8080"));
  ASSERT_EQ(client.error, 0) << std::strerror(client.error);
  EXPECT_EQ(acceptedAt(inbound_), "[fd00:5::2]:8080");
  EXPECT_FALSE(hasPendingConnection(app6_.get()));
}

TEST_F(InboundTest, SteersEachFamilyToItsListenerWhenThereAreTwo) {
  // given an IPv4 listener and an IPv6-only listener instead of one dual-stack listener
  inbound_ = UniqueFd();
  UniqueFd inbound4 = listenIn(pod(), addr("0.0.0.0:15006"));
  UniqueFd inbound6 = listenIn(pod(), addr("[::]:15006"), {.v6only = true});
  ASSERT_OK(steering_->setListener(inbound4.get()));
  ASSERT_OK(steering_->setListener(inbound6.get()));
  ASSERT_EQ(connectFrom(outside(), addr("198.18.0.2:8080")).error, 0);
  ASSERT_EQ(connectFrom(outside(), addr("[fd00:5::2]:8080")).error, 0);
  EXPECT_EQ(acceptedAt(inbound4), "198.18.0.2:8080");
  EXPECT_EQ(acceptedAt(inbound6), "[fd00:5::2]:8080");
}

TEST_F(InboundTest, SteersToListenerBoundToLoopbackOnly) {
  // given ztunnel's inbound listener bound where no peer could reach it by itself
  inbound_ = UniqueFd();
  inbound_ = listenIn(pod(), addr("127.0.0.1:15006"));
  ASSERT_OK(steering_->setListener(inbound_.get()));
  // when a peer outside connects to the application, then ztunnel gets it all the same
  ASSERT_EQ(connectFrom(outside(), addr("198.18.0.2:8080")).error, 0);
  EXPECT_EQ(acceptedAt(inbound_), "198.18.0.2:8080");
}

TEST_F(InboundTest, DoesNotSteerConnectionsFromInsideThePod) {
  // given steering in force
  ASSERT_OK(steering_->setListener(inbound_.get()));
  // when something inside the pod (ztunnel delivering to the application) connects to the pod
  // IP or to loopback
  for (const char* target : {"198.18.0.2:8080", "127.0.0.1:8080"}) {
    ASSERT_EQ(connectFrom(pod(), addr(target)).error, 0) << target;
    // then the application gets it directly
    EXPECT_EQ(acceptedAt(app4_), target);
  }
  for (const char* target : {"[fd00:5::2]:8080", "[::1]:8080"}) {
    ASSERT_EQ(connectFrom(pod(), addr(target)).error, 0) << target;
    EXPECT_EQ(acceptedAt(app6_), target);
  }
  EXPECT_FALSE(hasPendingConnection(inbound_.get()));
  EXPECT_EQ(count(SLUICE_INBOUND_PASS_LOCAL), 4u);
}

TEST_F(InboundTest, LeavesHboneToZtunnelsOwnListener) {
  ASSERT_OK(steering_->setListener(inbound_.get()));
  ASSERT_EQ(connectFrom(outside(), addr("198.18.0.2:15008")).error, 0);
  EXPECT_EQ(acceptedAt(hbone_), "198.18.0.2:15008");
  EXPECT_FALSE(hasPendingConnection(inbound_.get()));
  EXPECT_EQ(count(SLUICE_INBOUND_PASS_PORT), 1u);
}

TEST_F(InboundTest, RefusesConnectionsWhileNoListenerIsRegistered) {
  // given steering attached but no ztunnel listener registered
  // when a peer connects to the application
  ConnectResult client = connectFrom(outside(), addr("198.18.0.2:8080"));
  // then it is refused instead of reaching the application without ztunnel
  EXPECT_EQ(client.error, ECONNREFUSED) << std::strerror(client.error);
  EXPECT_FALSE(hasPendingConnection(app4_.get()));
  EXPECT_EQ(count(SLUICE_INBOUND_DROP_NO_LISTENER), 1u);
}

TEST_F(InboundTest, FailsClosedOnceTheListenerIsClosed) {
  ASSERT_OK(steering_->setListener(inbound_.get()));
  inbound_ = UniqueFd();  // ztunnel goes away: the kernel drops the socket from the SOCKMAP
  EXPECT_EQ(connectFrom(outside(), addr("198.18.0.2:8080")).error, ECONNREFUSED);
  EXPECT_FALSE(hasPendingConnection(app4_.get()));
}

TEST_F(InboundTest, FailsClosedOnceTheListenerIsUnregistered) {
  ASSERT_OK(steering_->setListener(inbound_.get()));
  ASSERT_OK(steering_->clearListeners());
  EXPECT_EQ(connectFrom(outside(), addr("198.18.0.2:8080")).error, ECONNREFUSED);
  EXPECT_FALSE(hasPendingConnection(inbound_.get()));
  EXPECT_FALSE(hasPendingConnection(app4_.get()));
}

TEST_F(InboundTest, KeepsSteeringWhileTheAgentIsGoneAndResumesFromPins) {
  ASSERT_OK(steering_->setListener(inbound_.get()));
  const std::string linkPin = pins_.path() + "/link_sk_lookup";
  std::uint32_t linkId = pinnedLinkId(linkPin);
  ASSERT_NE(linkId, 0u);
  // when the agent goes away, steering stays (pinned link and listener map)
  steering_.reset();
  ASSERT_EQ(connectFrom(outside(), addr("198.18.0.2:8080")).error, 0);
  EXPECT_EQ(acceptedAt(inbound_), "198.18.0.2:8080");
  // and a new agent takes it over in place, listener registration included
  ASSERT_OK(loadAndAttach());
  EXPECT_EQ(pinnedLinkId(linkPin), linkId);
  ASSERT_EQ(connectFrom(outside(), addr("198.18.0.2:8080")).error, 0);
  EXPECT_EQ(acceptedAt(inbound_), "198.18.0.2:8080");
  // and after uninstall connections reach the application directly again
  ASSERT_OK(steering_->uninstall());
  ASSERT_EQ(connectFrom(outside(), addr("198.18.0.2:8080")).error, 0);
  EXPECT_EQ(acceptedAt(app4_), "198.18.0.2:8080");
  EXPECT_FALSE(std::filesystem::exists(pins_.path()));
}

// BPF_PROG_TEST_RUN: the program's decisions without any packet.
class InboundTestRun : public InboundTest {
 protected:
  struct Outcome {
    int verdict = -1;
    std::uint64_t selectedCookie = 0;
  };

  Outcome run(bpf_sk_lookup ctx) {
    Outcome outcome;
    // Run inside the pod netns, where the registered listener lives.
    pod().within([&] {
      bpf_sk_lookup out{};
      LIBBPF_OPTS(bpf_test_run_opts, opts, .ctx_in = &ctx, .ctx_out = &out,
                  .ctx_size_in = sizeof(ctx), .ctx_size_out = sizeof(out));
      int err = bpf_prog_test_run_opts(steering_->programFd(), &opts);
      EXPECT_EQ(err, 0) << "BPF_PROG_TEST_RUN: " << std::strerror(-err);
      outcome.verdict = static_cast<int>(opts.retval);
      outcome.selectedCookie = out.cookie;
    });
    return outcome;
  }

  static bpf_sk_lookup tcpFromOutside(std::uint16_t localPort) {
    bpf_sk_lookup ctx{};
    ctx.family = AF_INET;
    ctx.protocol = IPPROTO_TCP;
    ctx.remote_ip4 = inet_addr("198.18.0.1");
    ctx.remote_port = htons(40000);
    ctx.local_ip4 = inet_addr("198.18.0.2");
    ctx.local_port = localPort;
    // BPF_PROG_TEST_RUN rejects a non-zero ingress_ifindex (it only takes fields up to
    // local_port), so the run sees 0.
    return ctx;
  }
};

TEST_F(InboundTestRun, SelectsTheRegisteredListener) {
  ASSERT_OK(steering_->setListener(inbound_.get()));
  Outcome outcome = run(tcpFromOutside(8080));
  EXPECT_EQ(outcome.verdict, SK_PASS);
  EXPECT_EQ(outcome.selectedCookie, socketCookie(inbound_.get()));
  EXPECT_EQ(count(SLUICE_INBOUND_STEERED), 1u);
}

TEST_F(InboundTestRun, DropsWhenNoListenerIsRegistered) {
  Outcome outcome = run(tcpFromOutside(8080));
  EXPECT_EQ(outcome.verdict, SK_DROP);
  EXPECT_EQ(outcome.selectedCookie, 0u);
  EXPECT_EQ(count(SLUICE_INBOUND_DROP_NO_LISTENER), 1u);
}

TEST_F(InboundTestRun, PassesPodToItselfHboneAndUdpWithoutSelecting) {
  ASSERT_OK(steering_->setListener(inbound_.get()));
  bpf_sk_lookup local = tcpFromOutside(8080);
  local.remote_ip4 = local.local_ip4;
  bpf_sk_lookup hbone = tcpFromOutside(15008);
  bpf_sk_lookup udp = tcpFromOutside(53);
  udp.protocol = IPPROTO_UDP;
  for (const auto& ctx : {local, hbone, udp}) {
    Outcome outcome = run(ctx);
    EXPECT_EQ(outcome.verdict, SK_PASS);
    EXPECT_EQ(outcome.selectedCookie, 0u);
  }
  EXPECT_EQ(count(SLUICE_INBOUND_PASS_LOCAL), 1u);
  EXPECT_EQ(count(SLUICE_INBOUND_PASS_PORT), 1u);
  EXPECT_EQ(count(SLUICE_INBOUND_PASS_PROTOCOL), 1u);
  EXPECT_EQ(count(SLUICE_INBOUND_STEERED), 0u);
}

}  // namespace
}  // namespace sluice::bpf
