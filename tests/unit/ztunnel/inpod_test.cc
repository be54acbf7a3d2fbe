// In-pod mode with real network namespaces: the test plays the node agent, handing ztunnel two
// pods (each its own netns, joined by a veth) over the agent protocol; ztunnel opens its
// listeners inside them and carries a connection from one pod to the other over HBONE.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "core/inpod/netns.h"
#include "core/inpod/protocol.h"
#include "support/root_test.h"
#include "ztunnel/ztunnel.h"

namespace sluice::ztunnel {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;

int run(const std::string& command) { return std::system((command + " >/dev/null 2>&1").c_str()); }

// Two pod namespaces joined by a veth pair, removed in the destructor (also on failure).
struct PodPair {
  std::string tag = std::to_string(::getpid()) + "x" + std::to_string(std::random_device{}() % 1000);
  std::string ns_a = "sluice-zt-" + tag + "-a";
  std::string ns_b = "sluice-zt-" + tag + "-b";
  int subnet = 100 + static_cast<int>(std::random_device{}() % 150);
  std::string ip_a = "198.18." + std::to_string(subnet) + ".1";
  std::string ip_b = "198.18." + std::to_string(subnet) + ".2";
  bool ok = false;

  PodPair() {
    sweepStale();
    ok = run("ip netns add " + ns_a) == 0 && run("ip netns add " + ns_b) == 0 &&
         run("ip link add szt" + tag + "a type veth peer name szt" + tag + "b") == 0 &&
         run("ip link set szt" + tag + "a netns " + ns_a) == 0 &&
         run("ip link set szt" + tag + "b netns " + ns_b) == 0 &&
         run("ip -n " + ns_a + " addr add " + ip_a + "/24 dev szt" + tag + "a") == 0 &&
         run("ip -n " + ns_b + " addr add " + ip_b + "/24 dev szt" + tag + "b") == 0 &&
         run("ip -n " + ns_a + " link set szt" + tag + "a up") == 0 &&
         run("ip -n " + ns_b + " link set szt" + tag + "b up") == 0 &&
         run("ip -n " + ns_a + " link set lo up") == 0 && run("ip -n " + ns_b + " link set lo up") == 0;
  }
  ~PodPair() {
    run("ip netns del " + ns_a);
    run("ip netns del " + ns_b);
  }
  // Namespaces left by a test process that crashed (its pid is in the name) are removed.
  static void sweepStale() {
    if (!std::filesystem::is_directory("/run/netns")) return;
    for (const auto& entry : std::filesystem::directory_iterator("/run/netns")) {
      const auto name = entry.path().filename().string();
      if (name.rfind("sluice-zt-", 0) != 0) continue;
      const auto pid = std::atoi(name.c_str() + 10);
      if (pid > 0 && pid != ::getpid() && !std::filesystem::exists("/proc/" + std::to_string(pid)))
        run("ip netns del " + name);
    }
  }
};

// The node agent's end of the protocol, driven synchronously by the test.
class FakeAgent {
 public:
  explicit FakeAgent(std::filesystem::path path) : path_(std::move(path)) {
    listener_ = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strcpy(address.sun_path, path_.c_str());
    EXPECT_EQ(::bind(listener_, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
    EXPECT_EQ(::listen(listener_, 4), 0);
  }
  ~FakeAgent() {
    if (connection_ >= 0) ::close(connection_);
    ::close(listener_);
  }
  // Waits (deadline 10 s) for ztunnel to connect and say hello.
  bool accept() {
    if (connection_ >= 0) ::close(connection_);
    pollfd pfd{listener_, POLLIN, 0};
    if (::poll(&pfd, 1, 10000) != 1) return false;
    connection_ = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
    auto hello = receive();
    return hello && hello->type == inpod::Message::Type::kHello;
  }
  std::string add(const std::string& uid, const std::string& name, const std::string& ip,
                  const std::string& netns) {
    inpod::Message message;
    message.type = inpod::Message::Type::kAdd;
    message.workload = {uid, "demo", name, name, {asio::ip::make_address(ip)}};
    if (netns.empty()) {
      EXPECT_TRUE(inpod::sendMessage(connection_, message));
      return ackError();
    }
    auto ns = inpod::Netns::open("/run/netns/" + netns);
    EXPECT_TRUE(ns) << ns.message();
    EXPECT_TRUE(inpod::sendMessage(connection_, message, ns->fd()));
    return ackError();
  }
  std::string sendRaw(const std::string& text) {
    EXPECT_GE(::send(connection_, text.data(), text.size(), MSG_NOSIGNAL), 0);
    return ackError();
  }
  std::string send(inpod::Message::Type type, const std::string& uid = "") {
    inpod::Message message;
    message.type = type;
    message.uid = uid;
    EXPECT_TRUE(inpod::sendMessage(connection_, message));
    return ackError();
  }

 private:
  std::optional<inpod::Message> receive() {
    pollfd pfd{connection_, POLLIN, 0};
    if (::poll(&pfd, 1, 10000) != 1) return std::nullopt;
    auto received = inpod::receiveMessage(connection_);
    if (!received) return std::nullopt;
    return received->message;
  }
  std::string ackError() {
    auto ack = receive();
    if (!ack || ack->type != inpod::Message::Type::kAck) return "no ack";
    return ack->error;
  }
  std::filesystem::path path_;
  int listener_ = -1;
  int connection_ = -1;
};

class InPod : public ::testing::Test {
 protected:
  void SetUp() override {
    SLUICE_REQUIRE_ROOT("creates network namespaces and veths");
    ASSERT_TRUE(pods_.ok) << "could not create the test namespaces " << pods_.ns_a << "/"
                          << pods_.ns_b;
    dir_ = std::filesystem::temp_directory_path() / ("sluice-inpod-" + pods_.tag);
    std::filesystem::create_directories(dir_ / "config");
    std::ofstream(dir_ / "config" / "mesh.yaml") << R"(apiVersion: v1
kind: Namespace
metadata: {name: demo, labels: {sluice.dev/dataplane-mode: ambient}}
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: demo, uid: uid-a}
spec: {nodeName: node-1, serviceAccountName: client}
status: {phase: Running, podIP: )" + pods_.ip_a + R"(}
---
apiVersion: v1
kind: Pod
metadata: {name: server, namespace: demo, uid: uid-b}
spec: {nodeName: node-1, serviceAccountName: server}
status: {phase: Running, podIP: )" + pods_.ip_b + R"(}
)";
    agent_ = std::make_unique<FakeAgent>(dir_ / "agent.sock");
  }
  void TearDown() override {
    if (ztunnel_) ztunnel_->stop();
    agent_.reset();
    std::filesystem::remove_all(dir_);
  }

