#include "core/config/loader.h"

#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/parser.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <tuple>
#include <utility>

#include "core/config/field.h"

namespace sluice::config {
namespace {

namespace fs = std::filesystem;
using Status = DocumentReport::Status;

// Far above any real configuration (Kubernetes caps an object at 1.5 MiB); stops a stray
// multi-gigabyte file from being read into memory.
constexpr uintmax_t kMaxFileBytes = 64u << 20;

constexpr size_t kShowAll = 1024;

// Reasons quote input (already escaped) but also carry yaml-cpp's messages, which may embed the
// offending byte: keep every report on one line.
std::string oneLine(std::string_view text) {
  std::string out;
  for (char c : text) {
    unsigned char byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7f) {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[byte >> 4];
      out += kHex[byte & 0xf];
    } else {
      out += c;
    }
  }
  return out;
}

bool isConfigFile(const fs::path& path) {
  std::string name = path.filename().string();
  if (name.empty() || name.front() == '.') return false;
  std::string extension = path.extension().string();
  return extension == ".yaml" || extension == ".yml" || extension == ".json";
}

struct ParseError {
  int line;  // 1-based, 0 when unknown
  std::string message;
};

// Sees where each document starts and nothing else.
class DocumentStarts : public YAML::EventHandler {
 public:
  void OnDocumentStart(const YAML::Mark& mark) override { start = mark; }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}

  YAML::Mark start;
};

// Parses every document of `text` into `documents`, or says where the syntax is wrong.
//
// yaml-cpp 0.7's LoadAll never returns on some malformed input (a stray ","): the parser
// reports an empty document without consuming anything, forever, and memory fills up with
// null documents (fixed upstream after 0.8). A first pass over the parser's events stops as
// soon as a document starts where the previous one did; only input that passes it goes to
// LoadAll, which then parses the same documents.
std::optional<ParseError> parseDocuments(const std::string& text,
                                         std::vector<YAML::Node>& documents) {
  try {
    std::istringstream in(text);
    YAML::Parser parser(in);
    DocumentStarts events;
    int previous_start = -1;
    while (parser.HandleNextDocument(events)) {
      if (events.start.pos == previous_start) {
        std::string_view at =
            std::string_view(text).substr(static_cast<size_t>(std::max(events.start.pos, 0)), 1);
        return ParseError{events.start.line + 1, "unexpected " + detail::quoted(at)};
      }
      previous_start = events.start.pos;
    }
    documents = YAML::LoadAll(text);
    return std::nullopt;
  } catch (const YAML::DeepRecursion& error) {
    // yaml-cpp 0.7 labels this one "bad file".
    return ParseError{std::max(error.mark.line + 1, 0), "nested too deeply"};
  } catch (const YAML::Exception& error) {
    return ParseError{std::max(error.mark.line + 1, 0), error.msg};
  } catch (const std::exception& error) {
    return ParseError{0, error.what()};
  }
}

class Loader {
 public:
  explicit Loader(const LoadOptions& options) : options_(options) {}

  void addPath(const fs::path& path) {
    std::error_code error;
    fs::file_status status = fs::status(path, error);
    if (error || !fs::exists(status)) {
      fail(path.string(), "cannot read: " + (error ? error.message() : "no such file"));
      return;
    }
    if (!fs::is_directory(status)) {
      addFile(path);
      return;
    }
    std::vector<fs::path> files;
    for (fs::directory_iterator it(path, error), end; !error && it != end; it.increment(error)) {
      std::error_code type_error;
      if (isConfigFile(it->path()) && it->is_regular_file(type_error)) files.push_back(it->path());
    }
    if (error) {
      fail(path.string(), "cannot list directory: " + error.message());
      return;
    }
    std::sort(files.begin(), files.end());
    for (const fs::path& file : files) addFile(file);
  }

