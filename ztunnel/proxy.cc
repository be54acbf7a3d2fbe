// The connection handlers: inbound HBONE, inbound plaintext, outbound, and dialing.
#include <spdlog/spdlog.h>

#include <random>

#include "core/config/service_rules.h"
#include "core/h2/stream.h"
#include "core/hbone/connection.h"
#include "core/hbone/metadata.h"
#include "core/hbone/splice.h"
#include "core/net/authority.h"
#include "core/telemetry/response_flags.h"
#include "ztunnel/impl.h"

namespace sluice::ztunnel {

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

// One proxied connection's telemetry: Istio metrics while it runs, an access log line at the end.
class ConnectionReport {
 public:
  ConnectionReport(telemetry::Metrics& metrics, telemetry::AccessLog* log,
                   telemetry::ConnectionLabels labels, telemetry::ConnectionRecord record)
      : metrics_(metrics.openConnection(labels)),
        log_(log),
        record_(std::move(record)),
        start_(std::chrono::steady_clock::now()) {}

  // Istio counts by request/response, whatever the reporter: "received" is the client's
  // request bytes, "sent" the response bytes. `local_is_client` says which side of the
  // splice is the client.
  net::ByteCounter counter(bool local_is_client) {
    local_is_client_ = local_is_client;
    return [this, local_is_client](uint64_t to_peer, uint64_t from_peer) {
      const uint64_t request = local_is_client ? to_peer : from_peer;
      const uint64_t response = local_is_client ? from_peer : to_peer;
      if (request) metrics_->addReceived(request);
      if (response) metrics_->addSent(response);
    };
  }

  void finish(const net::SpliceResult& result, telemetry::ResponseFlags flags = {}) {
    // The access log, like the metrics, counts request bytes as sent by the source.
    record_.bytes_sent = local_is_client_ ? result.to_peer : result.from_peer;
    record_.bytes_received = local_is_client_ ? result.from_peer : result.to_peer;
    finish(result.error, flags);
  }
  // A connection still open when ztunnel stops is reported too.
  ~ConnectionReport() {
    if (!finished_) finish("closed by ztunnel shutdown", {});
  }

  void finish(const std::string& error, telemetry::ResponseFlags flags) {
    finished_ = true;
    record_.error = error;
    record_.duration = std::chrono::duration_cast<std::chrono::microseconds>(
        std::chrono::steady_clock::now() - start_);
    metrics_->close(flags.toString());
    if (log_) log_->log(record_);
  }

 private:
  std::unique_ptr<telemetry::Metrics::Connection> metrics_;
  telemetry::AccessLog* log_;
  telemetry::ConnectionRecord record_;
  std::chrono::steady_clock::time_point start_;
  bool local_is_client_ = true;
  bool finished_ = false;
};

}  // namespace

asio::awaitable<Result<tcp::socket>> Ztunnel::Impl::connectDirect(Worker& worker,
                                                                  const Workload& from,
                                                                  const tcp::endpoint& target) {
  auto socket = co_await net::connectSocket(
      worker.io.get_executor(), target, from.sockets(options.socket_mark), options.connect_timeout);
  if (!socket) co_return makeError("connect to " + net::formatAuthority(target) + ": " + socket.message());
  co_return std::move(*socket);
}

asio::awaitable<void> Ztunnel::Impl::serveHbone(Worker& worker,
                                                std::shared_ptr<const Workload> workload,
                                                std::shared_ptr<h2::Stream> stream,
                                                hbone::InboundContext context) {
  auto snap = snapshot.load();
  const config::Pod* local = &workload->pod;
  const std::string key = workload->key();
  const auto decision =
      decideInbound(*snap, *local, stream->header(":method"), stream->authority());

  telemetry::ConnectionLabels labels;
  labels.reporter = "destination";
  labels.connection_security_policy = "mutual_tls";
  labels.source.principal = context.peer.str();
  // The client's workload comes from the forwarded header when it names a known pod.
  const config::Pod* source = nullptr;
  if (auto address = hbone::parseForwardedFor(stream->header("forwarded")))
    source = snap->podByIp(*address);
  if (source) {
    auto id = config::workloadIdentity(*source, options.trust_domain);
    if (id && *id == context.peer)
      labels.source = telemetry::workloadLabels(*source, context.peer.str());
  }
  labels.destination = telemetry::workloadLabels(*local, workload->id.str());

  telemetry::ConnectionRecord record;
  record.direction = "inbound";
  record.src = net::formatAuthority(context.peer_address);
  record.dst = stream->authority();
  record.src_identity = context.peer.str();
  record.dst_identity = labels.destination.principal;
  record.src_workload = source ? source->meta.ns + "/" + source->meta.name : "";
  record.dst_workload = key;

  if (decision.status != 200) {
    stream->respond(decision.status);
    spdlog::info("HBONE from {} ({}) refused with {}: {}", record.src, record.src_identity,
                 decision.status, decision.reason);
    ConnectionReport report(metrics, access_log.get(), labels, record);
    report.finish(decision.reason, telemetry::ResponseFlag::kAuthorizationPolicyDenied);
    co_return;
  }
  ConnectionReport report(metrics, access_log.get(), labels, record);
  // In-pod, the application is reached inside the pod's namespace, over loopback.
  auto upstream = co_await connectDirect(worker, *workload, decision.target);
  if (!upstream) {
    stream->respond(503);
    report.finish(upstream.message(), telemetry::ResponseFlag::kUpstreamConnectionFailure);
    co_return;
  }
  stream->respond(200);
  auto result = co_await hbone::splice(*upstream, *stream, report.counter(false));
  report.finish(result);
}

