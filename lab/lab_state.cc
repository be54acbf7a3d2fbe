#include "lab/lab_state.h"

#include <unistd.h>

#include <boost/json.hpp>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <system_error>

namespace sluice::lab {
namespace {

namespace json = boost::json;
using boost::asio::ip::address;

json::array addressesToJson(const std::vector<address>& addresses) {
  json::array out;
  for (const address& a : addresses) out.emplace_back(a.to_string());
  return out;
}

// Reads fields out of one JSON object, remembering the first problem for the error message.
class Reader {
 public:
  Reader(const json::value& value, std::string where, std::string* problem)
      : where_(std::move(where)), problem_(problem) {
    object_ = value.if_object();
    if (object_ == nullptr) fail("", "is not an object");
  }

  std::string text(std::string_view key) {
    const json::value* v = find(key);
    if (v == nullptr) return {};
    if (!v->is_string()) {
      fail(key, "is not a string");
      return {};
    }
    return std::string(v->get_string());
  }

  int integer(std::string_view key) {
    const json::value* v = find(key);
    if (v == nullptr) return 0;
    if (!v->is_int64()) {
      fail(key, "is not an integer");
      return 0;
    }
    return static_cast<int>(v->get_int64());
  }

  address ip(std::string_view key) { return parseIp(key, text(key)); }

  // Keys added after the first state files were written: absent reads as empty.
  bool has(std::string_view key) const { return object_ != nullptr && object_->contains(key); }
  std::string optionalText(std::string_view key) { return has(key) ? text(key) : std::string(); }

  std::vector<std::string> strings(std::string_view key) {
    std::vector<std::string> out;
    if (!has(key)) return out;
    for (const json::value& v : array(key)) {
      if (!v.is_string()) {
        fail(key, "holds a non-string");
        continue;
      }
      out.emplace_back(v.get_string());
    }
    return out;
  }

  bool boolean(std::string_view key) {
    const json::value* v = find(key);
    if (v == nullptr) return false;
    if (!v->is_bool()) {
      fail(key, "is not a boolean");
      return false;
    }
    return v->get_bool();
  }

  std::vector<address> ips(std::string_view key) {
    std::vector<address> out;
    for (const json::value& v : array(key)) {
      if (!v.is_string()) {
        fail(key, "holds a non-string");
        continue;
      }
      out.push_back(parseIp(key, std::string(v.get_string())));
    }
    return out;
  }

  const json::array& array(std::string_view key) {
    static const json::array kEmpty;
    const json::value* v = find(key);
    if (v == nullptr) return kEmpty;
    if (!v->is_array()) {
      fail(key, "is not an array");
      return kEmpty;
    }
    return v->get_array();
  }

 private:
  const json::value* find(std::string_view key) {
    if (object_ == nullptr) return nullptr;
    const json::value* v = object_->if_contains(key);
    if (v == nullptr) fail(key, "is missing");
    return v;
  }

  address parseIp(std::string_view key, const std::string& text) {
    boost::system::error_code error;
    address a = boost::asio::ip::make_address(text, error);
    if (error) fail(key, "\"" + text + "\" is not an IP address");
    return a;
  }

  void fail(std::string_view key, const std::string& why) {
    if (problem_->empty())
      *problem_ = where_ + (key.empty() ? "" : "." + std::string(key)) + " " + why;
  }