  void writeMtls(const std::string& mode) {
    std::ofstream(dir_ / "config" / "peer-authentication.yaml") << R"(apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: demo}
spec:
  mtls: {mode: )" + mode + "}\n";
  }

  // Pod A connects straight to pod B's application address, as a pod outside the mesh would
  // (nothing captures pod A here): pod B's steering hands the connection to ztunnel's 15006.
  std::string plaintextToB(const std::string& payload) {
    return echoFromA(tcp::endpoint(asio::ip::make_address(pods_.ip_b), 8080), payload);
  }

  std::string accessLog() {
    std::ifstream log(dir_ / "access.log");
    return std::string(std::istreambuf_iterator<char>(log), {});
  }

  void startZtunnel() {
    Options options;
    options.node = "node-1";
    options.config_dir = dir_ / "config";
    options.ca_dir = dir_ / "ca";
    options.access_log = (dir_ / "access.log").string();
    options.inpod_socket = dir_ / "agent.sock";
    options.workers = 1;
    options.bpf_pin_dir.clear();  // steering without pins: it ends with the test
    options.admin.reset();
    options.metrics.reset();
    options.readiness.reset();
    const auto app = tcp::endpoint(asio::ip::make_address(pods_.ip_b), 8080);
    // Stands in for the capture programs' original-destination map.
    options.original_destination = [app](int) { return app; };
    auto created = Ztunnel::create(options);
    ASSERT_TRUE(created) << created.message();
    ztunnel_ = std::move(*created);
    ztunnel_->start();
    ASSERT_TRUE(agent_->accept()) << "ztunnel did not connect to the agent socket";
  }

