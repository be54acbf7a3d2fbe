#include "core/telemetry/metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/telemetry/request_metrics.h"

namespace sluice::telemetry {
namespace {

using Labels = std::map<std::string, std::string>;

struct Sample {
  std::string name;
  Labels labels;
  double value = 0;
};

// A small reader for the text exposition format, enough to check what a Prometheus server would
// store: metric name, label set and value of every sample line.
std::vector<Sample> parseExposition(const std::string& text) {
  std::vector<Sample> samples;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    Sample s;
    std::size_t i = line.find_first_of("{ ");
    s.name = line.substr(0, i);
    if (line[i] == '{') {
      ++i;
      while (line[i] != '}') {
        const std::size_t eq = line.find('=', i);
        std::string key = line.substr(i, eq - i);
        std::string value;
        for (i = eq + 2; line[i] != '"'; ++i) {
          if (line[i] == '\\') {
            ++i;
            value.push_back(line[i] == 'n' ? '\n' : line[i]);
          } else {
            value.push_back(line[i]);
          }
        }
        ++i;  // closing quote
        if (line[i] == ',') ++i;
        s.labels.emplace(std::move(key), std::move(value));
      }
      ++i;
    }
    s.value = std::stod(line.substr(i + 1));
    samples.push_back(std::move(s));
  }
  return samples;
}

// Sum of the samples named `name` whose labels include every pair in `match`.
double total(const Metrics& metrics, const std::string& name, const Labels& match = {}) {
  double sum = 0;
  for (const Sample& s : parseExposition(metrics.serialize())) {
    if (s.name != name) continue;
    bool all = true;
    for (const auto& [k, v] : match) {
      auto it = s.labels.find(k);
      all = all && it != s.labels.end() && it->second == v;
    }
    if (all) sum += s.value;
  }
  return sum;
}

ConnectionLabels bookinfoLabels() {
  ConnectionLabels l;
  l.reporter = "destination";
  l.source.workload = "productpage-v1";
  l.source.workload_namespace = "bookinfo";
  l.source.principal = "spiffe://cluster.local/ns/bookinfo/sa/bookinfo-productpage";
  l.source.app = "productpage";
  l.source.version = "v1";
  l.source.cluster = "Kubernetes";
  l.source.canonical_service = "productpage";
  l.source.canonical_revision = "v1";
  l.destination_service = "reviews.bookinfo.svc.cluster.local";
  l.destination_service_name = "reviews";
  l.destination_service_namespace = "bookinfo";
  l.destination.workload = "reviews-v2";
  l.destination.workload_namespace = "bookinfo";
  l.destination.principal = "spiffe://cluster.local/ns/bookinfo/sa/bookinfo-reviews";
  l.destination.app = "reviews";
  l.destination.version = "v2";
  l.destination.cluster = "Kubernetes";
  l.destination.canonical_service = "reviews";
  l.destination.canonical_revision = "v2";
  l.connection_security_policy = "mutual_tls";
  return l;
}

const Labels kBookinfoExpected = {
    {"reporter", "destination"},
    {"source_workload", "productpage-v1"},
    {"source_workload_namespace", "bookinfo"},
    {"source_principal", "spiffe://cluster.local/ns/bookinfo/sa/bookinfo-productpage"},
    {"source_app", "productpage"},
    {"source_version", "v1"},
    {"source_cluster", "Kubernetes"},
    {"source_canonical_service", "productpage"},
    {"source_canonical_revision", "v1"},
    {"destination_service", "reviews.bookinfo.svc.cluster.local"},
    {"destination_service_name", "reviews"},
    {"destination_service_namespace", "bookinfo"},
    {"destination_workload", "reviews-v2"},
    {"destination_workload_namespace", "bookinfo"},
    {"destination_principal", "spiffe://cluster.local/ns/bookinfo/sa/bookinfo-reviews"},
    {"destination_app", "reviews"},
    {"destination_version", "v2"},
    {"destination_cluster", "Kubernetes"},
    {"destination_canonical_service", "reviews"},
    {"destination_canonical_revision", "v2"},
    {"request_protocol", "tcp"},
    {"response_flags", "-"},
    {"connection_security_policy", "mutual_tls"},
};

TEST(IstioTcpMetrics, ExportsIstioNamesWithExactlyIstiosLabelSet) {
  // Given a connection with every label known
  Metrics metrics;
  auto conn = metrics.openConnection(bookinfoLabels());
  conn->addSent(10);
  conn->addReceived(20);
  conn->close();

  // When the metrics are scraped
  const std::string text = metrics.serialize();

  // Then all four Istio series exist as counters, with exactly Istio's labels and our values,
  // so Kiali and the Istio dashboards match them.
  for (std::string_view name :
       {Metrics::kOpenedName, Metrics::kClosedName, Metrics::kSentName, Metrics::kReceivedName}) {
    EXPECT_THAT(text, testing::HasSubstr("# TYPE " + std::string(name) + " counter\n"));
    std::vector<Sample> found;
    for (Sample& s : parseExposition(text)) {
      if (s.name == name) found.push_back(std::move(s));
    }
    ASSERT_EQ(found.size(), 1u) << name;
    EXPECT_EQ(found[0].labels, kBookinfoExpected) << name;
  }
}

TEST(IstioTcpMetrics, ReportsUnknownForLabelsNobodyFilledIn) {
  // Given a connection about which nothing is known, some fields explicitly emptied
  Metrics metrics;
  ConnectionLabels labels;
  labels.source.workload = "";
  labels.response_flags = "";
  labels.request_protocol = "";

  // When it is opened
  auto conn = metrics.openConnection(labels);

  // Then Istio's defaults are reported
  std::vector<Sample> samples = parseExposition(metrics.serialize());
  ASSERT_EQ(samples.size(), 3u);  // opened, sent, received; closed has no series yet
  for (const Sample& s : samples) {
    EXPECT_EQ(s.labels.size(), 23u);
    for (const auto& [key, value] : s.labels) {
      if (key == "reporter") {
        EXPECT_EQ(value, "source");
      } else if (key == "request_protocol") {
        EXPECT_EQ(value, "tcp");
      } else if (key == "response_flags") {
        EXPECT_EQ(value, "-");
      } else {
        EXPECT_EQ(value, "unknown") << key;
      }
    }
  }
}

TEST(IstioTcpMetrics, CountsConnectionsAndBytesOverASequenceOfConnections) {
  Metrics metrics;
  ConnectionLabels other = bookinfoLabels();
  other.destination.workload = "reviews-v3";

  // Given three connections to reviews-v2 and one to reviews-v3
  auto a = metrics.openConnection(bookinfoLabels());
  auto b = metrics.openConnection(bookinfoLabels());
  auto c = metrics.openConnection(bookinfoLabels());
  auto d = metrics.openConnection(other);
  a->addSent(100);
  a->addReceived(7);
  b->addSent(1);
  b->addSent(2);
  c->addReceived(1000);
  d->addSent(5);

  // When two of them close explicitly and one by going out of scope
  a->close();
  b->close();
  d.reset();

  // Then each series counts its own connections and bytes
  const Labels v2 = {{"destination_workload", "reviews-v2"}};
  const Labels v3 = {{"destination_workload", "reviews-v3"}};
  EXPECT_EQ(total(metrics, "istio_tcp_connections_opened_total", v2), 3);
  EXPECT_EQ(total(metrics, "istio_tcp_connections_closed_total", v2), 2);
  EXPECT_EQ(total(metrics, "istio_tcp_sent_bytes_total", v2), 103);
  EXPECT_EQ(total(metrics, "istio_tcp_received_bytes_total", v2), 1007);
  EXPECT_EQ(total(metrics, "istio_tcp_connections_opened_total", v3), 1);
  EXPECT_EQ(total(metrics, "istio_tcp_connections_closed_total", v3), 1);
  EXPECT_EQ(total(metrics, "istio_tcp_sent_bytes_total", v3), 5);
  EXPECT_EQ(total(metrics, "istio_tcp_received_bytes_total", v3), 0);
  // and each connection knows its own totals for the access log
  EXPECT_EQ(a->sentBytes(), 100u);
  EXPECT_EQ(a->receivedBytes(), 7u);
  EXPECT_EQ(c->receivedBytes(), 1000u);

  c.reset();
  EXPECT_EQ(total(metrics, "istio_tcp_connections_closed_total", v2), 3);
}

TEST(IstioTcpMetrics, ClosingTwiceOrThenDestroyingCountsOneClose) {
  // Given an open connection
  Metrics metrics;
  auto conn = metrics.openConnection(bookinfoLabels());

  // When it is closed twice, once with a different flag, and then destroyed
  conn->close();
  conn->close("DENY");
  conn.reset();

  // Then exactly one close is counted, with the first call's flag
  EXPECT_EQ(total(metrics, "istio_tcp_connections_closed_total"), 1);
  EXPECT_EQ(total(metrics, "istio_tcp_connections_closed_total", {{"response_flags", "-"}}), 1);
}

TEST(IstioTcpMetrics, ResponseFlagsLabelOnlyTheClosedSeries) {
  // Given a connection denied by policy
  Metrics metrics;
  auto conn = metrics.openConnection(bookinfoLabels());
  conn->addReceived(3);

  // When it is closed with ztunnel's DENY flag
  conn->close("DENY");

  // Then the close carries the flag while the open and byte series keep "-", as in ztunnel
  EXPECT_EQ(total(metrics, "istio_tcp_connections_closed_total", {{"response_flags", "DENY"}}), 1);
  EXPECT_EQ(total(metrics, "istio_tcp_connections_opened_total", {{"response_flags", "-"}}), 1);
  EXPECT_EQ(total(metrics, "istio_tcp_received_bytes_total", {{"response_flags", "-"}}), 3);
  EXPECT_EQ(total(metrics, "istio_tcp_connections_closed_total", {{"response_flags", "-"}}), 0);
}

TEST(IstioTcpMetrics, CountsBytesFromManyThreadsWithoutLoss) {
  // Given connections on one series, each driven by its own thread
  Metrics metrics;
  constexpr int kThreads = 4;
  constexpr int kWrites = 10000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&metrics] {
      auto conn = metrics.openConnection(bookinfoLabels());
      for (int i = 0; i < kWrites; ++i) {
        conn->addSent(2);
        conn->addReceived(1);
      }
    });
  }
  for (auto& t : threads) t.join();

  // Then nothing is lost
  EXPECT_EQ(total(metrics, "istio_tcp_connections_opened_total"), kThreads);
  EXPECT_EQ(total(metrics, "istio_tcp_connections_closed_total"), kThreads);
  EXPECT_EQ(total(metrics, "istio_tcp_sent_bytes_total"), 2.0 * kThreads * kWrites);
  EXPECT_EQ(total(metrics, "istio_tcp_received_bytes_total"), 1.0 * kThreads * kWrites);
}

