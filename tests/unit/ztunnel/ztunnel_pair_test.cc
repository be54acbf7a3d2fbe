// Two ztunnels on loopback, as two nodes, with the embedded CA: what a user of the tunnel sees.
// Workload addresses are unique 127.x.y.z per test process, so parallel runs never collide.
#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "core/h2/stream.h"
#include "core/hbone/connection.h"
#include "core/hbone/server.h"
#include "core/identity/ca.h"
#include "core/identity/tls.h"
#include "core/telemetry/metrics.h"
#include "support/async_test.h"
#include "ztunnel/ztunnel.h"

namespace sluice::ztunnel {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace asio::experimental::awaitable_operators;

std::string workloadIp(int host) {
  static const int subnet = 20 + (::getpid() % 200);
  static const int counter = [] {
    std::random_device rd;
    return static_cast<int>(rd() % 250);
  }();
  return "127." + std::to_string(subnet) + "." + std::to_string(counter) + "." +
         std::to_string(host);
}

class TempDir {
 public:
  TempDir() {
    path_ = std::filesystem::temp_directory_path() /
            ("sluice-ztunnel-test-" + std::to_string(::getpid()) + "-" +
             std::to_string(std::random_device{}()));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

struct MeshSpec {
  std::string client_ip = workloadIp(2);
  std::string server_ip = workloadIp(3);
  std::string outside_ip = workloadIp(4);  // a workload that is not in the mesh
  std::string vip = "198.19.7.10";
  std::string server_sa = "server";
  std::string mtls_mode = "PERMISSIVE";
  std::string service_labels = "{}";
  std::string extra_yaml;  // more documents, each starting with "---"
};

std::string meshYaml(const MeshSpec& m) {
  return R"(apiVersion: v1
kind: Namespace
metadata: {name: demo, labels: {sluice.dev/dataplane-mode: ambient}}
---
apiVersion: v1
kind: Namespace
metadata: {name: legacy}
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: demo, labels: {app: client}}
spec: {nodeName: node-a, serviceAccountName: client}
status: {phase: Running, podIP: )" +
         m.client_ip + R"(}
---
apiVersion: v1
kind: Pod
metadata: {name: server-7d9f8c6b5-x2x9z, namespace: demo, labels: {app: server, pod-template-hash: 7d9f8c6b5}}
spec: {nodeName: node-b, serviceAccountName: )" +
         m.server_sa + R"(}
status: {phase: Running, podIP: )" +
         m.server_ip + R"(}
---
apiVersion: v1
kind: Pod
metadata: {name: outside, namespace: legacy}
spec: {nodeName: node-b}
status: {phase: Running, podIP: )" +
         m.outside_ip + R"(}
---
apiVersion: v1
kind: Service
metadata: {name: server, namespace: demo, labels: )" +
         m.service_labels + R"(}
spec:
  clusterIP: )" +
         m.vip + R"(
  selector: {app: server}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: security.istio.io/v1beta1
kind: PeerAuthentication
metadata: {name: default, namespace: demo}
spec:
  mtls: {mode: )" +
         m.mtls_mode + R"(}
)" + m.extra_yaml;
}

void writeFile(const std::filesystem::path& path, const std::string& text) {
  std::filesystem::create_directories(path.parent_path());
  std::ofstream(path) << text;
}

