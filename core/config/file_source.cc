#include "core/config/file_source.h"

#include <spdlog/spdlog.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <boost/asio/buffer.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <utility>

namespace sluice::config {
namespace detail {

namespace asio = boost::asio;
using Status = DocumentReport::Status;

namespace {

// Everything that can change what the directory holds: in-place writes, editors' rename
// dance, ConfigMap `..data` symlink swaps, deletions; and the directory itself going away.
constexpr uint32_t kWatchMask = IN_CLOSE_WRITE | IN_MODIFY | IN_ATTRIB | IN_CREATE | IN_DELETE |
                                IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF |
                                IN_ONLYDIR;

void logReports(const LoadResult& result) {
  for (const DocumentReport& report : result.documents) {
    switch (report.status) {
      case Status::kAccepted:
        spdlog::debug("config: {}", formatReport(report));
        break;
      case Status::kIgnored:
        spdlog::info("config: {}", formatReport(report));
        break;
      case Status::kRejected:
        spdlog::error("config: {}", formatReport(report));
        break;
    }
  }
}

}  // namespace

class FileSourceImpl : public std::enable_shared_from_this<FileSourceImpl> {
 public:
  FileSourceImpl(asio::any_io_executor executor, std::filesystem::path dir,
                 FileSource::UpdateFn on_update, FileSource::Options options, int inotify_fd)
      : inotify_(executor, inotify_fd),
        timer_(executor),
        dir_(std::move(dir)),
        on_update_(std::move(on_update)),
        options_(std::move(options)) {}

  // Fails, naming the first rejection, when the first load rejected something.
  Result<void> loadFirst() {
    LoadResult result = loadPaths({dir_}, options_.load);
    logReports(result);
    if (!result.snapshot) {
      auto rejected = std::find_if(result.documents.begin(), result.documents.end(),
                                   [](const auto& r) { return r.status == Status::kRejected; });
      return makeError("config directory " + dir_.string() + ": " +
                       std::to_string(result.count(Status::kRejected)) +
                       " document(s) rejected, first: " + formatReport(*rejected));
    }
    spdlog::info("config: loaded {} (version {})", dir_.string(), result.snapshot->version());
    std::lock_guard lock(mutex_);
    current_ = std::move(result.snapshot);
    return success();
  }

  void start() { readEvents(); }

  void stop() {
    stopped_ = true;
    timer_.cancel();
    boost::system::error_code ignored;
    inotify_.close(ignored);
  }

  std::shared_ptr<const Snapshot> current() const {
    std::lock_guard lock(mutex_);
    return current_;
  }

 private:
  void readEvents() {
    inotify_.async_read_some(
        asio::buffer(buffer_),
        [self = shared_from_this()](boost::system::error_code error, size_t bytes) {
          self->onEvents(error, bytes);
        });
  }

  void onEvents(boost::system::error_code error, size_t bytes) {
    if (stopped_ || error == asio::error::operation_aborted) return;
    if (error) {
      spdlog::error("config: watching {} failed ({}); keeping version {}, no more reloads",
                    dir_.string(), error.message(), current()->version());
      return;
    }
    bool gone = false;
    for (size_t offset = 0; offset + sizeof(inotify_event) <= bytes;) {
      inotify_event event;
      std::memcpy(&event, buffer_.data() + offset, sizeof(event));
      if (event.mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED)) gone = true;
      offset += sizeof(inotify_event) + event.len;
    }
    if (gone) {
      spdlog::error(
          "config: directory {} was removed or moved; keeping version {}, no more reloads",
          dir_.string(), current()->version());
      return;
    }
    scheduleReload();
    readEvents();
  }

  void scheduleReload() {
    auto now = asio::steady_timer::clock_type::now();
    if (!pending_) {
      pending_ = true;
      first_change_ = now;
    }
    timer_.expires_at(std::min(now + options_.debounce, first_change_ + options_.max_delay));
    timer_.async_wait([self = shared_from_this()](boost::system::error_code error) {
      // Aborted means a newer change re-armed the timer; that wait will reload.
      if (self->stopped_ || error == asio::error::operation_aborted) return;
      self->pending_ = false;
      self->reload();
    });
  }

  void reload() {
    LoadResult result = loadPaths({dir_}, options_.load);
    logReports(result);
    if (!result.snapshot) {
      spdlog::error("config: {} of {} documents in {} rejected; keeping version {}",
                    result.count(Status::kRejected), result.documents.size(), dir_.string(),
                    current()->version());
      if (options_.on_rejected) options_.on_rejected(result);
      return;
    }
    spdlog::info("config: reloaded {} (version {})", dir_.string(), result.snapshot->version());
    {
      std::lock_guard lock(mutex_);
      current_ = result.snapshot;
    }
    if (on_update_) on_update_(std::move(result.snapshot));
  }

  asio::posix::stream_descriptor inotify_;
  asio::steady_timer timer_;
  std::filesystem::path dir_;
  FileSource::UpdateFn on_update_;
  FileSource::Options options_;
  // Large enough for many events at once; aligned as the kernel writes inotify_event records.
  alignas(inotify_event) std::array<char, 16 * 1024> buffer_{};
  bool pending_ = false;
  asio::steady_timer::time_point first_change_;
  bool stopped_ = false;
  mutable std::mutex mutex_;
  std::shared_ptr<const Snapshot> current_;
};

}  // namespace detail

Result<std::unique_ptr<FileSource>> FileSource::create(boost::asio::any_io_executor executor,
                                                       std::filesystem::path dir,
                                                       UpdateFn on_update) {
  return create(std::move(executor), std::move(dir), std::move(on_update), Options{});
}

Result<std::unique_ptr<FileSource>> FileSource::create(boost::asio::any_io_executor executor,
                                                       std::filesystem::path dir,
                                                       UpdateFn on_update, Options options) {
  std::error_code error;
  if (!std::filesystem::is_directory(dir, error))
    return makeError("config directory " + dir.string() + " does not exist or is not a directory");

  int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0)
    return makeError(std::string("config: inotify_init1 failed: ") + std::strerror(errno) +
                     " (check fs.inotify.max_user_instances)");
  // The descriptor owns fd from here on, failure included.
  auto impl = std::make_shared<detail::FileSourceImpl>(executor, dir, std::move(on_update),
                                                       std::move(options), fd);
  // Watch before the first load so that no change between the two is missed.
  if (inotify_add_watch(fd, dir.c_str(), detail::kWatchMask) < 0)
    return makeError("config: cannot watch " + dir.string() + ": " + std::strerror(errno) +
                     " (check fs.inotify.max_user_watches)");
  if (Result<void> loaded = impl->loadFirst(); !loaded) return loaded.error();
  impl->start();
  return std::make_unique<FileSource>(PrivateTag{}, std::move(impl));
}

FileSource::FileSource(PrivateTag, std::shared_ptr<detail::FileSourceImpl> impl)
    : impl_(std::move(impl)) {}

FileSource::~FileSource() { impl_->stop(); }

std::shared_ptr<const Snapshot> FileSource::current() const { return impl_->current(); }

}  // namespace sluice::config