  const json::object* object_ = nullptr;
  std::string where_;
  std::string* problem_;
};

}  // namespace

const address* PodHandle::ipv4() const {
  for (const address& a : ips)
    if (a.is_v4()) return &a;
  return nullptr;
}

const address* PodHandle::ipv6() const {
  for (const address& a : ips)
    if (a.is_v6()) return &a;
  return nullptr;
}

const NodeHandle* LabState::node(std::string_view name) const {
  for (const NodeHandle& node : nodes)
    if (node.name == name) return &node;
  return nullptr;
}

ProcessHandle* LabState::process(std::string_view owner, std::string_view role) {
  for (ProcessHandle& process : processes)
    if (process.owner == owner && process.role == role) return &process;
  return nullptr;
}

Result<const PodHandle*> LabState::findPod(std::string_view pod) const {
  const PodHandle* found = nullptr;
  bool qualified = pod.find('/') != std::string_view::npos;
  for (const PodHandle& candidate : pods) {
    bool match = qualified ? candidate.key() == pod : candidate.name == pod;
    if (!match) continue;
    if (found != nullptr)
      return makeError("pod name \"" + std::string(pod) + "\" is ambiguous (" + found->key() +
                       ", " + candidate.key() + "): write NAMESPACE/NAME");
    found = &candidate;
  }
  if (found == nullptr)
    return makeError("lab " + name + " has no pod \"" + std::string(pod) + "\"");
  return found;
}

std::string LabState::toJson() const {
  json::array node_array;
  for (const NodeHandle& node : nodes) {
    node_array.emplace_back(json::object{
        {"name", node.name},
        {"netns", node.netns},
        {"netnsPath", node.netns_path.string()},
        {"cgroup", node.cgroup.string()},
        {"hostVeth", node.host_veth},
        {"fabricInterface", node.fabric_interface},
        {"ipv4", node.ipv4.to_string()},
        {"ipv6", node.ipv6.to_string()},
    });
  }
  json::array pod_array;
  for (const PodHandle& pod : pods) {
    pod_array.emplace_back(json::object{
        {"namespace", pod.ns},
        {"name", pod.name},
        {"node", pod.node},
        {"netns", pod.netns},
        {"netnsPath", pod.netns_path.string()},
        {"cgroup", pod.cgroup.string()},
        {"interface", pod.interface},
        {"nodeVeth", pod.node_veth},
        {"ips", addressesToJson(pod.ips)},
    });
  }
  json::array process_array;
  for (const ProcessHandle& process : processes) {
    json::array argv, environment;
    for (const std::string& arg : process.argv) argv.emplace_back(arg);
    for (const std::string& entry : process.environment) environment.emplace_back(entry);
    process_array.emplace_back(json::object{
        {"owner", process.owner},
        {"onNode", process.on_node},
        {"role", process.role},
        {"argv", std::move(argv)},
        {"environment", std::move(environment)},
        {"log", process.log.string()},
        {"pid", process.pid},
    });
  }
  json::object root{
      {"kind", "SluiceLab"},
      {"name", name},
      {"runId", run_id},
      {"cgroupRoot", cgroup_root.string()},
      {"bridge", bridge},
      {"bridgeIPv4", bridge_ipv4.to_string()},
      {"bridgeIPv6", bridge_ipv6.to_string()},
      {"ipv4Prefix", ipv4_prefix},
      {"ipv6Prefix", ipv6_prefix},
      {"nodes", std::move(node_array)},
      {"pods", std::move(pod_array)},
      {"runDir", run_dir.string()},
      {"bpffs", bpffs.string()},
      {"processes", std::move(process_array)},
  };
  return json::serialize(root) + "\n";
}

Result<LabState> LabState::fromJson(std::string_view text, const std::filesystem::path& origin) {
  boost::system::error_code error;
  json::value value = json::parse(text, error);
  if (error) return makeError(origin.string() + ": not JSON: " + error.message());
  std::string problem;
  Reader root(value, origin.string() + ":", &problem);
  LabState state;
  state.state_path = origin;
  if (root.text("kind") != "SluiceLab" && problem.empty())
    return makeError(origin.string() + ": not a lab state file (kind is not SluiceLab)");
  state.name = root.text("name");
  state.run_id = root.text("runId");
  state.cgroup_root = root.text("cgroupRoot");
  state.bridge = root.text("bridge");
  state.bridge_ipv4 = root.ip("bridgeIPv4");
  state.bridge_ipv6 = root.ip("bridgeIPv6");
  state.ipv4_prefix = root.integer("ipv4Prefix");
  state.ipv6_prefix = root.integer("ipv6Prefix");
  for (const json::value& v : root.array("nodes")) {
    Reader r(v, origin.string() + ": node", &problem);
    NodeHandle node;
    node.name = r.text("name");
    node.netns = r.text("netns");
    node.netns_path = r.text("netnsPath");
    node.cgroup = r.text("cgroup");
    node.host_veth = r.text("hostVeth");
    node.fabric_interface = r.text("fabricInterface");
    node.ipv4 = r.ip("ipv4");
    node.ipv6 = r.ip("ipv6");
    state.nodes.push_back(std::move(node));
  }
  for (const json::value& v : root.array("pods")) {
    Reader r(v, origin.string() + ": pod", &problem);
    PodHandle pod;
    pod.ns = r.text("namespace");
    pod.name = r.text("name");
    pod.node = r.text("node");
    pod.netns = r.text("netns");
    pod.netns_path = r.text("netnsPath");
    pod.cgroup = r.text("cgroup");
    pod.interface = r.text("interface");
    pod.node_veth = r.text("nodeVeth");
    pod.ips = r.ips("ips");
    state.pods.push_back(std::move(pod));
  }
  state.run_dir = root.optionalText("runDir");
  state.bpffs = root.optionalText("bpffs");
  if (root.has("processes")) {
    for (const json::value& v : root.array("processes")) {
      Reader r(v, origin.string() + ": process", &problem);
      ProcessHandle process;
      process.owner = r.text("owner");
      process.on_node = r.boolean("onNode");
      process.role = r.text("role");
      process.argv = r.strings("argv");
      process.environment = r.strings("environment");
      process.log = r.text("log");
      process.pid = r.integer("pid");
      state.processes.push_back(std::move(process));
    }
  }
  if (!problem.empty()) return makeError(problem);
  return state;
}

Result<void> LabState::save() const {
  std::error_code error;
  std::filesystem::create_directories(state_path.parent_path(), error);
  if (error)
    return makeError("cannot create " + state_path.parent_path().string() + ": " + error.message());
  std::filesystem::path temporary = state_path;
  temporary += ".tmp" + std::to_string(::getpid());
  {
    std::ofstream out(temporary, std::ios::trunc);
    out << toJson();
    out.flush();
    if (!out) return makeError("cannot write " + temporary.string());
  }
  std::filesystem::rename(temporary, state_path, error);
  if (error) {
    std::filesystem::remove(temporary, error);
    return makeError("cannot write " + state_path.string() + ": " + error.message());
  }
  return success();
}

Result<LabState> LabState::load(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) return makeError("cannot read " + path.string() + ": " + std::strerror(errno));
  std::stringstream text;
  text << in.rdbuf();
  return fromJson(text.str(), path);
}

}  // namespace sluice::lab
