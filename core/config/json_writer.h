// JsonWriter: the small JSON emitter behind Snapshot::toJson (internal to sluice_config).
//
// Written by hand rather than with Boost.JSON so that sluice_config needs no compiled Boost
// library (its tests link sluice_config alone).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/config/objects.h"

namespace sluice::config {

class Snapshot;

namespace detail {

// Length of the valid UTF-8 sequence at text[i], or 0 when it is not valid UTF-8.
inline size_t utf8Length(std::string_view text, size_t i) {
  auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  unsigned char c = byte(i);
  size_t length = 0;
  if (c >= 0xc2 && c <= 0xdf) {
    length = 2;
  } else if (c >= 0xe0 && c <= 0xef) {
    length = 3;
  } else if (c >= 0xf0 && c <= 0xf4) {
    length = 4;
  }
  if (length == 0 || i + length > text.size()) return 0;
  for (size_t k = 1; k < length; ++k)
    if ((byte(i + k) & 0xc0) != 0x80) return 0;
  // Overlong forms, UTF-16 surrogates and code points past U+10FFFF.
  unsigned char next = byte(i + 1);
  if (c == 0xe0 && next < 0xa0) return 0;
  if (c == 0xed && next >= 0xa0) return 0;
  if (c == 0xf0 && next < 0x90) return 0;
  if (c == 0xf4 && next >= 0x90) return 0;
  return length;
}

// Emits JSON with commas placed automatically; keys and values are written in order.
class JsonWriter {
 public:
  JsonWriter& beginObject() { return open('{'); }
  JsonWriter& endObject() { return close('}'); }
  JsonWriter& beginArray() { return open('['); }
  JsonWriter& endArray() { return close(']'); }
  JsonWriter& key(std::string_view name) {
    separate();
    quote(name);
    out_ += ':';
    after_key_ = true;
    return *this;
  }
  JsonWriter& value(std::string_view text) {
    separate();
    quote(text);
    return *this;
  }
  JsonWriter& value(const char* text) { return value(std::string_view(text)); }
  JsonWriter& value(bool flag) { return raw(flag ? "true" : "false"); }
  JsonWriter& value(uint64_t number) { return raw(std::to_string(number)); }
  // Named apart from value(): integers would convert to double and bool alike.
  JsonWriter& number(double value);
  JsonWriter& stringList(const std::vector<std::string>& list) {
    beginArray();
    for (const std::string& item : list) value(item);
    return endArray();
  }
  JsonWriter& stringMap(const std::map<std::string, std::string>& map) {
    beginObject();
    for (const auto& [k, v] : map) key(k).value(v);
    return endObject();
  }
  std::string take() { return std::move(out_); }

 private:
  JsonWriter& raw(std::string_view text) {
    separate();
    out_ += text;
    return *this;
  }
  JsonWriter& open(char bracket) {
    separate();
    out_ += bracket;
    first_.push_back(true);
    return *this;
  }
  JsonWriter& close(char bracket) {
    out_ += bracket;
    first_.pop_back();
    return *this;
  }
  void separate() {
    if (after_key_) {
      after_key_ = false;
      return;
    }
    if (first_.empty()) return;
    if (!first_.back()) out_ += ',';
    first_.back() = false;
  }
  void quote(std::string_view text) {
    static constexpr char kHex[] = "0123456789abcdef";
    out_ += '"';
    for (size_t i = 0; i < text.size();) {
      unsigned char c = static_cast<unsigned char>(text[i]);
      if (c == '"' || c == '\\') {
        out_ += '\\';
        out_ += static_cast<char>(c);
      } else if (c < 0x20) {
        out_ += "\\u00";
        out_ += kHex[c >> 4];
        out_ += kHex[c & 0xf];
      } else if (c >= 0x80) {
        size_t length = utf8Length(text, i);
        if (length == 0) {
          out_ += "\\ufffd";  // not UTF-8: keep the dump valid JSON
          ++i;
        } else {
          out_.append(text.substr(i, length));
          i += length;
        }
        continue;
      } else {
        out_ += static_cast<char>(c);
      }
      ++i;
    }
    out_ += '"';
  }

  std::string out_;
  std::vector<bool> first_;
  bool after_key_ = false;
};

void writeMeta(JsonWriter& json, const ObjectMeta& meta);
// The L7 kinds (traffic_json.cc), as members of the object being written.
void writeTrafficObjects(JsonWriter& json, const Snapshot& snapshot);

}  // namespace detail
}  // namespace sluice::config