std::string readFile(const std::filesystem::path& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// An application server on the server workload's address: echoes, or answers then closes.
class EchoServer {
 public:
  EchoServer(asio::io_context& io, const std::string& ip, uint16_t port)
      : acceptor_(io, tcp::endpoint(asio::ip::make_address(ip), port)) {
    asio::co_spawn(io, acceptLoop(), asio::detached);
  }
  std::atomic<int> accepted{0};
  boost::system::error_code last_error;  // how the last echo connection ended
  bool ended = false;

 private:
  asio::awaitable<void> acceptLoop() {
    for (;;) {
      auto [ec, socket] = co_await acceptor_.async_accept(asio::as_tuple(asio::use_awaitable));
      if (ec) co_return;
      ++accepted;
      asio::co_spawn(acceptor_.get_executor(), echo(std::move(socket), this), asio::detached);
    }
  }
  static asio::awaitable<void> echo(tcp::socket socket, EchoServer* self) {
    std::vector<char> buf(64 * 1024);
    for (;;) {
      auto [ec, n] =
          co_await socket.async_read_some(asio::buffer(buf), asio::as_tuple(asio::use_awaitable));
      if (ec == asio::error::eof) {
        // Half-close from the client: answer with a trailer, then close our side.
        co_await asio::async_write(socket, asio::buffer(std::string("<eof>")),
                                   asio::as_tuple(asio::use_awaitable));
        socket.shutdown(tcp::socket::shutdown_send);
        self->last_error = ec;
        self->ended = true;
        co_return;
      }
      if (ec) {
        self->last_error = ec;
        self->ended = true;
        co_return;
      }
      auto [wec, w] = co_await asio::async_write(socket, asio::buffer(buf.data(), n),
                                                 asio::as_tuple(asio::use_awaitable));
      if (wec) co_return;
    }
  }
  tcp::acceptor acceptor_;
};

class ZtunnelPair : public ::testing::Test {
 protected:
  void start(MeshSpec spec = {}, std::optional<MeshSpec> node_b_view = std::nullopt,
             std::string outbound_destination = "") {
    spec_ = spec;
    writeFile(dir_.path() / "a" / "mesh.yaml", meshYaml(spec));
    writeFile(dir_.path() / "b" / "mesh.yaml", meshYaml(node_b_view.value_or(spec)));
    if (outbound_destination.empty()) outbound_destination = spec.server_ip + ":8080";
    Options b;
    b.node = "node-b";
    b.config_dir = dir_.path() / "b";
    b.ca_dir = dir_.path() / "ca";
    b.access_log = (dir_.path() / "b.log").string();
    b.workers = 2;
    auto zb = Ztunnel::create(b);
    ASSERT_TRUE(zb) << zb.message();
    node_b_ = std::move(*zb);

    Options a = b;
    a.node = "node-a";
    a.config_dir = dir_.path() / "a";
    a.access_log = (dir_.path() / "a.log").string();
    a.pool_idle_timeout = std::chrono::milliseconds(300);
    a.workers = 1;  // pools are per worker: one worker makes connection counts exact
    auto dest = parseEndpoint(outbound_destination);
    ASSERT_TRUE(dest);
    a.outbound.push_back(
        {"demo", "client", tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0), *dest});
    auto za = Ztunnel::create(a);
    ASSERT_TRUE(za) << za.message();
    node_a_ = std::move(*za);
    node_a_->start();
    node_b_->start();
    app_ = std::make_unique<EchoServer>(io_, spec.server_ip, 8080);
  }

  void TearDown() override {
    if (node_a_) node_a_->stop();
    if (node_b_) node_b_->stop();
  }

  tcp::endpoint outbound() const { return node_a_->outboundEndpoints().at(0); }

  // Sends `payload` through the tunnel to the echo app, half-closes, and returns what came back.
  asio::awaitable<std::string> roundTrip(const std::string& payload) {
    tcp::socket socket(io_);
    co_await socket.async_connect(outbound(), asio::use_awaitable);
    std::string received;
    auto writer = [&]() -> asio::awaitable<void> {
      co_await asio::async_write(socket, asio::buffer(payload), asio::use_awaitable);
      socket.shutdown(tcp::socket::shutdown_send);
    };
    auto reader = [&]() -> asio::awaitable<void> {
      std::vector<char> buf(64 * 1024);
      for (;;) {
        auto [ec, n] =
            co_await socket.async_read_some(asio::buffer(buf), asio::as_tuple(asio::use_awaitable));
        if (ec) co_return;
        received.append(buf.data(), n);
      }
    };
    co_await (writer() && reader());
    co_return received;
  }

  TempDir dir_;
  MeshSpec spec_;
  asio::io_context io_;
  std::unique_ptr<Ztunnel> node_a_, node_b_;
  std::unique_ptr<EchoServer> app_;
};

