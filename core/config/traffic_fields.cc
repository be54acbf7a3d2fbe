#include "core/config/traffic_fields.h"

#include <boost/asio/ip/address.hpp>
#include <charconv>
#include <utility>

namespace sluice::config::detail {

std::optional<Duration> readDuration(const Field& field, bool positive) {
  if (!field.present()) return std::nullopt;
  if (!field.node().IsScalar()) {
    field.fail("must be a duration such as \"5s\", got a " +
               std::string(field.isMap() ? "mapping" : "list"));
    return std::nullopt;
  }
  std::string text = field.string();
  std::optional<Duration> duration = parseDuration(text);
  if (!duration) {
    field.fail(
        "must be a duration such as \"5s\", \"100ms\", \"1.5s\", \"1m\" or \"1h\" (whole "
        "milliseconds, not negative), got " +
        quoted(text));
    return std::nullopt;
  }
  if (positive && duration->count() == 0) {
    field.fail("must be at least 1ms, got " + quoted(text));
    return std::nullopt;
  }
  return duration;
}

std::optional<double> readPercentage(const Field& field) {
  if (!field.present()) return std::nullopt;
  field.rejectUnknown({"value"});
  const Field value = field["value"];
  if (field.isMap()) value.require();
  return value.number(0, 100);
}

std::optional<uint32_t> readCount(const Field& field, uint32_t max) {
  if (field.present() && field.node().IsScalar() && !field.isQuoted() &&
      field.node().Scalar().starts_with('-')) {
    field.fail("must not be negative, got " + quoted(field.node().Scalar()));
    return std::nullopt;
  }
  std::optional<int64_t> value = field.integer(0, max);
  if (!value) return std::nullopt;
  return static_cast<uint32_t>(*value);
}

std::optional<uint16_t> readStatus(const Field& field, uint16_t min, uint16_t max) {
  std::optional<int64_t> value = field.integer(min, max);
  if (!value) return std::nullopt;
  return static_cast<uint16_t>(*value);
}

std::string readEnum(const Field& field, std::initializer_list<std::string_view> values,
                     std::string_view fallback) {
  if (!field.present()) return std::string(fallback);
  std::string text = field.string();
  for (std::string_view value : values)
    if (value == text) return text;
  std::string known;
  for (std::string_view value : values) {
    if (!known.empty()) known += ", ";
    known += value;
  }
  field.fail("must be one of " + known + ", got " + quoted(text));
  return std::string(fallback);
}

std::string readRequired(const Field& field) {
  field.require();
  std::string text = field.string();
  if (field.present() && text.empty()) field.fail("must not be empty");
  return text;
}

std::optional<StringMatch> readStringMatch(const Field& field, bool allow_presence) {
  if (!field.present()) return std::nullopt;
  field.rejectUnknown({"exact", "prefix", "regex"});
  std::optional<StringMatch> match;
  int set = 0;
  for (auto [name, type] : {std::pair{"exact", StringMatch::Type::kExact},
                            std::pair{"prefix", StringMatch::Type::kPrefix},
                            std::pair{"regex", StringMatch::Type::kRegex}}) {
    const Field value = field[name];
    if (!value.present()) continue;
    ++set;
    match = StringMatch{type, value.string()};
    if (type == StringMatch::Type::kRegex && match->value.empty())
      value.fail("must not be empty (an empty regex would match anything)");
  }
  if (set > 1) field.fail("must set only one of exact, prefix, regex");
  if (!field.isMap()) return std::nullopt;
  if (set == 0) {
    if (allow_presence) return StringMatch{StringMatch::Type::kPresent, ""};
    field.fail("must set one of exact, prefix, regex");
  }
  return match;
}

std::map<std::string, StringMatch> readStringMatchMap(const Field& field) {
  std::map<std::string, StringMatch> result;
  field.forEachEntry([&](const std::string& name, const Field& value) {
    if (name.empty()) value.fail("name must not be empty");
    // `name: {}` and `name:` both test for presence only.
    StringMatch match = value.present() ? readStringMatch(value, true).value_or(StringMatch{})
                                        : StringMatch{StringMatch::Type::kPresent, ""};
    result.emplace(name, std::move(match));
  });
  return result;
}

Destination readDestination(const Field& field) {
  Destination destination;
  field.require();
  field.rejectUnknown({"host", "subset", "port"});
  destination.host = readRequired(field["host"]);
  destination.subset = field["subset"].string();
  const Field port = field["port"];
  port.rejectUnknown({"number"});
  destination.port = port["number"].port();
  return destination;
}

namespace {

HeaderOperations readHeaderOperations(const Field& field) {
  HeaderOperations operations;
  field.rejectUnknown({"set", "add", "remove"});
  operations.set = field["set"].stringMap();
  operations.add = field["add"].stringMap();
  operations.remove = field["remove"].stringList();
  return operations;
}

}  // namespace

Headers readHeaders(const Field& field) {
  Headers headers;
  field.rejectUnknown({"request", "response"});
  headers.request = readHeaderOperations(field["request"]);
  headers.response = readHeaderOperations(field["response"]);
  return headers;
}

std::optional<std::map<std::string, std::string>> readSelector(const Field& field) {
  field.rejectUnknown({"matchLabels"});
  auto labels = field["matchLabels"].stringMap();
  if (labels.empty()) return std::nullopt;
  return labels;
}

bool isIpOrCidr(std::string_view text) {
  std::string_view address = text;
  size_t slash = text.find('/');
  if (slash != std::string_view::npos) address = text.substr(0, slash);
  boost::system::error_code error;
  boost::asio::ip::address ip = boost::asio::ip::make_address(std::string(address), error);
  if (error) return false;
  if (slash == std::string_view::npos) return true;
  std::string_view bits = text.substr(slash + 1);
  unsigned prefix = 0;
  auto [end, parse_error] = std::from_chars(bits.data(), bits.data() + bits.size(), prefix);
  if (bits.empty() || parse_error != std::errc() || end != bits.data() + bits.size()) return false;
  return prefix <= (ip.is_v4() ? 32u : 128u);
}

std::vector<std::string> readIpBlocks(const Field& field) {
  std::vector<std::string> blocks;
  field.forEachItem([&](const Field& item) {
    std::string block = item.string();
    if (!isIpOrCidr(block))
      item.fail("must be an IP address or CIDR such as 10.0.0.0/16, got " + quoted(block));
    blocks.push_back(std::move(block));
  });
  return blocks;
}

}  // namespace sluice::config::detail
