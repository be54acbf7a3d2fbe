// sluicectl: the operator's command-line tool. The commands live in cli/*.cc.
#include <iostream>
#include <string>
#include <vector>

#include "cli/command.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  return sluice::cli::run(args, sluice::cli::Io{std::cout, std::cerr});
}
