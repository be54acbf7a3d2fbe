// sluicectl's subcommands: each is one function registered in the table in cli.cc.
#pragma once

#include <ostream>
#include <span>
#include <string>
#include <string_view>

namespace sluice::cli {

// Exit codes shared by every subcommand.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;  // the command ran and found a problem
inline constexpr int kExitUsage = 2;    // the command line was wrong

struct Io {
  std::ostream& out;
  std::ostream& err;
};

// Runs one subcommand with the arguments after its name. Handles --help itself.
using CommandFn = int (*)(std::span<const std::string> args, Io io);

struct Command {
  std::string_view name;
  std::string_view summary;  // one line for `sluicectl --help`
  CommandFn run;
};

// Every subcommand, in the order `sluicectl --help` lists them.
std::span<const Command> commands();

// Runs sluicectl with the arguments after the program name; returns the exit code.
int run(std::span<const std::string> args, Io io);

// Subcommands.
int validateCommand(std::span<const std::string> args, Io io);
int labCommand(std::span<const std::string> args, Io io);

}  // namespace sluice::cli
