// ObjectMeta: what every configuration object carries (see objects.h).
#pragma once

#include <map>
#include <string>

namespace sluice::config {

struct ObjectMeta {
  std::string name;
  std::string ns;  // empty for cluster-scoped kinds
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> annotations;
  std::string uid;
};

}  // namespace sluice::config
