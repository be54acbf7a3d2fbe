// sluicectl's entry: top-level help and dispatch to a subcommand from the table.
#include <iomanip>
#include <vector>

#include "cli/command.h"

namespace sluice::cli {
namespace {

// Adding a subcommand: write `int xCommand(args, io)` in cli/x.cc and add one row here.
constexpr Command kCommands[] = {
    {"validate", "check configuration files and say what Sluice accepts", &validateCommand},
    {"lab", "build, inspect and remove a local mesh of netns and cgroups", &labCommand},
};

void printUsage(std::ostream& out) {
  out << "usage: sluicectl COMMAND [ARGS...]\n\ncommands:\n";
  for (const Command& command : kCommands)
    out << "  " << std::left << std::setw(12) << command.name << command.summary << "\n";
  out << "\nRun 'sluicectl COMMAND --help' for a command's options.\n";
}

const Command* find(std::string_view name) {
  for (const Command& command : kCommands)
    if (command.name == name) return &command;
  return nullptr;
}

}  // namespace

std::span<const Command> commands() { return kCommands; }

int run(std::span<const std::string> args, Io io) {
  if (args.empty()) {
    printUsage(io.err);
    return kExitUsage;
  }
  const std::string& first = args.front();
  if (first == "--help" || first == "-h" || (first == "help" && args.size() == 1)) {
    printUsage(io.out);
    return kExitOk;
  }
  if (first == "help") {  // `sluicectl help validate` is `sluicectl validate --help`
    const Command* command = find(args[1]);
    if (command == nullptr) {
      io.err << "sluicectl: unknown command \"" << args[1] << "\"\n\n";
      printUsage(io.err);
      return kExitUsage;
    }
    const std::vector<std::string> help = {"--help"};
    return command->run(help, io);
  }
  const Command* command = find(first);
  if (command == nullptr) {
    io.err << "sluicectl: unknown command \"" << first << "\"\n\n";
    printUsage(io.err);
    return kExitUsage;
  }
  return command->run(args.subspan(1), io);
}

}  // namespace sluice::cli