// Sum over every series of one metric in Prometheus text.
double metricTotal(const std::string& text, const std::string& name) {
  double total = 0;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);)
    if (line.rfind(name + "{", 0) == 0) total += std::stod(line.substr(line.rfind(' ') + 1));
  return total;
}

std::string randomBytes(size_t n) {
  std::string out(n, '\0');
  std::mt19937_64 random(n);
  for (auto& c : out) c = static_cast<char>(random());
  return out;
}

TEST_F(ZtunnelPair, BytesCrossUnchangedBothWaysFromOneByteTo64MiB) {
  start();
  testing::runAsync(
      io_,
      [&]() -> asio::awaitable<void> {
        for (size_t size : {size_t{1}, size_t{1000}, size_t{1} << 20, size_t{64} << 20}) {
          const auto payload = randomBytes(size);
          const auto echoed = co_await roundTrip(payload);
          EXPECT_EQ(echoed.size(), size + 5) << "size " << size;
          EXPECT_TRUE(echoed == payload + "<eof>") << "bytes changed at size " << size;
        }
      },
      std::chrono::seconds(120));
}

TEST_F(ZtunnelPair, HalfCloseReachesTheAppAndTheReplyStillArrives) {
  start();
  testing::runAsync(io_, [&]() -> asio::awaitable<void> {
    // The echo app answers "<eof>" only after it sees the client's FIN, then closes.
    const auto echoed = co_await roundTrip("request");
    EXPECT_EQ(echoed, "request<eof>");
  });
}

TEST_F(ZtunnelPair, ClientResetReachesTheAppAsAReset) {
  start();
  testing::runAsync(io_, [&]() -> asio::awaitable<void> {
    tcp::socket socket(io_);
    co_await socket.async_connect(outbound(), asio::use_awaitable);
    co_await asio::async_write(socket, asio::buffer("x", 1), asio::use_awaitable);
    char c = 0;
    co_await asio::async_read(socket, asio::buffer(&c, 1), asio::use_awaitable);
    // When the client aborts (RST), then the app sees a reset too, not a clean end of stream.
    socket.set_option(asio::socket_base::linger(true, 0));
    socket.close();
    EXPECT_TRUE(co_await testing::eventually([&] { return app_->ended; }, std::chrono::seconds(5)));
    EXPECT_EQ(app_->last_error, asio::error::connection_reset) << app_->last_error.message();
  });
}

TEST_F(ZtunnelPair, TwoHundredConcurrentStreamsShareTwoPooledConnections) {
  start();
  testing::runAsync(
      io_,
      [&]() -> asio::awaitable<void> {
        std::vector<std::unique_ptr<tcp::socket>> sockets;
        for (int i = 0; i < 200; ++i) {
          auto socket = std::make_unique<tcp::socket>(io_);
          co_await socket->async_connect(outbound(), asio::use_awaitable);
          sockets.push_back(std::move(socket));
        }
        // Every stream carries a byte both ways while all 200 are open.
        for (auto& socket : sockets)
          co_await asio::async_write(*socket, asio::buffer("x", 1), asio::use_awaitable);
        for (auto& socket : sockets) {
          char c = 0;
          co_await asio::async_read(*socket, asio::buffer(&c, 1), asio::use_awaitable);
          EXPECT_EQ(c, 'x');
        }
        EXPECT_EQ(app_->accepted.load(), 200);
        EXPECT_EQ(node_a_->pooledConnections(), 2u) << "100 streams per pooled connection";
        sockets.clear();
        // Idle pooled connections close after the idle timeout (300 ms in this test).
        const bool drained = co_await testing::eventually(
            [&] { return node_a_->pooledConnections() == 0; }, std::chrono::seconds(5));
        EXPECT_TRUE(drained) << "idle pooled connections were not closed";
      },
      std::chrono::seconds(60));
}

