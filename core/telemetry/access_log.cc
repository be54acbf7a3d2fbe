#include "core/telemetry/access_log.h"

#include <spdlog/async_logger.h>
#include <spdlog/details/thread_pool.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <exception>
#include <utility>

namespace sluice::telemetry {
namespace {

// Lines waiting for the writer thread; past this the oldest are dropped (see the header).
constexpr std::size_t kQueueSize = 8192;
constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD in UTF-8

// Length of the well-formed UTF-8 sequence starting at s[i], or 0 if it is not one
// (overlong forms, surrogates and code points past U+10FFFF included).
std::size_t utf8SequenceLength(std::string_view s, std::size_t i) {
  auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  auto cont = [&](std::size_t k) { return k < s.size() && (byte(k) & 0xC0) == 0x80; };
  const unsigned char b = byte(i);
  if (b >= 0xC2 && b <= 0xDF) return cont(i + 1) ? 2 : 0;
  if (b >= 0xE0 && b <= 0xEF) {
    if (!cont(i + 1) || !cont(i + 2)) return 0;
    const unsigned char b1 = byte(i + 1);
    if (b == 0xE0 && b1 < 0xA0) return 0;  // overlong
    if (b == 0xED && b1 > 0x9F) return 0;  // surrogate
    return 3;
  }
  if (b >= 0xF0 && b <= 0xF4) {
    if (!cont(i + 1) || !cont(i + 2) || !cont(i + 3)) return 0;
    const unsigned char b1 = byte(i + 1);
    if (b == 0xF0 && b1 < 0x90) return 0;  // overlong
    if (b == 0xF4 && b1 > 0x8F) return 0;  // past U+10FFFF
    return 4;
  }
  return 0;
}

// Appends `value` as a JSON string literal. Peer-controlled text (errors, identities) reaches
// this log, so nothing in it may break the one-object-per-line framing.
void appendJsonString(std::string& out, std::string_view value) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  for (std::size_t i = 0; i < value.size();) {
    const unsigned char c = static_cast<unsigned char>(value[i]);
    if (c < 0x80) {
      switch (c) {
        case '"':
          out += "\\\"";
          break;
        case '\\':
          out += "\\\\";
          break;
        case '\n':
          out += "\\n";
          break;
        case '\r':
          out += "\\r";
          break;
        case '\t':
          out += "\\t";
          break;
        default:
          if (c < 0x20 || c == 0x7F) {
            out += "\\u00";
            out.push_back(kHex[c >> 4]);
            out.push_back(kHex[c & 0xF]);
          } else {
            out.push_back(static_cast<char>(c));
          }
      }
      ++i;
      continue;
    }
    const std::size_t n = utf8SequenceLength(value, i);
    if (n == 0) {
      out += kReplacement;
      ++i;
    } else {
      out.append(value.substr(i, n));
      i += n;
    }
  }
  out.push_back('"');
}

void appendField(std::string& out, std::string_view key, std::string_view value) {
  out.push_back(',');
  appendJsonString(out, key);
  out.push_back(':');
  appendJsonString(out, value);
}

void appendField(std::string& out, std::string_view key, uint64_t value) {
  out.push_back(',');
  appendJsonString(out, key);
  out.push_back(':');
  out += std::to_string(value);
}

// Everything after the timestamp and level, which the formatter adds.
std::string formatFields(const ConnectionRecord& r) {
  std::string out;
  out.reserve(256 + r.error.size());
  out += R"("message":"connection complete")";
  appendField(out, "src", r.src);
  appendField(out, "dst", r.dst);
  appendField(out, "src_identity", r.src_identity);
  appendField(out, "dst_identity", r.dst_identity);
  appendField(out, "src_workload", r.src_workload);
  appendField(out, "dst_workload", r.dst_workload);
  appendField(out, "direction", r.direction);
  appendField(out, "error", r.error);
  appendField(out, "bytes_sent", r.bytes_sent);
  appendField(out, "bytes_received", r.bytes_received);
  appendField(out, "duration_us",
              static_cast<uint64_t>(r.duration.count() < 0 ? 0 : r.duration.count()));
  return out;
}

std::string formatFields(const RequestRecord& r) {
  std::string out;
  out.reserve(384 + r.path.size() + r.error.size());
  out += R"("message":"request complete")";
  appendField(out, "src", r.src);
  appendField(out, "src_identity", r.src_identity);
  appendField(out, "authority", r.authority);
  appendField(out, "method", r.method);
  appendField(out, "path", r.path);
  appendField(out, "protocol", r.protocol);
  appendField(out, "route", r.route);
  appendField(out, "upstream", r.upstream);
  appendField(out, "upstream_cluster", r.upstream_cluster);
  appendField(out, "response_code", static_cast<uint64_t>(r.response_code));
  appendField(out, "response_flags", r.response_flags);
  appendField(out, "error", r.error);
  appendField(out, "attempts", static_cast<uint64_t>(r.attempts));
  appendField(out, "bytes_received", r.bytes_received);
  appendField(out, "bytes_sent", r.bytes_sent);
  appendField(out, "request_id", r.request_id);
  appendField(out, "traceparent", r.traceparent);
  appendField(out, "duration_us",
              static_cast<uint64_t>(r.duration.count() < 0 ? 0 : r.duration.count()));
  return out;
}

}  // namespace

Result<std::unique_ptr<AccessLog>> AccessLog::create(std::string_view path) {
  if (path.empty()) return std::make_unique<AccessLog>(nullptr, nullptr);
  spdlog::sink_ptr sink;
  try {
    if (path == "-") {
      sink = std::make_shared<spdlog::sinks::stdout_sink_mt>();
    } else {
      sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(std::string(path),
                                                                 /*truncate=*/false);
    }
  } catch (const std::exception& e) {
    return Error{"access log: cannot open " + std::string(path) + ": " + e.what() +
                 " (check the directory exists and is writable)"};
  }
  // The timestamp and level come from spdlog's record of the call; the rest is pre-rendered JSON.
  sink->set_formatter(std::make_unique<spdlog::pattern_formatter>(
      R"({"timestamp":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%l",%v})", spdlog::pattern_time_type::utc));
  auto pool = std::make_shared<spdlog::details::thread_pool>(kQueueSize, 1);
  auto logger = std::make_shared<spdlog::async_logger>(
      "access", std::move(sink), pool, spdlog::async_overflow_policy::overrun_oldest);
  logger->set_level(spdlog::level::info);
  // Flushing happens on the writer thread, so every line reaches the file promptly for free.
  logger->flush_on(spdlog::level::info);
  return std::make_unique<AccessLog>(std::move(pool), std::move(logger));
}

AccessLog::AccessLog(std::shared_ptr<spdlog::details::thread_pool> pool,
                     std::shared_ptr<spdlog::logger> logger)
    : pool_(std::move(pool)), logger_(std::move(logger)) {}

AccessLog::~AccessLog() {
  // The pool's destructor drains its queue before joining the writer, so no line is lost; the
  // queued messages keep the logger alive until then.
  logger_.reset();
  pool_.reset();
}

void AccessLog::log(const ConnectionRecord& record) {
  if (!logger_) return;
  const auto level = record.error.empty() ? spdlog::level::info : spdlog::level::err;
  logger_->log(level, spdlog::string_view_t(formatFields(record)));
}

void AccessLog::log(const RequestRecord& record) {
  if (!logger_) return;
  const auto level = record.response_code >= 500 ? spdlog::level::err : spdlog::level::info;
  logger_->log(level, spdlog::string_view_t(formatFields(record)));
}

}  // namespace sluice::telemetry
