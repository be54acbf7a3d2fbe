#include "core/config/field.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <set>
#include <type_traits>

namespace sluice::config::detail {
namespace {

// 1-based line of a node, 0 when it has none (yaml-cpp marks are 0-based, -1 when unknown).
int lineOf(const YAML::Node& node) {
  if (!node.IsDefined()) return 0;
  int line = node.Mark().line;
  return line < 0 ? 0 : line + 1;
}

bool isPresent(const YAML::Node& node) { return node.IsDefined() && !node.IsNull(); }

std::string describeType(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Scalar:
      return quoted(node.Scalar());
    default:
      return "null";
  }
}

}  // namespace

void DecodeContext::fail(std::string field, int line, std::string reason) {
  if (error_) return;
  error_ = FieldError{std::move(field), line, std::move(reason)};
}

std::string itemPath(const std::string& parent, std::string_view index) {
  std::string path = parent;
  path += '[';
  path += printable(index);
  path += ']';
  return path;
}

Field::Field(const YAML::Node& node, DecodeContext& context, int fallback_line)
    : Field(node, "", std::max(lineOf(node), fallback_line), isPresent(node), context) {}

Field::Field(YAML::Node node, std::string path, int line, bool present, DecodeContext& context)
    : node_(std::move(node)),
      path_(std::move(path)),
      line_(line),
      present_(present),
      context_(&context) {}

Field Field::child(const YAML::Node& node, std::string path, const YAML::Node& position) const {
  int line = lineOf(position);
  if (line == 0) line = lineOf(node);
  if (line == 0) line = line_;
  return Field(node, std::move(path), line, isPresent(node), *context_);
}

Field Field::operator[](std::string_view key) const {
  std::string path = path_.empty() ? std::string(key) : path_ + "." + std::string(key);
  if (present_ && expect(node_.IsMap(), "a mapping")) {
    // Looked up by hand rather than with node_[key]: that also yields the key's line, which
    // is where a person looks for the field.
    for (const auto& entry : node_) {
      if (entry.first.IsScalar() && entry.first.Scalar() == key)
        return child(entry.second, std::move(path), entry.first);
    }
  }
  return Field(YAML::Node(), std::move(path), line_, false, *context_);
}

bool Field::expect(bool ok, std::string_view what) const {
  if (!ok) fail("must be " + std::string(what) + ", got " + describeType(node_));
  return ok;
}

void Field::fail(std::string reason) const { context_->fail(path_, line_, std::move(reason)); }

void Field::require() const {
  if (!present_) fail("required");
}

bool Field::isMap() const { return present_ && node_.IsMap(); }
bool Field::isSequence() const { return present_ && node_.IsSequence(); }
bool Field::isQuoted() const { return present_ && node_.IsScalar() && node_.Tag() == "!"; }

std::string Field::string(std::string_view fallback) const {
  if (!present_ || !expect(node_.IsScalar(), "a string")) return std::string(fallback);
  return node_.Scalar();
}

bool Field::boolean(bool fallback) const {
  if (!present_) return fallback;
  if (node_.IsScalar() && !isQuoted()) {
    const std::string& text = node_.Scalar();
    if (text == "true" || text == "True" || text == "TRUE") return true;
    if (text == "false" || text == "False" || text == "FALSE") return false;
  }
  expect(false, "true or false");
  return fallback;
}

std::string quoted(std::string_view text) { return "\"" + printable(text) + "\""; }

std::string printable(std::string_view text, size_t max_shown) {
  std::string out;
  for (size_t i = 0; i < text.size() && i < max_shown; ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7f) {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    } else {
      out += static_cast<char>(c);
    }
  }
  if (text.size() > max_shown) out += "...";
  return out;
}

std::optional<uint16_t> parsePort(std::string_view text) {
  if (text.empty() || text.size() > 5) return std::nullopt;
  uint32_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + static_cast<uint32_t>(c - '0');
  }
  if (value < 1 || value > 65535) return std::nullopt;
  return static_cast<uint16_t>(value);
}

std::optional<uint16_t> Field::port() const {
  if (!present_) return std::nullopt;
  if (!node_.IsScalar() || isQuoted()) {
    expect(false, "a port number 1..65535");
    return std::nullopt;
  }
  std::optional<uint16_t> port = parsePort(node_.Scalar());
  if (!port) fail("must be a port number 1..65535, got " + quoted(node_.Scalar()));
  return port;
}

std::map<std::string, std::string> Field::stringMap() const {
  std::map<std::string, std::string> result;
  forEachEntry([&](const std::string& key, const Field& value) {
    // Null values are empty strings, as Kubernetes reads `key:` in a label map.
    result.emplace(key, value.string());
  });
  return result;
}

std::vector<std::string> Field::stringList() const {
  std::vector<std::string> result;
  forEachItem([&](const Field& item) { result.push_back(item.string()); });
  return result;
}

namespace {

// Shows a bound the way a person would write it: 100, not 100.000000.
std::string formatBound(double value) {
  if (value == std::floor(value) && std::fabs(value) < 1e15)
    return std::to_string(static_cast<int64_t>(value));
  return std::to_string(value);
}

}  // namespace

namespace {

// An unquoted scalar that std::from_chars reads whole as a T within [min, max].
template <class T>
std::optional<T> readNumber(const Field& field, T min, T max, const std::string& what) {
  if (!field.present()) return std::nullopt;
  const YAML::Node& node = field.node();
  if (!node.IsScalar() || field.isQuoted()) {
    field.fail("must be " + what + ", got " + describeType(node));
    return std::nullopt;
  }
  const std::string& text = node.Scalar();
  T value{};
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  bool finite = true;
  if constexpr (std::is_floating_point_v<T>) finite = std::isfinite(value);
  if (error != std::errc() || end != text.data() + text.size() || !finite || value < min ||
      value > max) {
    field.fail("must be " + what + ", got " + quoted(text));
    return std::nullopt;
  }
  return value;
}

}  // namespace

std::optional<int64_t> Field::integer(int64_t min, int64_t max) const {
  return readNumber(*this, min, max,
                    "an integer " + std::to_string(min) + ".." + std::to_string(max));
}

std::optional<double> Field::number(double min, double max) const {
  return readNumber(*this, min, max, "a number " + formatBound(min) + ".." + formatBound(max));
}

void Field::rejectUnknown(std::initializer_list<std::string_view> allowed) const {
  if (!present_ || !node_.IsMap()) return;
  std::set<std::string, std::less<>> seen;
  forEachEntry([&](const std::string& key, const Field& value) {
    std::string path = path_.empty() ? printable(key) : path_ + "." + printable(key);
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      std::string known;
      for (std::string_view name : allowed) {
        if (!known.empty()) known += ", ";
        known += name;
      }
      context_->fail(std::move(path), value.line(), "unknown field (known: " + known + ")");
    } else if (!seen.insert(key).second) {
      context_->fail(std::move(path), value.line(), "duplicate field");
    }
  });
}

}  // namespace sluice::config::detail