  // A TCP socket made inside a pod's namespace, as the pod's application would have.
  tcp::socket podSocket(asio::io_context& io, const std::string& netns) {
    auto ns = inpod::Netns::open("/run/netns/" + netns).value();
    tcp::socket socket(io);
    socket.assign(tcp::v4(), inpod::socketIn(ns, AF_INET, SOCK_STREAM).value());
    return socket;
  }
  tcp::acceptor podListener(asio::io_context& io, const std::string& netns, const std::string& ip,
                            uint16_t port) {
    auto ns = inpod::Netns::open("/run/netns/" + netns).value();
    tcp::acceptor acceptor(io);
    acceptor.assign(tcp::v4(), inpod::socketIn(ns, AF_INET, SOCK_STREAM).value());
    acceptor.set_option(tcp::acceptor::reuse_address(true));
    acceptor.bind(tcp::endpoint(asio::ip::make_address(ip), port));
    acceptor.listen();
    return acceptor;
  }

  // Client in pod A connects to its own 127.0.0.1:15001 (where capture would send it); the
  // server app in pod B echoes one message. Returns what the client read back.
  std::string exchange(const std::string& payload) {
    return echoFromA(tcp::endpoint(asio::ip::make_address("127.0.0.1"), 15001), payload);
  }

  // An echo app on pod B's 8080 and a client in pod A connecting to `target`: returns what
  // the client read back, or "error: ..." when the connection failed.
  std::string echoFromA(const tcp::endpoint& target, const std::string& payload) {
    asio::io_context io;
    auto app = podListener(io, pods_.ns_b, pods_.ip_b, 8080);
    std::thread server([&] {
      boost::system::error_code ec;
      auto peer = app.accept(ec);
      if (ec) return;
      std::string buffer(payload.size(), '\0');
      asio::read(peer, asio::buffer(buffer), ec);
      asio::write(peer, asio::buffer(buffer), ec);
    });
    std::string reply(payload.size(), '\0');
    {
      auto client = podSocket(io, pods_.ns_a);
      boost::system::error_code ec;
      client.non_blocking(false);
      client.connect(target, ec);
      if (!ec) asio::write(client, asio::buffer(payload), ec);
      if (!ec) asio::read(client, asio::buffer(reply), ec);
      if (ec) reply = "error: " + ec.message();
    }
    // Wakes the server thread's blocking accept (closing alone would not).
    ::shutdown(app.native_handle(), SHUT_RDWR);
    app.close();
    server.join();
    return reply;
  }

  PodPair pods_;
  std::filesystem::path dir_;
  std::unique_ptr<FakeAgent> agent_;
  std::unique_ptr<Ztunnel> ztunnel_;
};

TEST_F(InPod, PodsHandedOverByTheAgentTalkOverHbone) {
  startZtunnel();
  EXPECT_EQ(agent_->add("uid-a", "client", pods_.ip_a, pods_.ns_a), "");
  EXPECT_EQ(agent_->add("uid-b", "server", pods_.ip_b, pods_.ns_b), "");
  EXPECT_EQ(agent_->send(inpod::Message::Type::kSnapshotSent), "");
  EXPECT_EQ(exchange("hello across namespaces"), "hello across namespaces");
  // Both ends report when their splice ends: wait for two lines (deadline 10 s).
  std::string text;
  for (auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
       std::chrono::steady_clock::now() < until;
       std::this_thread::sleep_for(std::chrono::milliseconds(10))) {
    std::ifstream log(dir_ / "access.log");
    text.assign(std::istreambuf_iterator<char>(log), {});
    if (std::count(text.begin(), text.end(), '\n') >= 2) break;
  }
  EXPECT_NE(text.find("\"src_identity\":\"spiffe://cluster.local/ns/demo/sa/client\""),
            std::string::npos) << text;
  EXPECT_NE(text.find("\"dst_identity\":\"spiffe://cluster.local/ns/demo/sa/server\""),
            std::string::npos) << text;
}