TEST_F(ZtunnelPair, ServiceVipReachesAnEndpoint) {
  MeshSpec spec;
  start(spec, std::nullopt, spec.vip + ":80");
  testing::runAsync(io_, [&]() -> asio::awaitable<void> {
    EXPECT_EQ(co_await roundTrip("via service"), "via service<eof>");
  });
  const auto metrics = node_a_->metrics().serialize();
  EXPECT_NE(metrics.find("destination_service=\"server.demo.svc.cluster.local\""),
            std::string::npos)
      << metrics;
}

TEST_F(ZtunnelPair, PeerWithTheWrongIdentityIsRefused) {
  // Node b believes the server runs as "impostor"; node a expects "server".
  MeshSpec impostor;
  impostor.server_sa = "impostor";
  start(MeshSpec{}, impostor);
  testing::runAsync(io_, [&]() -> asio::awaitable<void> {
    const auto echoed = co_await roundTrip("secret");
    EXPECT_EQ(echoed, "") << "no byte may reach a peer that is not who we expect";
    // The refusal is logged as the connection ends, which the client may see first.
    EXPECT_TRUE(co_await testing::eventually(
        [&] {
          return readFile(dir_.path() / "a.log").find("is not one of the expected") !=
                 std::string::npos;
        },
        std::chrono::milliseconds(5000)));
  });
  EXPECT_EQ(app_->accepted.load(), 0);
  node_a_->stop();
  const auto log = readFile(dir_.path() / "a.log");
  EXPECT_NE(log.find("spiffe://cluster.local/ns/demo/sa/impostor"), std::string::npos) << log;
  EXPECT_NE(log.find("is not one of the expected"), std::string::npos) << log;
}

TEST_F(ZtunnelPair, MetricsAndAccessLogShowBothIdentities) {
  start();
  testing::runAsync(io_, [&]() -> asio::awaitable<void> {
    EXPECT_EQ(co_await roundTrip("hello"), "hello<eof>");
  });
  const std::string client = "spiffe://cluster.local/ns/demo/sa/client";
  const std::string server = "spiffe://cluster.local/ns/demo/sa/server";
  // The destination side reports when its splice ends; stop both so every report is written.
  node_a_->stop();
  node_b_->stop();
  for (auto* node : {node_a_.get(), node_b_.get()}) {
    const auto text = node->metrics().serialize();
    EXPECT_NE(text.find("source_principal=\"" + client + "\""), std::string::npos) << text;
    EXPECT_NE(text.find("destination_principal=\"" + server + "\""), std::string::npos) << text;
    EXPECT_NE(text.find("connection_security_policy=\"mutual_tls\""), std::string::npos);
    EXPECT_NE(text.find("destination_workload=\"server\""), std::string::npos)
        << "Deployment name derived from the pod name";
  }
  // Istio counts request bytes as received and response bytes as sent, on both reporters.
  for (auto* node : {node_a_.get(), node_b_.get()}) {
    const auto text = node->metrics().serialize();
    EXPECT_EQ(metricTotal(text, "istio_tcp_received_bytes_total"), 5) << text;
    EXPECT_EQ(metricTotal(text, "istio_tcp_sent_bytes_total"), 10) << text;
    EXPECT_EQ(metricTotal(text, "istio_tcp_connections_opened_total"), 1);
    EXPECT_EQ(metricTotal(text, "istio_tcp_connections_closed_total"), 1);
  }
  for (const char* file : {"a.log", "b.log"}) {
    const auto log = readFile(dir_.path() / file);
    EXPECT_NE(log.find("\"src_identity\":\"" + client + "\""), std::string::npos) << log;
    EXPECT_NE(log.find("\"dst_identity\":\"" + server + "\""), std::string::npos) << log;
  }
}