asio::awaitable<void> Ztunnel::Impl::servePlaintext(Worker& worker,
                                                    std::shared_ptr<const Workload> workload,
                                                    tcp::socket socket) {
  auto snap = snapshot.load();
  const config::Pod* local = &workload->pod;
  const std::string key = workload->key();
  boost::system::error_code ec;
  const auto peer = socket.remote_endpoint(ec);
  // Without capture the listener's own address is the destination; with sk_lookup the
  // accepted socket's local address is the original destination, so the same code serves both.
  auto destination = socket.local_endpoint(ec);
  if (ec) {
    net::abortSocket(socket);
    co_return;
  }
  telemetry::ConnectionLabels labels;
  labels.reporter = "destination";
  labels.connection_security_policy = "none";
  if (const auto* source = snap->podByIp(peer.address()))
    labels.source = telemetry::workloadLabels(*source, "");
  labels.destination = telemetry::workloadLabels(*local, "");
  telemetry::ConnectionRecord record;
  record.direction = "inbound";
  record.src = net::formatAuthority(peer);
  record.dst = net::formatAuthority(destination);
  record.dst_workload = key;
  ConnectionReport report(metrics, access_log.get(), labels, record);

  if (!plaintextAllowed(*snap, *local, destination.port())) {
    net::abortSocket(socket);
    report.finish("plaintext refused: PeerAuthentication STRICT for " + key + " port " +
                      std::to_string(destination.port()),
                  telemetry::ResponseFlag::kAuthorizationPolicyDenied);
    co_return;
  }
  if (destination.port() == options.inbound_plaintext_port) {
    // Not steered here by capture: forwarding would connect to this listener again.
    net::abortSocket(socket);
    report.finish(
        "no original destination: connection addressed to the plaintext listener "
        "itself (is capture enabled for this workload?)",
        telemetry::ResponseFlag::kNoRouteFound);
    co_return;
  }
  auto upstream = co_await connectDirect(worker, *workload, destination);
  if (!upstream) {
    net::abortSocket(socket);
    report.finish(upstream.message(), telemetry::ResponseFlag::kUpstreamConnectionFailure);
    co_return;
  }
  auto result = co_await net::splice(socket, *upstream, report.counter(true));
  report.finish(result);
}

asio::awaitable<void> Ztunnel::Impl::serveOutboundListener(Worker& worker,
                                                           OutboundListenerSpec spec,
                                                           tcp::socket socket) {
  auto served = worker.workloads.find(spec.ns + "/" + spec.pod);
  if (served == worker.workloads.end()) {
    spdlog::warn("outbound from {}/{}: not a meshed workload of this node; refused", spec.ns,
                 spec.pod);
    net::abortSocket(socket);
    co_return;
  }
  co_await serveOutbound(worker, served->second.workload, served->second.pool, spec.destination,
                         std::move(socket));
}