  void addFile(const fs::path& path) {
    // The same file named twice (a directory and a file in it) is read once.
    std::error_code error;
    fs::path canonical = fs::weakly_canonical(path, error);
    if (!read_.insert(error ? path : canonical).second) return;

    uintmax_t size = fs::file_size(path, error);
    if (!error && size > kMaxFileBytes) {
      fail(path.string(), "file too large (" + std::to_string(size) + " bytes, at most " +
                              std::to_string(kMaxFileBytes) + ")");
      return;
    }
    std::ifstream in(path, std::ios::binary);
    std::ostringstream text;
    if (in) text << in.rdbuf();
    if (!in || in.bad()) {
      fail(path.string(), std::string("cannot read: ") + std::strerror(errno));
      return;
    }
    addText(text.str(), path.string());
  }

  void addText(std::string_view text, const std::string& file) {
    std::vector<YAML::Node> documents;
    if (std::optional<ParseError> error = parseDocuments(std::string(text), documents)) {
      fail(file, "malformed YAML: " + error->message, error->line);
      return;
    }
    for (const YAML::Node& document : documents) {
      for (Decoded& decoded : decodeDocument(document)) {
        decoded.report.file = file;
        if (decoded.object) accept(decoded);
        add(std::move(decoded.report));
      }
    }
  }

  LoadResult finish() {
    LoadResult result;
    result.documents = std::move(reports_);
    if (!rejected_) result.snapshot = Snapshot::build(std::move(objects_), options_.snapshot);
    return result;
  }

 private:
  void accept(Decoded& decoded) {
    DocumentReport& report = decoded.report;
    auto [it, inserted] = places_.emplace(std::tuple(report.kind, report.ns, report.name),
                                          std::pair(report.file, report.line));
    if (!inserted) {
      report.status = Status::kRejected;
      report.reason = "duplicate " + report.kind + " " +
                      (report.ns.empty() ? report.name : report.ns + "/" + report.name) +
                      ", first defined at " + it->second.first + ":" +
                      std::to_string(it->second.second);
      return;
    }
    objects_.add(std::move(*decoded.object));
  }

  void add(DocumentReport report) {
    if (report.status == Status::kRejected) rejected_ = true;
    reports_.push_back(std::move(report));
  }

  void fail(const std::string& file, std::string reason, int line = 0) {
    DocumentReport report;
    report.file = file;
    report.line = line;
    report.status = Status::kRejected;
    report.reason = std::move(reason);
    add(std::move(report));
  }

  const LoadOptions& options_;
  ObjectSet objects_;
  std::vector<DocumentReport> reports_;
  std::map<std::tuple<std::string, std::string, std::string>, std::pair<std::string, int>> places_;
  std::set<fs::path> read_;
  bool rejected_ = false;
};

}  // namespace

size_t LoadResult::count(DocumentReport::Status status) const {
  return static_cast<size_t>(
      std::count_if(documents.begin(), documents.end(),
                    [&](const auto& report) { return report.status == status; }));
}

LoadResult loadPaths(const std::vector<fs::path>& files_or_dirs, const LoadOptions& options) {
  Loader loader(options);
  for (const fs::path& path : files_or_dirs) loader.addPath(path);
  return loader.finish();
}

LoadResult loadString(std::string_view yaml, std::string_view file_name,
                      const LoadOptions& options) {
  Loader loader(options);
  loader.addText(yaml, std::string(file_name));
  return loader.finish();
}

std::string formatReport(const DocumentReport& report) {
  std::string out(toString(report.status));
  out += ' ';
  out += detail::printable(report.file, kShowAll);
  if (report.line > 0) out += ":" + std::to_string(report.line);
  if (!report.kind.empty() || !report.name.empty()) {
    out += ' ';
    out += report.kind.empty() ? "-" : detail::printable(report.kind, kShowAll);
    out += ' ';
    if (!report.ns.empty()) out += detail::printable(report.ns, kShowAll) + "/";
    out += report.name.empty() ? "-" : detail::printable(report.name, kShowAll);
  }
  switch (report.status) {
    case Status::kAccepted:
      break;
    case Status::kIgnored:
      out += " (" + oneLine(report.reason) + ")";
      break;
    case Status::kRejected:
      out += ": " + oneLine(report.reason);
      break;
  }
  return out;
}

}  // namespace sluice::config