TEST_F(ZtunnelPair, NonMeshDestinationPassesThroughInPlaintext) {
  MeshSpec spec;
  start(spec, std::nullopt, spec.outside_ip + ":9090");
  EchoServer outside(io_, spec.outside_ip, 9090);
  testing::runAsync(io_, [&]() -> asio::awaitable<void> {
    EXPECT_EQ(co_await roundTrip("plain"), "plain<eof>");
  });
  EXPECT_EQ(outside.accepted.load(), 1);
  EXPECT_NE(node_a_->metrics().serialize().find("connection_security_policy=\"none\""),
            std::string::npos);
}

asio::awaitable<std::string> plaintextRoundTrip(asio::io_context& io, const std::string& ip) {
  tcp::socket socket(io);
  // A refusal may already reset the connect itself: both read as "nothing came back".
  auto [connect_ec] = co_await socket.async_connect(
      tcp::endpoint(asio::ip::make_address(ip), 15006), asio::as_tuple(asio::use_awaitable));
  if (connect_ec) co_return "";
  co_await asio::async_write(socket, asio::buffer(std::string("plain")),
                             asio::as_tuple(asio::use_awaitable));
  socket.shutdown(tcp::socket::shutdown_send);
  std::string received;
  std::vector<char> buf(4096);
  for (;;) {
    auto [ec, n] =
        co_await socket.async_read_some(asio::buffer(buf), asio::as_tuple(asio::use_awaitable));
    if (ec) break;
    received.append(buf.data(), n);
  }
  co_return received;
}

TEST_F(ZtunnelPair, StrictPeerAuthenticationRejectsPlaintext) {
  MeshSpec spec;
  spec.mtls_mode = "STRICT";
  start(spec);
  testing::runAsync(io_, [&]() -> asio::awaitable<void> {
    EXPECT_EQ(co_await plaintextRoundTrip(io_, spec.server_ip), "");
  });
  node_b_->stop();
  const auto log = readFile(dir_.path() / "b.log");
  EXPECT_NE(log.find("PeerAuthentication STRICT"), std::string::npos) << log;
}

TEST_F(ZtunnelPair, PermissivePeerAuthenticationAcceptsPlaintext) {
  MeshSpec spec;
  spec.mtls_mode = "PERMISSIVE";
  start(spec);
  testing::runAsync(
      io_, [&]() -> asio::awaitable<void> { co_await plaintextRoundTrip(io_, spec.server_ip); });
  node_b_->stop();
  // Policy lets it through; without capture there is no original destination to forward to
  // (the lab tests of the capture issue carry plaintext end to end).
  const auto log = readFile(dir_.path() / "b.log");
  EXPECT_EQ(log.find("PeerAuthentication STRICT"), std::string::npos) << log;
  EXPECT_NE(log.find("no original destination"), std::string::npos) << log;
}

// --- Waypoint redirection -----------------------------------------------------------------

const std::string kWaypointId = "spiffe://cluster.local/ns/demo/sa/waypoint";
const std::string kClientId = "spiffe://cluster.local/ns/demo/sa/client";

std::shared_ptr<asio::ssl::context> waypointTls(const std::filesystem::path& ca_dir, bool server) {
  auto ca = identity::CertificateAuthority::loadOrCreate(ca_dir, "cluster.local");
  EXPECT_TRUE(ca) << ca.message();
  auto id = identity::SpiffeId::forWorkload("cluster.local", "demo", "waypoint").value();
  auto cert = ca->issue(id).value();
  auto ctx = server ? identity::serverContext(*cert) : identity::clientContext(*cert);
  return std::make_shared<asio::ssl::context>(ctx.value().release());
}