TEST_F(InPod, PermissivePlaintextIsSteeredThroughZtunnelToTheApp) {
  startZtunnel();
  ASSERT_EQ(agent_->add("uid-b", "server", pods_.ip_b, pods_.ns_b), "");
  EXPECT_EQ(plaintextToB("plain hello"), "plain hello");
  // The connection went through ztunnel's inbound plaintext path, to the original port.
  std::string log;
  for (auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
       std::chrono::steady_clock::now() < until && log.find(pods_.ip_b + ":8080") == std::string::npos;
       std::this_thread::sleep_for(std::chrono::milliseconds(10)))
    log = accessLog();
  EXPECT_NE(log.find("\"dst\":\"" + pods_.ip_b + ":8080\""), std::string::npos) << log;
}

TEST_F(InPod, StrictRefusesPlaintextAndTheAppNeverSeesIt) {
  writeMtls("STRICT");
  startZtunnel();
  ASSERT_EQ(agent_->add("uid-b", "server", pods_.ip_b, pods_.ns_b), "");
  EXPECT_EQ(plaintextToB("secret").rfind("error: ", 0), 0u) << "plaintext reached the app";
}

TEST_F(InPod, RemovedPodIsNoLongerServed) {
  startZtunnel();
  ASSERT_EQ(agent_->add("uid-a", "client", pods_.ip_a, pods_.ns_a), "");
  ASSERT_EQ(agent_->add("uid-b", "server", pods_.ip_b, pods_.ns_b), "");
  EXPECT_EQ(agent_->send(inpod::Message::Type::kRemove, "uid-a"), "");
  // Pod A's outbound listener is gone: its connect to 15001 is refused.
  EXPECT_EQ(exchange("x").rfind("error: ", 0), 0u);
  EXPECT_EQ(ztunnel_->workloads(), std::vector<std::string>{"demo/server"});
}

TEST_F(InPod, SnapshotMarkerDropsPodsTheAgentNoLongerLists) {
  startZtunnel();
  ASSERT_EQ(agent_->add("uid-a", "client", pods_.ip_a, pods_.ns_a), "");
  ASSERT_EQ(agent_->add("uid-b", "server", pods_.ip_b, pods_.ns_b), "");
  ASSERT_EQ(agent_->send(inpod::Message::Type::kSnapshotSent), "");
  // The agent restarts: ztunnel reconnects; the new agent lists only the server.
  agent_.reset();
  std::filesystem::remove(dir_ / "agent.sock");
  agent_ = std::make_unique<FakeAgent>(dir_ / "agent.sock");
  // Until the agent is back, the pods stay served.
  EXPECT_EQ(ztunnel_->workloads().size(), 2u);
  ASSERT_TRUE(agent_->accept());
  ASSERT_EQ(agent_->add("uid-b", "server", pods_.ip_b, pods_.ns_b), "");
  ASSERT_EQ(agent_->send(inpod::Message::Type::kSnapshotSent), "");
  EXPECT_EQ(ztunnel_->workloads(), std::vector<std::string>{"demo/server"});
}

TEST_F(InPod, BadAgentMessagesAreRefusedWithAReasonAndTheSessionGoesOn) {
  startZtunnel();
  EXPECT_NE(agent_->add("uid-a", "client", pods_.ip_a, "").find("no network namespace"),
            std::string::npos);
  EXPECT_NE(agent_->sendRaw("{\"type\":\"launch\"}").find("unknown message type"),
            std::string::npos);
  EXPECT_NE(agent_->sendRaw("not json").find("invalid message"), std::string::npos);
  EXPECT_EQ(agent_->send(inpod::Message::Type::kRemove, "never-added"), "")
      << "removing an unknown pod is not an error";
  // The same connection still works.
  EXPECT_EQ(agent_->add("uid-b", "server", pods_.ip_b, pods_.ns_b), "");
  EXPECT_EQ(ztunnel_->workloads(), std::vector<std::string>{"demo/server"});
}

}  // namespace
}  // namespace sluice::ztunnel
