#include "agent/agent.h"

#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cerrno>
#include <cstring>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include "agent/pod_locator.h"
#include "core/bpf/capture_program.h"
#include "core/bpf/kernel.h"
#include "core/bpf/local_acceleration.h"
#include "core/config/file_source.h"
#include "core/config/snapshot.h"
#include "core/inpod/netns.h"
#include "core/inpod/protocol.h"

namespace sluice::agent {

namespace asio = boost::asio;

namespace {

Result<std::string> attachPoint(const AgentOptions& options) {
  if (!options.cgroup.empty()) return options.cgroup.string();
  return bpf::findCgroup2Mount();
}

}  // namespace

struct Agent::Impl {
  AgentOptions options;
  asio::io_context io{1};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> guard;
  std::thread thread;
  std::optional<bpf::CaptureProgram> capture;
  std::optional<bpf::LocalAcceleration> acceleration;  // only with --local-acceleration
  std::unique_ptr<config::FileSource> source;
  std::unique_ptr<PodLocator> locator;

  struct Pod {
    inpod::WorkloadInfo info;
    inpod::Netns netns;
    uint64_t cookie = 0;
    bool acknowledged = false;  // ztunnel serves it: capture is on
  };
  std::map<std::string, Pod> pods;  // by uid (ns/name for a pod without one)
  mutable std::mutex status_mutex;  // guards `status` (read by other threads)
  std::vector<EnrolledPod> status;

  int listener = -1;
  int ztunnel = -1;  // the connected ztunnel, or -1
  std::optional<asio::posix::stream_descriptor> listener_watch, ztunnel_watch;
  asio::steady_timer retry_timer{io};
  bool retry_armed = false;