// The waypoint's Deployment pod: not enrolled (it has its own HBONE listener), on node b.
MeshSpec waypointMesh(bool with_instance = true) {
  MeshSpec spec;
  spec.service_labels = "{sluice.dev/use-waypoint: waypoint}";
  if (with_instance)
    spec.extra_yaml = R"(---
apiVersion: v1
kind: Pod
metadata:
  name: waypoint-5f6d7c8b9-q1w2e
  namespace: demo
  labels:
    gateway.networking.k8s.io/gateway-name: waypoint
    sluice.dev/dataplane-mode: none
    pod-template-hash: 5f6d7c8b9
spec: {nodeName: node-b, serviceAccountName: waypoint}
status: {phase: Running, podIP: )" +
                      workloadIp(5) + R"(}
)";
  return spec;
}

// Stands in for the waypoint: an HBONE server on its pod's 15008 with its identity, recording
// each CONNECT and echoing the tunnel's bytes, then "<waypoint>" once the client half-closes.
class FakeWaypoint {
 public:
  struct Connect {
    std::string authority, peer, forwarded;
  };

  FakeWaypoint(asio::io_context& io, const std::filesystem::path& ca_dir)
      : tls_(waypointTls(ca_dir, true)) {
    auto server = hbone::Server::create(
        io.get_executor(), tcp::endpoint(asio::ip::make_address(workloadIp(5)), 15008),
        [this] { return tls_; },
        [this](std::shared_ptr<h2::Stream> stream, hbone::InboundContext context) {
          return serve(std::move(stream), std::move(context));
        });
    EXPECT_TRUE(server) << server.message();
    server_ = std::move(*server);
    server_->start();
  }
  ~FakeWaypoint() { server_->stop(); }

  std::vector<Connect> connects;

 private:
  asio::awaitable<void> serve(std::shared_ptr<h2::Stream> stream, hbone::InboundContext context) {
    connects.push_back({stream->authority(), context.peer.str(), stream->header("forwarded")});
    stream->respond(200);
    std::vector<char> buf(64 * 1024);
    boost::system::error_code ec;
    for (;;) {
      const size_t n = co_await stream->read(asio::buffer(buf), ec);
      if (ec) break;
      co_await stream->write(asio::buffer(buf.data(), n), ec);
      if (ec) co_return;
    }
    if (ec != asio::error::eof) co_return;
    const std::string done = "<waypoint>";
    co_await stream->write(asio::buffer(done), ec);
    stream->closeWrite();
  }

  std::shared_ptr<asio::ssl::context> tls_;
  std::unique_ptr<hbone::Server> server_;
};

TEST_F(ZtunnelPair, ServiceWithAWaypointIsTunneledToItWithTheVipAsAuthority) {
  const MeshSpec spec = waypointMesh();
  start(spec, std::nullopt, spec.vip + ":80");
  FakeWaypoint waypoint(io_, dir_.path() / "ca");
  testing::runAsync(io_, [&]() -> asio::awaitable<void> {
    EXPECT_EQ(co_await roundTrip("via waypoint"), "via waypoint<waypoint>");
  });
  // The waypoint, which proved its identity, got the service address and the client's identity;
  // the endpoint was left for it to choose.
  ASSERT_EQ(waypoint.connects.size(), 1u);
  EXPECT_EQ(waypoint.connects[0].authority, spec.vip + ":80");
  EXPECT_EQ(waypoint.connects[0].peer, kClientId);
  EXPECT_EQ(waypoint.connects[0].forwarded, "for=\"" + spec.client_ip + "\"");
  EXPECT_EQ(app_->accepted.load(), 0);

  node_a_->stop();
  const auto text = node_a_->metrics().serialize();
  EXPECT_NE(text.find("destination_service=\"server.demo.svc.cluster.local\""), std::string::npos)
      << text;
  EXPECT_NE(text.find("destination_workload=\"waypoint\""), std::string::npos) << text;
  EXPECT_NE(text.find("destination_principal=\"" + kWaypointId + "\""), std::string::npos) << text;
  const auto log = readFile(dir_.path() / "a.log");
  EXPECT_NE(log.find("\"dst\":\"" + spec.vip + ":80\""), std::string::npos) << log;
  EXPECT_NE(log.find("\"dst_identity\":\"" + kWaypointId + "\""), std::string::npos) << log;
}