TEST(IstioTcpMetrics, OtherComponentsCanRegisterInTheSameRegistry) {
  // Given a family registered by another component
  Metrics metrics;
  auto& family = prometheus::BuildCounter()
                     .Name("sluice_config_reloads_total")
                     .Help("Config reloads")
                     .Register(metrics.registry());
  family.Add({}).Increment();

  // Then it is served with the Istio metrics
  EXPECT_EQ(total(metrics, "sluice_config_reloads_total"), 1);
}

TEST(IstioTcpMetrics, LabelValuesWithQuotesAndNewlinesStayParseable) {
  // Given a workload name a hostile peer could influence
  Metrics metrics;
  ConnectionLabels labels;
  labels.source.workload = "evil\"}\nistio_tcp_connections_opened_total{x=\"1";
  auto conn = metrics.openConnection(labels);

  // Then the exposition still holds exactly one opened sample, with the value intact
  std::vector<Sample> opened;
  for (Sample& s : parseExposition(metrics.serialize())) {
    if (s.name == "istio_tcp_connections_opened_total") opened.push_back(std::move(s));
  }
  ASSERT_EQ(opened.size(), 1u);
  EXPECT_EQ(opened[0].labels.at("source_workload"), labels.source.workload);
}

TEST(IstioRequestMetrics, EachResponseCodeAndGrpcStatusIsItsOwnSeriesWithIstiosLabels) {
  // Given a waypoint's HTTP metrics
  Metrics metrics;
  RequestMetrics requests(metrics.registry());
  RequestLabels ok;
  ok.connection = bookinfoLabels();
  ok.connection.reporter = "waypoint";
  ok.connection.request_protocol = "grpc";
  ok.response_code = 200;
  ok.grpc_response_status = "0";
  RequestLabels failed = ok;
  failed.grpc_response_status = "14";
  RequestLabels refused = ok;
  refused.response_code = 503;
  refused.connection.response_flags = "UF";
  refused.connection.source.workload.clear();  // nobody knew: reported as unknown

  // When requests of each kind finish
  for (int i = 0; i < 3; ++i) requests.record(ok, 2.5, 100, 200);
  requests.record(failed, 1, 10, 20);
  requests.record(refused, 1, 10, 0);

  // Then each outcome is counted on its own series, with every Istio label
  const std::string name(RequestMetrics::kRequestsName);
  EXPECT_EQ(total(metrics, name, {{"response_code", "200"}, {"grpc_response_status", "0"}}), 3);
  EXPECT_EQ(total(metrics, name, {{"grpc_response_status", "14"}}), 1);
  EXPECT_EQ(
      total(metrics, name,
            {{"response_code", "503"}, {"response_flags", "UF"}, {"source_workload", "unknown"}}),
      1);
  EXPECT_EQ(total(metrics, name), 5);
  for (const Sample& s : parseExposition(metrics.serialize())) {
    if (s.name != name) continue;
    EXPECT_EQ(s.labels.size(), 25u);  // the 23 of the TCP series, response_code, grpc status
    EXPECT_EQ(s.labels.at("reporter"), "waypoint");
  }
  // And the sizes are observed on the matching histogram
  // (append, not operator+: GCC 12 warns falsely about the temporary operator+ makes here)
  const std::string sum = std::string(RequestMetrics::kResponseBytesName).append("_sum");
  EXPECT_EQ(total(metrics, sum, {{"response_code", "200"}, {"grpc_response_status", "0"}}), 600);
}

}  // namespace
}  // namespace sluice::telemetry