asio::awaitable<void> Ztunnel::Impl::serveOutbound(Worker& worker,
                                                   std::shared_ptr<const Workload> workload,
                                                   std::shared_ptr<hbone::Pool> pool,
                                                   std::optional<tcp::endpoint> fixed,
                                                   tcp::socket socket) {
  auto snap = snapshot.load();
  boost::system::error_code ec;
  const auto peer = socket.remote_endpoint(ec);
  std::optional<tcp::endpoint> found = fixed;
  if (!found && options.original_destination)
    found = options.original_destination(socket.native_handle());
  if (!found) {
    spdlog::warn("outbound from {}: no original destination for {} (is capture active?); refused",
                 workload->key(), net::formatAuthority(peer));
    net::abortSocket(socket);
    co_return;
  }
  const auto destination = *found;
  const config::Pod* source = &workload->pod;
  const auto& source_id = workload->id;
  const auto route = routeOutbound(*snap, routing, destination, worker.pick++, source);
  const bool tunneled = overHbone(route.kind);

  // Through a waypoint, as Istio's ztunnel reports it: destination_service is the service the
  // client asked for, the destination workload and principal are the waypoint's (the peer this
  // hop authenticated); the access log's dst is the VIP:port sent as :authority.
  telemetry::ConnectionLabels labels;
  labels.reporter = "source";
  labels.source = telemetry::workloadLabels(*source, source_id.str());
  if (route.service) labels.setDestinationService(*route.service);
  if (route.pod)
    labels.destination =
        telemetry::workloadLabels(*route.pod, tunneled ? route.peer_identity.str() : "");
  labels.connection_security_policy = tunneled ? "mutual_tls" : "none";
  telemetry::ConnectionRecord record;
  record.direction = "outbound";
  record.src = source->ips.empty() ? net::formatAuthority(peer) : source->ips.front().to_string();
  record.dst = net::formatAuthority(route.target);
  record.src_identity = source_id.str();
  record.src_workload = workload->key();
  if (route.pod) record.dst_workload = route.pod->meta.ns + "/" + route.pod->meta.name;
  if (tunneled) record.dst_identity = route.peer_identity.str();
  ConnectionReport report(metrics, access_log.get(), labels, record);

  switch (route.kind) {
    case OutboundKind::kNoEndpoint: {
      net::abortSocket(socket);
      report.finish(route.reason, telemetry::ResponseFlag::kNoHealthyUpstream);
      co_return;
    }
    case OutboundKind::kNoWaypoint: {
      // A configuration fault an operator must fix: say so in the daemon log too.
      spdlog::warn("outbound from {} to {} refused: {}", workload->key(), net::formatAuthority(destination),
                   route.reason);
      net::abortSocket(socket);
      report.finish(route.reason, telemetry::ResponseFlag::kNoHealthyUpstream);
      co_return;
    }
    case OutboundKind::kPassthrough: {
      auto upstream = co_await connectDirect(worker, *workload, route.target);
      if (!upstream) {
        net::abortSocket(socket);
        report.finish(upstream.message(), telemetry::ResponseFlag::kUpstreamConnectionFailure);
        co_return;
      }
      auto result = co_await net::splice(socket, *upstream, report.counter(true));
      report.finish(result);
      co_return;
    }
    case OutboundKind::kHbone:
    case OutboundKind::kWaypoint:
      break;
  }
  h2::Headers headers;
  if (!source->ips.empty())
    headers.emplace_back("forwarded", hbone::formatForwardedFor(source->ips.front().to_string()));
  headers.emplace_back("baggage", hbone::formatBaggage({source->meta.ns, source->meta.name,
                                                        labels.source.canonical_service,
                                                        labels.source.canonical_revision}));
  thread_local std::mt19937_64 random{std::random_device{}()};
  headers.emplace_back("traceparent", hbone::newTraceparent(random));
  // Keyed by the peer, not the authority: one connection to a waypoint instance carries the
  // streams of every service it fronts.
  const hbone::PoolKey key{source_id, route.peer_identity, route.hbone_address};
  // Failures name the waypoint, so the operator looks at it rather than at the service's pods.
  const std::string via =
      route.kind == OutboundKind::kWaypoint
          ? "via waypoint " + route.waypoint->str() + " (pod " + route.pod->meta.name + "): "
          : "";
  auto stream = co_await pool->open(key, net::formatAuthority(route.target), headers);
  if (!stream) {
    net::abortSocket(socket);
    report.finish(via + stream.message(), telemetry::ResponseFlag::kUpstreamConnectionFailure);
    co_return;
  }
  const int status = co_await (*stream)->response();
  if (status != 200) {
    (*stream)->reset();
    net::abortSocket(socket);
    report.finish(via + "peer answered HBONE CONNECT with " +
                      (status ? std::to_string(status) : std::string("a reset")),
                  status == 401 ? telemetry::ResponseFlag::kAuthorizationPolicyDenied
                                : telemetry::ResponseFlag::kUpstreamConnectionFailure);
    co_return;
  }
  auto result = co_await hbone::splice(socket, **stream, report.counter(true));
  report.finish(result);
}

}  // namespace sluice::ztunnel