TEST_F(ZtunnelPair, ServiceWhoseWaypointHasNoInstanceIsRefusedNotBypassed) {
  const MeshSpec spec = waypointMesh(/*with_instance=*/false);
  start(spec, std::nullopt, spec.vip + ":80");
  testing::runAsync(io_, [&]() -> asio::awaitable<void> {
    tcp::socket socket(io_);
    // The refusal may reset the connection during the connect, the write or the read: however
    // it shows, nothing comes back.
    auto [connect_ec] =
        co_await socket.async_connect(outbound(), asio::as_tuple(asio::use_awaitable));
    if (connect_ec) co_return;
    co_await asio::async_write(socket, asio::buffer(std::string("secret")),
                               asio::as_tuple(asio::use_awaitable));
    char c = 0;
    auto [ec, n] =
        co_await asio::async_read(socket, asio::buffer(&c, 1), asio::as_tuple(asio::use_awaitable));
    EXPECT_TRUE(ec) << "the connection should have been refused";
    EXPECT_EQ(n, 0u);
  });
  EXPECT_EQ(app_->accepted.load(), 0) << "the endpoint must not be reached around the waypoint";
  node_a_->stop();
  const auto log = readFile(dir_.path() / "a.log");
  EXPECT_NE(log.find("uses waypoint demo/waypoint, which has no ready instance"), std::string::npos)
      << log;
  EXPECT_NE(node_a_->metrics().serialize().find("response_flags=\"UH\""), std::string::npos);
}

TEST_F(ZtunnelPair, ConnectionFromTheWaypointIsOrdinaryInboundAtTheDestination) {
  // The waypoint's second hop: HBONE to the chosen endpoint's 15008 as the waypoint itself.
  start(waypointMesh());
  testing::runAsync(io_, [&]() -> asio::awaitable<void> {
    // Named, not braced into the call: g++ 12 rejects initializer lists inside co_await operands.
    std::vector<identity::SpiffeId> expected{
        identity::SpiffeId::forWorkload("cluster.local", "demo", "server").value()};
    h2::Headers headers{{"forwarded", "for=\"" + spec_.client_ip + "\""}};
    const tcp::endpoint server(asio::ip::make_address(spec_.server_ip), 15008);
    auto connection =
        co_await hbone::dial(io_.get_executor(), server, waypointTls(dir_.path() / "ca", false),
                             std::move(expected), hbone::DialOptions{});
    EXPECT_TRUE(connection) << connection.message();
    if (!connection) co_return;
    auto stream = (*connection)->session().connect(spec_.server_ip + ":8080", headers);
    EXPECT_TRUE(stream) << stream.message();
    if (!stream) co_return;
    EXPECT_EQ(co_await (*stream)->response(), 200);
    boost::system::error_code ec;
    const std::string hello = "from waypoint";
    co_await (*stream)->write(asio::buffer(hello), ec);
    (*stream)->closeWrite();
    std::string received;
    std::vector<char> buf(4096);
    for (;;) {
      const size_t n = co_await (*stream)->read(asio::buffer(buf), ec);
      if (ec) break;
      received.append(buf.data(), n);
    }
    EXPECT_EQ(received, "from waypoint<eof>");
    (*connection)->close();
  });
  node_b_->stop();
  const auto log = readFile(dir_.path() / "b.log");
  EXPECT_NE(log.find("\"src_identity\":\"" + kWaypointId + "\""), std::string::npos) << log;
  EXPECT_NE(node_b_->metrics().serialize().find("source_principal=\"" + kWaypointId + "\""),
            std::string::npos);
}

}  // namespace
}  // namespace sluice::ztunnel
