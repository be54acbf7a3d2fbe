#include "core/daemon/flags.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <set>
#include <stdexcept>

namespace sluice::daemon {

namespace {

// Help text starts in this column when the flag and its value leave room for it.
constexpr size_t kHelpColumn = 29;
constexpr size_t kWidth = 100;

}  // namespace

FlagSet::FlagSet(std::string synopsis, std::string about)
    : synopsis_(std::move(synopsis)),
      program_(synopsis_.substr(0, synopsis_.find(' '))),
      about_(std::move(about)) {}

FlagSet& FlagSet::add(std::string name, std::string value_name, std::string help, Setter set,
                      std::string default_value) {
  // Two entries for one name is a programming error: the second would never be reached.
  if (find(name) != nullptr) throw std::logic_error("flag " + name + " added twice");
  flags_.push_back(Flag{std::move(name), std::move(value_name), std::move(help), std::move(set),
                        std::move(default_value), false});
  return *this;
}

FlagSet& FlagSet::require(std::string_view name) {
  auto it = std::find_if(flags_.begin(), flags_.end(),
                         [&](const Flag& flag) { return flag.name == name; });
  if (it == flags_.end()) throw std::logic_error("require: no flag " + std::string(name));
  it->required = true;
  return *this;
}

FlagSet& FlagSet::note(std::string text) {
  notes_.push_back(std::move(text));
  return *this;
}

const Flag* FlagSet::find(std::string_view name) const {
  for (const auto& flag : flags_)
    if (flag.name == name) return &flag;
  return nullptr;
}

std::string FlagSet::usage() const {
  std::string out = "usage: " + synopsis_ + "\n\n" + about_ + "\n\n";
  auto entry = [&out](std::string left, std::string help) {
    out += "  " + left;
    const size_t used = 2 + left.size();
    if (used + 1 > kHelpColumn) {
      out += "\n";
      out += std::string(kHelpColumn, ' ');
    } else {
      out += std::string(kHelpColumn - used, ' ');
    }
    for (char c : help) {
      out += c;
      if (c == '\n') out += std::string(kHelpColumn, ' ');
    }
    out += "\n";
  };
  for (const auto& flag : flags_) {
    std::string help = flag.help;
    if (!flag.default_value.empty()) {
      const std::string text = "(default " + flag.default_value + ")";
      const size_t last_line = help.size() - (help.rfind('\n') + 1);
      help += (kHelpColumn + last_line + 1 + text.size() > kWidth ? "\n" : " ") + text;
    }
    entry(flag.value_name.empty() ? flag.name : flag.name + " " + flag.value_name, help);
  }
  entry("--help", "this text");
  for (const auto& note : notes_) out += "\n" + note + "\n";
  return out;
}

Result<void> FlagSet::parse(int argc, const char* const* argv, bool& help, int first) const {
  help = false;
  for (const auto& flag : flags_) {
    if (flag.default_value.empty()) continue;
    if (auto set = flag.set(flag.default_value); !set)
      throw std::logic_error(flag.name + ": bad default: " + set.message());
  }
  std::set<std::string_view> given;
  for (int i = first; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      help = true;
      return makeError(usage());
    }
    const Flag* flag = find(arg);
    if (flag == nullptr) return makeError(std::string(arg) + ": unknown flag");
    std::string_view value;
    if (!flag->value_name.empty()) {
      // "--node --config-dir DIR" is a forgotten value, not a node named "--config-dir".
      if (i + 1 >= argc || find(argv[i + 1]) != nullptr)
        return makeError(flag->name + ": missing value");
      value = argv[++i];
    }
    if (auto set = flag->set(value); !set) return makeError(flag->name + ": " + set.message());
    given.insert(flag->name);
  }
  for (const auto& flag : flags_)
    if (flag.required && !given.contains(flag.name)) return makeError(flag.name + " is required");
  return success();
}

int exitAfterFlags(std::string_view program, std::string_view message, bool help) {
  if (help) {
    std::fwrite(message.data(), 1, message.size(), stdout);
    if (!message.ends_with('\n')) std::fputc('\n', stdout);
    return 0;
  }
  const std::string name(program);
  std::fprintf(stderr, "%s: %.*s\nRun '%s --help' for the list of flags.\n", name.c_str(),
               static_cast<int>(message.size()), message.data(), name.c_str());
  return 2;
}

Setter assign(std::string& out) {
  return [&out](std::string_view value) -> Result<void> {
    out = value;
    return success();
  };
}

Setter assign(std::filesystem::path& out) {
  return [&out](std::string_view value) -> Result<void> {
    out = value;
    return success();
  };
}

Setter onOff(bool& out) {
  return [&out](std::string_view value) -> Result<void> {
    if (value != "on" && value != "off")
      return makeError("'" + std::string(value) + "' is not one of on, off");
    out = value == "on";
    return success();
  };
}

Result<std::uint64_t> parseNumber(std::string_view text, std::uint64_t min, std::uint64_t max) {
  std::uint64_t value = 0;
  const auto [end, err] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || err != std::errc() || end != text.data() + text.size() || value < min ||
      value > max)
    return makeError("expected a number from " + std::to_string(min) + " to " +
                     std::to_string(max) + ", got '" + std::string(text) + "'");
  return value;
}

}  // namespace sluice::daemon