  Result<void> listen();
  asio::awaitable<void> acceptLoop();
  asio::awaitable<void> watchZtunnel();
  void onZtunnelConnected(int fd);
  void dropZtunnel(const std::string& why);
  // Sends one message and waits (5 s) for its ack; "" on success.
  std::string exchange(const inpod::Message& message, int fd = -1);
  void reconcile();
  void publish();
  void scheduleRetry();
};

Result<void> Agent::Impl::listen() {
  std::error_code ec;
  std::filesystem::create_directories(options.socket.parent_path(), ec);
  std::filesystem::remove(options.socket, ec);
  listener = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (options.socket.native().size() >= sizeof address.sun_path)
    return makeError("socket path too long: " + options.socket.string());
  std::strcpy(address.sun_path, options.socket.c_str());
  if (::bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      ::listen(listener, 4) != 0)
    return makeError("listen on " + options.socket.string() + ": " + std::strerror(errno));
  listener_watch.emplace(io, ::dup(listener));
  return success();
}

asio::awaitable<void> Agent::Impl::acceptLoop() {
  for (;;) {
    auto [ec] = co_await listener_watch->async_wait(asio::posix::stream_descriptor::wait_read,
                                                    asio::as_tuple(asio::use_awaitable));
    if (ec) co_return;
    const int fd = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    onZtunnelConnected(fd);
  }
}

void Agent::Impl::onZtunnelConnected(int fd) {
  if (ztunnel >= 0) dropZtunnel("a new ztunnel connected");
  pollfd pfd{fd, POLLIN, 0};
  if (::poll(&pfd, 1, 5000) != 1) {
    ::close(fd);
    return;
  }
  auto hello = inpod::receiveMessage(fd);
  if (!hello || hello->message.type != inpod::Message::Type::kHello) {
    spdlog::warn("ztunnel connection without hello: refused");
    ::close(fd);
    return;
  }
  ztunnel = fd;
  spdlog::info("ztunnel connected (protocol version {})", hello->message.version);
  // Replay every pod, then the snapshot marker: ztunnel drops what is no longer listed.
  for (auto& [uid, pod] : pods) pod.acknowledged = false;
  reconcile();
  if (ztunnel >= 0) {
    inpod::Message marker;
    marker.type = inpod::Message::Type::kSnapshotSent;
    if (auto error = exchange(marker); !error.empty()) spdlog::warn("snapshot marker: {}", error);
  }
  if (ztunnel >= 0) {
    ztunnel_watch.emplace(io, ::dup(ztunnel));
    asio::co_spawn(io, watchZtunnel(), asio::detached);
  }
}

asio::awaitable<void> Agent::Impl::watchZtunnel() {
  // ztunnel only speaks when asked: readable outside an exchange means it went away.
  auto [ec] = co_await ztunnel_watch->async_wait(asio::posix::stream_descriptor::wait_read,
                                                 asio::as_tuple(asio::use_awaitable));
  if (ec) co_return;
  char probe;
  if (::recv(ztunnel, &probe, 1, MSG_PEEK | MSG_DONTWAIT) <= 0) dropZtunnel("ztunnel disconnected");
}

void Agent::Impl::dropZtunnel(const std::string& why) {
  if (ztunnel < 0) return;
  spdlog::warn("{}; pods stay captured and wait for ztunnel to come back", why);
  ztunnel_watch.reset();
  ::close(ztunnel);
  ztunnel = -1;
  for (auto& [uid, pod] : pods) pod.acknowledged = false;
  publish();
}

std::string Agent::Impl::exchange(const inpod::Message& message, int fd) {
  if (ztunnel < 0) return "ztunnel not connected";
  if (auto sent = inpod::sendMessage(ztunnel, message, fd); !sent) {
    dropZtunnel(sent.message());
    return sent.message();
  }
  pollfd pfd{ztunnel, POLLIN, 0};
  if (::poll(&pfd, 1, 5000) != 1) {
    dropZtunnel("ztunnel did not answer within 5 s");
    return "no ack";
  }
  auto ack = inpod::receiveMessage(ztunnel);
  if (!ack) {
    dropZtunnel(ack.message());
    return ack.message();
  }
  if (ack->message.type != inpod::Message::Type::kAck) return "unexpected answer from ztunnel";
  return ack->message.error;
}

void Agent::Impl::reconcile() {
  auto snap = source->current();
  std::map<std::string, const config::Pod*> desired;
  // The pods ztunnel would serve in file mode too (one rule, Snapshot::meshedPodsOnNode). A pod
  // from a file may have no uid (Kubernetes always sets one): its namespace/name stands in.
  for (const auto* pod : snap->meshedPodsOnNode(options.node))
    desired[pod->meta.uid.empty() ? pod->meta.ns + "/" + pod->meta.name : pod->meta.uid] = pod;

  // Unenroll first (capture off), then tell ztunnel: no connection is captured to nowhere.
  for (auto it = pods.begin(); it != pods.end();) {
    if (desired.count(it->first)) {
      ++it;
      continue;
    }
    if (auto removed = capture->unenroll(it->second.cookie); !removed)
      spdlog::warn("unenroll {}: {}", it->second.info.name, removed.message());
    if (acceleration) (void)acceleration->unenroll(it->second.cookie);
    inpod::Message remove;
    remove.type = inpod::Message::Type::kRemove;
    remove.uid = it->first;
    if (ztunnel >= 0) exchange(remove);
    spdlog::info("pod {}/{} unenrolled", it->second.info.ns, it->second.info.name);
    it = pods.erase(it);
  }
  bool missing = false;
  for (const auto& [uid, pod] : desired) {
    auto it = pods.find(uid);
    if (it == pods.end()) {
      auto netns = locator->locate(*pod);
      if (!netns) {
        spdlog::info("pod {}/{}: {}; will retry", pod->meta.ns, pod->meta.name, netns.message());
        missing = true;
        continue;
      }
      auto cookie = netns->cookie();
      if (!cookie) {
        spdlog::warn("pod {}/{}: {}", pod->meta.ns, pod->meta.name, cookie.message());
        missing = true;
        continue;
      }
      Pod entry{{uid, pod->meta.ns, pod->meta.name, pod->service_account, pod->ips},
                std::move(*netns),
                *cookie,
                false};
      it = pods.emplace(uid, std::move(entry)).first;
    }
    // ztunnel first, capture second: captured connections always find a listener.
    if (!it->second.acknowledged && ztunnel >= 0) {
      inpod::Message add;
      add.type = inpod::Message::Type::kAdd;
      add.workload = it->second.info;
      const auto error = exchange(add, it->second.netns.fd());
      if (error.empty()) {
        it->second.acknowledged = true;
        if (acceleration) {
          if (auto accelerated = acceleration->enroll(it->second.cookie); !accelerated)
            spdlog::warn("local acceleration for {}/{}: {}", pod->meta.ns, pod->meta.name,
                         accelerated.message());
        }
        if (auto enrolled = capture->enroll(it->second.cookie); !enrolled)
          spdlog::error("enroll {}/{}: {}", pod->meta.ns, pod->meta.name, enrolled.message());
        else
          spdlog::info("pod {}/{} enrolled (netns cookie {})", pod->meta.ns, pod->meta.name,
                       it->second.cookie);
      } else {
        spdlog::warn("ztunnel refused pod {}/{}: {}", pod->meta.ns, pod->meta.name, error);
        missing = true;
      }
    }
  }
  publish();
  if (missing) scheduleRetry();
}

void Agent::Impl::scheduleRetry() {
  if (retry_armed) return;
  retry_armed = true;
  retry_timer.expires_after(options.retry);
  retry_timer.async_wait([this](boost::system::error_code ec) {
    retry_armed = false;
    if (!ec) reconcile();
  });
}

void Agent::Impl::publish() {
  std::vector<EnrolledPod> now;
  for (const auto& [uid, pod] : pods)
    now.push_back({pod.info.ns + "/" + pod.info.name, pod.cookie, pod.acknowledged});
  std::lock_guard lock(status_mutex);
  status = std::move(now);
}

Agent::Agent(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Agent::~Agent() { stop(); }

Result<std::unique_ptr<Agent>> Agent::create(AgentOptions options) {
  if (options.node.empty()) return makeError("--node is required");
  if (auto supported = bpf::checkKernelSupport(); !supported)
    return makeError("this kernel cannot run Sluice's capture: " + supported.message());
  auto impl = std::make_unique<Impl>();
  impl->options = std::move(options);
  auto cgroup = attachPoint(impl->options);
  if (!cgroup) return makeError("cgroup v2: " + cgroup.message());
  bpf::CaptureOptions capture_options;
  capture_options.cgroupPath = *cgroup;
  capture_options.pinDirectory = impl->options.pin_dir.string();
  capture_options.ztunnelMark = impl->options.ztunnel_mark;
  auto capture = bpf::CaptureProgram::create(capture_options);
  if (!capture) return capture.error();
  impl->capture.emplace(std::move(*capture));
  // Pinned links are updated in place: an agent restart loses no capture.
  if (auto attached = impl->capture->attach(); !attached) return attached.error();
  bpf::LocalAccelerationOptions accel_options;
  accel_options.cgroupPath = *cgroup;
  accel_options.pinDirectory = impl->options.pin_dir.string();
  if (impl->options.local_acceleration) {
    if (auto supported = bpf::LocalAcceleration::checkKernelSupport(); !supported)
      return makeError("--local-acceleration: " + supported.message());
    auto acceleration = bpf::LocalAcceleration::create(accel_options);
    if (!acceleration) return makeError("--local-acceleration: " + acceleration.message());
    impl->acceleration.emplace(std::move(*acceleration));
    if (auto attached = impl->acceleration->attach(); !attached)
      return makeError("--local-acceleration: " + attached.message());
    spdlog::info("local-hop acceleration on");
  } else if (std::filesystem::exists(impl->options.pin_dir / "link_accel_sockops")) {
    // Switched off after a run with it on: remove it (open accelerated hops keep working).
    if (auto previous = bpf::LocalAcceleration::create(accel_options); previous)
      (void)previous->uninstall();
    spdlog::info("local-hop acceleration removed");
  }
  impl->locator = impl->options.pod_netns_file.empty()
                      ? kubernetesLocator()
                      : podNetnsFileLocator(impl->options.pod_netns_file);
  Impl* raw = impl.get();
  auto source = config::FileSource::create(
      impl->io.get_executor(), impl->options.config_dir,
      [raw](std::shared_ptr<const config::Snapshot>) { raw->reconcile(); });
  if (!source) return makeError("configuration: " + source.message());
  impl->source = std::move(*source);
  if (auto listening = impl->listen(); !listening) return listening.error();
  return std::unique_ptr<Agent>(new Agent(std::move(impl)));
}

void Agent::start() {
  Impl& a = *impl_;
  asio::co_spawn(a.io, a.acceptLoop(), asio::detached);
  asio::post(a.io, [&a] { a.reconcile(); });
  a.guard.emplace(a.io.get_executor());
  a.thread = std::thread([&a] { a.io.run(); });
}

void Agent::stop() {
  Impl& a = *impl_;
  if (a.thread.joinable()) {
    std::promise<void> done;
    asio::post(a.io, [&] {
      a.listener_watch.reset();
      a.ztunnel_watch.reset();
      a.retry_timer.cancel();
      a.source.reset();
      done.set_value();
    });
    done.get_future().wait();
    a.guard.reset();
    a.io.stop();
    a.thread.join();
  }
  if (a.ztunnel >= 0) ::close(a.ztunnel);
  a.ztunnel = -1;
  if (a.listener >= 0) {
    ::close(a.listener);
    std::error_code ec;
    std::filesystem::remove(a.options.socket, ec);
  }
  a.listener = -1;
}

std::vector<EnrolledPod> Agent::enrolled() const {
  std::lock_guard lock(impl_->status_mutex);
  return impl_->status;
}

bool Agent::ztunnelConnected() const {
  std::lock_guard lock(impl_->status_mutex);
  return std::any_of(impl_->status.begin(), impl_->status.end(),
                     [](const auto& pod) { return pod.ztunnel_acknowledged; });
}

Result<void> uninstall(const AgentOptions& options) {
  auto cgroup = attachPoint(options);
  if (!cgroup) return cgroup.error();
  bpf::CaptureOptions capture_options;
  capture_options.cgroupPath = *cgroup;
  capture_options.pinDirectory = options.pin_dir.string();
  auto capture = bpf::CaptureProgram::create(capture_options);
  if (!capture) return capture.error();
  if (auto removed = capture->uninstall(); !removed) return removed;
  if (std::filesystem::exists(options.pin_dir / "link_accel_sockops")) {
    bpf::LocalAccelerationOptions accel_options;
    accel_options.cgroupPath = *cgroup;
    accel_options.pinDirectory = options.pin_dir.string();
    auto acceleration = bpf::LocalAcceleration::create(accel_options);
    if (!acceleration) return acceleration.error();
    return acceleration->uninstall();
  }
  return success();
}

}  // namespace sluice::agent
