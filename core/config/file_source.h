// FileSource: configuration from a directory of YAML/JSON files, reloaded when it changes.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>

#include "core/config/loader.h"
#include "core/result.h"

namespace sluice::config {

namespace detail {
class FileSourceImpl;
}

// Watches one directory (inotify on the given executor). After each change, debounced, it
// reloads the whole directory on that executor. A load without rejections becomes current()
// and is passed to on_update; a load with rejections is logged (file, line, field) and the
// previous snapshot stays in force. If the directory itself goes away, watching stops and the
// last snapshot stays.
class FileSource {
 public:
  using UpdateFn = std::function<void(std::shared_ptr<const Snapshot>)>;

  struct Options {
    // Quiet time after the last change before reloading: an editor's save or a ConfigMap
    // update is a burst of events, and one reload should see all of it.
    std::chrono::milliseconds debounce{100};
    // A directory that never goes quiet is still reloaded at least this often.
    std::chrono::milliseconds max_delay{2000};
    LoadOptions load;
    // Called on the executor after a reload that was rejected (the reports say why), e.g.
    // to count failed reloads; the previous snapshot stays current.
    std::function<void(const LoadResult&)> on_rejected;
  };

  // Starts watching `dir` and loads it once, synchronously. Fails when the directory cannot
  // be watched or the first load rejects anything: a process should not start on half a
  // configuration. on_update is not called for this first snapshot; read current().
  static Result<std::unique_ptr<FileSource>> create(boost::asio::any_io_executor executor,
                                                    std::filesystem::path dir, UpdateFn on_update);
  static Result<std::unique_ptr<FileSource>> create(boost::asio::any_io_executor executor,
                                                    std::filesystem::path dir, UpdateFn on_update,
                                                    Options options);

  // Stops watching. Destroy it on its executor's thread (or while the executor is not
  // running), as with any Asio I/O object.
  ~FileSource();
  FileSource(const FileSource&) = delete;
  FileSource& operator=(const FileSource&) = delete;

  // The last good snapshot; never null. Safe to call from any thread.
  std::shared_ptr<const Snapshot> current() const;

 private:
  struct PrivateTag {
   private:
    friend class FileSource;
    PrivateTag() = default;
  };

 public:
  // Only create() can make one (the tag is private); public for std::make_unique.
  FileSource(PrivateTag, std::shared_ptr<detail::FileSourceImpl> impl);

 private:
  std::shared_ptr<detail::FileSourceImpl> impl_;
};

}  // namespace sluice::config
