// The lab on the real kernel (root): pods reach each other across nodes and on one node,
// processes land in their pod's cgroup and netns, and `down` leaves nothing behind, also
// after `up` crashed halfway. Skipped without root, failed in CI.
#include "lab/lab.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "lab/host.h"
#include "tests/unit/lab/lab_test_util.h"

namespace sluice::lab {
namespace {

using ::testing::HasSubstr;
using testing::kTwoNodeMesh;
using ::testing::Not;
using testing::specFor;
using testing::TempDir;
using namespace std::chrono_literals;

constexpr uint16_t kHttpPort = 8080;

std::string readFile(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// `ip ARGS` in the host netns, its stdout.
std::string ipOutput(std::vector<std::string> args) {
  args.insert(args.begin(), "ip");
  auto ran = runCommand(args);
  return ran && ran->ok() ? ran->out : "<" + quoteCommand(args) + " failed>";
}

// An HTTP server as `pod` on [::]:8080 (IPv4 too), started and listening.
ChildProcess serveHttp(const LabState& state, std::string_view pod, const TempDir& root) {
  std::string python = std::filesystem::exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
  StartOptions options;
  options.output = root.path() / (std::string(pod.substr(pod.find('/') + 1)) + ".log");
  auto server = startInPod(state, pod,
                           {python, "-m", "http.server", "--bind", "::", "--directory",
                            root.path().string(), std::to_string(kHttpPort)},
                           options);
  if (!server) throw std::runtime_error(server.message());
  auto listening = waitForListener(server->pid(), kHttpPort, 10s);
  if (!listening) throw std::runtime_error(listening.message());
  return std::move(*server);
}

// The HTTP status `from` gets for `host`, or curl's complaint.
std::string httpStatus(const LabState& state, std::string_view from, const std::string& host) {
  std::string url = "http://" + host + ":" + std::to_string(kHttpPort) + "/";
  auto ran = runInPod(state, from,
                      {"curl", "--noproxy", "*", "-g", "-sS", "--max-time", "5", "-o", "/dev/null",
                       "-w", "%{http_code}", url});
  if (!ran) return ran.message();
  return ran->ok() ? ran->out : ran->describe();
}

// Then: nothing of the lab is left in the kernel or on disk.
void expectGone(const LabState& state) {
  EXPECT_THAT(ipOutput({"netns", "list"}), Not(HasSubstr("sluice-" + state.run_id + "-")));
  EXPECT_THAT(ipOutput({"-o", "link", "show"}), Not(HasSubstr("sluice" + state.run_id)));
  EXPECT_FALSE(std::filesystem::exists(state.cgroup_root)) << state.cgroup_root;
  EXPECT_FALSE(std::filesystem::exists(state.state_path)) << state.state_path;
  for (const ObjectStatus& object : inspect(state))
    EXPECT_FALSE(object.exists) << object.owner << " " << object.kind << " " << object.name;
}

class LabTest : public ::testing::Test {
 protected:
  void SetUp() override { SLUICE_REQUIRE_LAB_HOST(); }

  ScopedLab upOrThrow(std::string name = "test") {
    auto lab = ScopedLab::create(specFor(kTwoNodeMesh, state_dir_.path(), std::move(name)));
    if (!lab) throw std::runtime_error(lab.message());
    return std::move(*lab);
  }

  TempDir state_dir_;
  TempDir web_root_;
};

TEST_F(LabTest, PodsReachEachOtherAcrossNodesAndOnTheSameNode) {
  ScopedLab lab = upOrThrow();
  ChildProcess remote = serveHttp(lab.state(), "shop/remote-server", web_root_);
  ChildProcess local = serveHttp(lab.state(), "shop/local-server", web_root_);

  // Across nodes (node-a -> node-b), both families.
  EXPECT_EQ(httpStatus(lab.state(), "shop/client", "198.18.2.10"), "200");
  EXPECT_EQ(httpStatus(lab.state(), "shop/client", "[fd00:5::2:10]"), "200");
  // Same node, through node-a.
  EXPECT_EQ(httpStatus(lab.state(), "client", "198.18.1.11"), "200");
  EXPECT_EQ(httpStatus(lab.state(), "client", "[fd00:5::1:11]"), "200");
  // And back the other way.
  EXPECT_EQ(httpStatus(lab.state(), "remote-server", "198.18.1.11"), "200");
}

TEST_F(LabTest, PodProcessRunsInItsCgroupAndNetns) {
  ScopedLab lab = upOrThrow();
  const PodHandle& pod = *lab->findPod("shop/remote-server").value();

  auto sleeper = startInPod(lab.state(), pod.key(), {"sleep", "30"});
  ASSERT_TRUE(sleeper) << sleeper.message();

  auto mount = findCgroup2Mount();
  ASSERT_TRUE(mount);
  std::string proc = "/proc/" + std::to_string(sleeper->pid());
  EXPECT_THAT(readFile(proc + "/cgroup"),
              HasSubstr("0::/" + pod.cgroup.lexically_relative(*mount).string() + "\n"));
  struct stat in_pod, pod_netns;
  ASSERT_EQ(::stat((proc + "/ns/net").c_str(), &in_pod), 0);
  ASSERT_EQ(::stat(pod.netns_path.c_str(), &pod_netns), 0);
  EXPECT_EQ(in_pod.st_ino, pod_netns.st_ino);
  // The pod sees its own addresses on eth0, and the lab's run prefix is on its netns.
  auto addresses = runInPod(lab.state(), pod.key(), {"ip", "-o", "addr", "show", "dev", "eth0"});
  ASSERT_TRUE(addresses) << addresses.message();
  EXPECT_THAT(addresses->out, HasSubstr("198.18.2.10/32"));
  EXPECT_THAT(addresses->out, HasSubstr("fd00:5::2:10/128"));
}

TEST_F(LabTest, OnlyNodesForward) {
  std::string host_forwarding = readFile("/proc/sys/net/ipv4/ip_forward");
  ScopedLab lab = upOrThrow();

  auto in_node =
      runInNode(lab.state(), "node-b",
                {"cat", "/proc/sys/net/ipv4/ip_forward", "/proc/sys/net/ipv6/conf/all/forwarding"});
  auto in_pod = runInPod(lab.state(), "client", {"cat", "/proc/sys/net/ipv4/ip_forward"});

  ASSERT_TRUE(in_node) << in_node.message();
  EXPECT_EQ(in_node->out, "1\n1\n");
  ASSERT_TRUE(in_pod) << in_pod.message();
  EXPECT_EQ(in_pod->out, "0\n");
  EXPECT_EQ(readFile("/proc/sys/net/ipv4/ip_forward"), host_forwarding);
}

TEST_F(LabTest, DownRemovesEveryNetnsVethBridgeAndCgroupAndStopsItsProcesses) {
  ScopedLab lab = upOrThrow();
  LabState state = lab.state();
  for (const ObjectStatus& object : inspect(state))
    EXPECT_TRUE(object.exists) << object.owner << " " << object.kind << " " << object.name;
  auto in_pod = startInPod(state, "client", {"sleep", "30"});
  auto in_node = startInNode(state, "node-a", {"sleep", "30"});
  ASSERT_TRUE(in_pod) << in_pod.message();
  ASSERT_TRUE(in_node) << in_node.message();

  auto removed = lab.down();

  ASSERT_TRUE(removed) << removed.message();
  expectGone(state);
  EXPECT_TRUE(in_pod->wait(5s)) << "the pod's process outlived its lab";
  EXPECT_TRUE(in_node->wait(5s)) << "the node's process outlived its lab";
  // Idempotent: a second down, by state or by name, finds nothing to do.
  EXPECT_TRUE(down(state));
  EXPECT_TRUE(downByName(state_dir_.path(), state.name));
}

TEST_F(LabTest, DownCleansUpAfterUpCrashedHalfway) {
  for (size_t steps : {1u, 20u, 40u, 70u}) {
    SCOPED_TRACE("crashed after " + std::to_string(steps) + " steps");
    LabSpec spec = specFor(kTwoNodeMesh, state_dir_.path(), "crashed");
    auto half = up(spec, UpOptions{.crash_after_steps = steps});
    ASSERT_TRUE(half) << half.message();
    ScopedLab guard(*half);  // removes the rest even if an expectation below fails
    EXPECT_TRUE(std::filesystem::exists(half->state_path));
    EXPECT_TRUE(std::filesystem::exists(half->cgroup_root));
    if (steps >= 40) {
      EXPECT_TRUE(host::linkExists(half->bridge));
    }

    // As a new process would: from the state file alone.
    auto removed = downByName(state_dir_.path(), "crashed");

    ASSERT_TRUE(removed) << removed.message();
    expectGone(*half);
  }
}

TEST_F(LabTest, FailedUpNamesTheObjectAndCommandAndRemovesWhatItMade) {
  // Given a link in the way of the first node's veth (same run id, as a leftover would be).
  LabSpec spec = specFor(kTwoNodeMesh, state_dir_.path(), "blocked");
  spec.run_id = randomRunId();
  auto mount = findCgroup2Mount();
  ASSERT_TRUE(mount);
  auto planned = planLab(spec, *mount);
  ASSERT_TRUE(planned) << planned.message();
  const std::string& veth = planned->nodes[0].host_veth;
  auto blocker =
      runCommand({"ip", "link", "add", veth, "type", "veth", "peer", "name", veth + "x"});
  ASSERT_TRUE(blocker && blocker->ok()) << (blocker ? blocker->describe() : blocker.message());
  struct Remove {
    std::string link;
    ~Remove() { (void)runCommand({"ip", "link", "del", link}); }  // gone already when it passes
  } remove{veth};

  auto state = up(spec);

  ASSERT_FALSE(state);
  EXPECT_THAT(state.message(), HasSubstr("node node-a veth " + veth));
  EXPECT_THAT(state.message(), HasSubstr("`ip link add " + veth + " type veth"));
  EXPECT_THAT(state.message(), HasSubstr("exists"));
  EXPECT_THAT(state.message(), HasSubstr("removed again"));
  expectGone(*planned);
}

TEST_F(LabTest, TwoLabsCoexistAndComeDownSeparately) {
  ScopedLab first = upOrThrow("first");
  ScopedLab second = upOrThrow("second");
  EXPECT_NE(first->run_id, second->run_id);
  EXPECT_NE(first->bridge, second->bridge);
  EXPECT_NE(first->cgroup_root, second->cgroup_root);

  LabState first_state = first.state();
  ASSERT_TRUE(first.down());

  expectGone(first_state);
  for (const ObjectStatus& object : inspect(second.state()))
    EXPECT_TRUE(object.exists) << object.owner << " " << object.kind << " " << object.name;
  ChildProcess server = serveHttp(second.state(), "shop/remote-server", web_root_);
  EXPECT_EQ(httpStatus(second.state(), "shop/client", "198.18.2.10"), "200");
}

TEST_F(LabTest, RunInPodNamesAPodThatIsNotThere) {
  ScopedLab lab = upOrThrow();

  auto ran = runInPod(lab.state(), "shop/nobody", {"true"});

  ASSERT_FALSE(ran);
  EXPECT_THAT(ran.message(), HasSubstr("no pod \"shop/nobody\""));
}

}  // namespace
}  // namespace sluice::lab
