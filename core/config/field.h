// Field: a cursor into a parsed document used by the object decoders (internal to
// sluice_config).
//
// A Field knows its node, its path ("spec.ports[0].port") and its line, and reports the first
// problem it finds to a shared DecodeContext. Decoders read fields straight through without
// checking after each step: once an error is recorded, later reads return defaults and the
// decoded object is discarded. Absent and null fields read as defaults; nothing here throws.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::config::detail {

struct FieldError {
  std::string field;  // path, empty for the document itself
  int line = 0;       // 1-based
  std::string reason;
};

class DecodeContext {
 public:
  // Keeps the first error only: later ones are usually consequences of it.
  void fail(std::string field, int line, std::string reason);
  bool failed() const { return error_.has_value(); }
  const std::optional<FieldError>& error() const { return error_; }

 private:
  std::optional<FieldError> error_;
};

class Field {
 public:
  // The root of a document or object; `line` is used when the node itself has no position.
  Field(const YAML::Node& node, DecodeContext& context, int fallback_line = 0);
  Field(const Field&) = default;
  // Not assignable: assigning a YAML::Node writes through to the document it refers to.
  Field& operator=(const Field&) = delete;

  // Defined and not null.
  bool present() const { return present_; }
  const std::string& path() const { return path_; }
  int line() const { return line_; }
  const YAML::Node& node() const { return node_; }

  // The field `key` of this mapping; an absent field when this is absent or (reported) not a
  // mapping.
  Field operator[](std::string_view key) const;

  // Calls fn(Field item) for each item of a sequence; reports a non-sequence.
  template <class Fn>
  void forEachItem(Fn&& fn) const;
  // Calls fn(std::string key, Field value) for each entry of a mapping; reports a non-mapping
  // or a non-scalar key.
  template <class Fn>
  void forEachEntry(Fn&& fn) const;

  // Readers return the default (and report) when the value has the wrong type.
  std::string string(std::string_view fallback = "") const;  // any scalar
  bool boolean(bool fallback) const;                         // true/false, unquoted
  std::optional<uint16_t> port() const;                      // unquoted integer 1..65535
  std::map<std::string, std::string> stringMap() const;      // mapping of scalars
  std::vector<std::string> stringList() const;               // list of scalars
  // An unquoted integer (or number) within [min, max]; nullopt when absent or reported.
  std::optional<int64_t> integer(int64_t min, int64_t max) const;
  std::optional<double> number(double min, double max) const;

  bool isMap() const;
  bool isSequence() const;
  // A scalar written in quotes (JSON strings included), as opposed to a plain scalar.
  bool isQuoted() const;

  // For strict kinds: reports the first key of this mapping not in `allowed`.
  void rejectUnknown(std::initializer_list<std::string_view> allowed) const;
  // Reports a problem with this field.
  void fail(std::string reason) const;
  // Reports a required field that is absent.
  void require() const;

 private:
  Field(YAML::Node node, std::string path, int line, bool present, DecodeContext& context);
  Field child(const YAML::Node& node, std::string path, const YAML::Node& position) const;
  bool expect(bool ok, std::string_view what) const;

  YAML::Node node_;
  std::string path_;
  int line_;
  bool present_;
  DecodeContext* context_;
};

// Path of a mapping entry or sequence item: "spec.ports" + "[0]".
std::string itemPath(const std::string& parent, std::string_view index);

// `text` fit for a one-line error message: control characters, quotes and backslashes
// escaped, values longer than `max_shown` cut. quoted() adds double quotes around it.
std::string printable(std::string_view text, size_t max_shown = 64);
std::string quoted(std::string_view text);

// A decimal port number 1..65535 (no sign, no leading '+', no hex).
std::optional<uint16_t> parsePort(std::string_view text);

template <class Fn>
void Field::forEachItem(Fn&& fn) const {
  if (!present_ || !expect(node_.IsSequence(), "a list")) return;
  size_t index = 0;
  for (const YAML::Node& item : node_) {
    fn(child(item, itemPath(path_, std::to_string(index)), item));
    ++index;
  }
}

template <class Fn>
void Field::forEachEntry(Fn&& fn) const {
  if (!present_ || !expect(node_.IsMap(), "a mapping")) return;
  for (const auto& entry : node_) {
    if (!entry.first.IsScalar()) {
      child(entry.first, path_, entry.first).fail("keys must be strings");
      return;
    }
    const std::string& key = entry.first.Scalar();
    fn(key, child(entry.second, itemPath(path_, key), entry.first));
  }
}

}  // namespace sluice::config::detail
