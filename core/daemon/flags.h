// Command-line flags of the Sluice daemons: each flag is declared once in a table (name, value,
// help, how to set it), and parsing, error messages and the usage text all come from that table.
#pragma once

#include <chrono>
#include <concepts>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace sluice::daemon {

// Stores a flag's value into the caller's options, or says what is wrong with it; the parser puts
// the flag's name in front ("--workers: expected a number from 1 to 64, got '0'").
using Setter = std::function<Result<void>(std::string_view value)>;

struct Flag {
  std::string name;        // with its dashes: "--config-dir"
  std::string value_name;  // as the usage shows the value ("DIR"); empty: a switch, no value
  std::string help;        // what it does; '\n' starts another line
  Setter set;              // a switch's setter gets ""
  // Given to `set` before the command line is read, and shown in the usage; "": no default.
  std::string default_value;
  bool required = false;
};

class FlagSet {
 public:
  // `synopsis` follows "usage: " ("sluice-ztunnel --node NODE [options]"); its first word is the
  // program's name. `about` says in a paragraph what the program does.
  FlagSet(std::string synopsis, std::string about);

  // Flags are parsed and listed in the order added; a name may be added once. `value_name` empty:
  // a switch. `default_value` (if any) goes through `set` before the command line is read.
  FlagSet& add(std::string name, std::string value_name, std::string help, Setter set,
               std::string default_value = "");
  // Marks an added flag required.
  FlagSet& require(std::string_view name);
  // A paragraph after the flags: a convention several flags follow, said once.
  FlagSet& note(std::string text);

  const std::string& program() const { return program_; }
  std::string usage() const;

  // Applies every default, then reads argv[first..argc) in order: "--name VALUE", or "--name"
  // alone for a switch; a flag given twice is set twice (lists append, others keep the last).
  // Errors name the flag: "--foo: unknown flag", "--admin: missing value", "--node is required",
  // or the setter's message. --help or -h stops at once with an error holding the usage text
  // and `help` set, so a caller passes both on to exitAfterFlags().
  Result<void> parse(int argc, const char* const* argv, bool& help, int first = 1) const;

 private:
  const Flag* find(std::string_view name) const;

  std::string synopsis_, program_, about_;
  std::vector<Flag> flags_;
  std::vector<std::string> notes_;
};

// The convention of every daemon's main() for a parse that did not yield options to run with:
// with `help`, prints `message` (the usage) to stdout and returns 0; otherwise prints
// "<program>: <message>" and a pointer to --help to stderr and returns 2.
int exitAfterFlags(std::string_view program, std::string_view message, bool help);

// Setters for common kinds of value; each keeps a reference to `out`.
Setter assign(std::string& out);
Setter assign(std::filesystem::path& out);
// "on" or "off".
Setter onOff(bool& out);

// A whole decimal number in [min, max]; the error says the range.
Result<std::uint64_t> parseNumber(std::string_view text, std::uint64_t min, std::uint64_t max);

// Appends each value, parsed by `parse` (a callable taking a string_view, returning Result<T>).
template <class T, class Parse>
Setter append(std::vector<T>& out, Parse parse) {
  return [&out, parse](std::string_view text) -> Result<void> {
    Result<T> value = parse(text);
    if (!value) return value.error();
    out.push_back(std::move(*value));
    return success();
  };
}

template <std::unsigned_integral T>
Setter number(T& out, T min, T max) {
  return [&out, min, max](std::string_view text) -> Result<void> {
    auto value = parseNumber(text, min, max);
    if (!value) return value.error();
    out = static_cast<T>(*value);
    return success();
  };
}

inline Setter milliseconds(std::chrono::milliseconds& out, std::chrono::milliseconds min,
                           std::chrono::milliseconds max) {
  return [&out, min, max](std::string_view text) -> Result<void> {
    auto value = parseNumber(text, min.count(), max.count());
    if (!value) return value.error();
    out = std::chrono::milliseconds(*value);
    return success();
  };
}

}  // namespace sluice::daemon
