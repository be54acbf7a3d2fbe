#include "core/inpod/pod_netns_file.h"

#include <unistd.h>

#include <boost/json.hpp>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace sluice::inpod {

namespace json = boost::json;

Result<void> writePodNetnsFile(const std::filesystem::path& file, const PodNetnsPaths& pods) {
  json::object entries;
  for (const auto& [pod, path] : pods) entries[pod] = path.string();
  std::filesystem::path temporary = file;
  temporary += ".tmp" + std::to_string(::getpid());
  {
    std::ofstream out(temporary, std::ios::trunc);
    out << json::serialize(json::object{{"pods", std::move(entries)}}) << '\n';
    out.flush();
    if (!out) return makeError("cannot write " + temporary.string());
  }
  std::error_code error;
  std::filesystem::rename(temporary, file, error);
  if (error) {
    std::filesystem::remove(temporary, error);
    return makeError("cannot write " + file.string() + ": " + error.message());
  }
  return success();
}

Result<PodNetnsPaths> readPodNetnsFile(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) return makeError("cannot read " + file.string() + ": " + std::strerror(errno));
  std::stringstream text;
  text << in.rdbuf();
  boost::system::error_code ec;
  json::value document = json::parse(text.str(), ec);
  const json::object* root = ec ? nullptr : document.if_object();
  const json::value* pods_value = root ? root->if_contains("pods") : nullptr;
  const json::object* pods = pods_value ? pods_value->if_object() : nullptr;
  if (pods == nullptr)
    return makeError(file.string() +
                     ": not a pod netns file (want {\"pods\": {\"ns/name\": path}})");
  PodNetnsPaths out;
  for (const auto& [pod, path] : *pods) {
    if (!path.is_string())
      return makeError(file.string() + ": pod " + std::string(pod) + ": the path is not a string");
    out[std::string(pod)] = std::string(path.as_string());
  }
  return out;
}

}  // namespace sluice::inpod
