// Planning a lab from YAML: names, addresses and refusals, without touching the kernel.
#include "lab/plan.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <set>

#include "lab/lab.h"
#include "tests/unit/lab/lab_test_util.h"

namespace sluice::lab {
namespace {

using ::testing::HasSubstr;
using testing::kTwoNodeMesh;
using ::testing::SizeIs;
using testing::specFor;

boost::asio::ip::address ip(const char* text) { return boost::asio::ip::make_address(text); }

Result<LabState> plan(std::string_view yaml, std::string run_id = "abc12") {
  LabSpec spec = specFor(yaml, "/run/sluice-test");
  spec.run_id = std::move(run_id);
  return planLab(spec, "/sys/fs/cgroup");
}

std::string pod(std::string_view name, std::string_view node, std::string_view ips,
                std::string_view extra = "") {
  return "---\napiVersion: v1\nkind: Pod\nmetadata: {name: " + std::string(name) +
         ", namespace: shop}\nspec: {nodeName: " + std::string(node) + std::string(extra) +
         "}\nstatus: {phase: Running, podIPs: [" + std::string(ips) + "]}\n";
}

TEST(LabPlan, NamesEveryObjectWithTheRunPrefixWithinKernelLimits) {
  auto state = plan(kTwoNodeMesh);
  ASSERT_TRUE(state) << state.message();

  EXPECT_EQ(state->bridge, "sluiceabc12-br");
  EXPECT_LE(state->bridge.size(), 15u);
  EXPECT_EQ(state->cgroup_root, "/sys/fs/cgroup/sluice-abc12");
  EXPECT_EQ(state->state_path, "/run/sluice-test/lab-test.json");
  ASSERT_THAT(state->nodes, SizeIs(2));
  EXPECT_EQ(state->nodes[0].name, "node-a");
  EXPECT_EQ(state->nodes[0].netns, "sluice-abc12-node-a");
  EXPECT_EQ(state->nodes[0].netns_path, "/run/netns/sluice-abc12-node-a");
  EXPECT_EQ(state->nodes[0].cgroup, "/sys/fs/cgroup/sluice-abc12/node-a");
  ASSERT_THAT(state->pods, SizeIs(3));
  const PodHandle& client = *state->findPod("shop/client").value();
  EXPECT_EQ(client.netns, "sluice-abc12-shop-client");
  EXPECT_EQ(client.cgroup, "/sys/fs/cgroup/sluice-abc12/node-a/shop_client");
  for (const NodeHandle& node : state->nodes) {
    EXPECT_LE(node.host_veth.size(), 15u) << node.host_veth;
    EXPECT_EQ(node.host_veth.rfind("sluiceabc12", 0), 0u) << node.host_veth;
  }
  for (const PodHandle& p : state->pods) {
    EXPECT_LE(p.node_veth.size(), 15u) << p.node_veth;
    EXPECT_EQ(p.netns.rfind("sluice-abc12-", 0), 0u) << p.netns;
  }
}

TEST(LabPlan, GivesNodesTheFirstFabricAddressesAfterTheBridge) {
  auto state = plan(kTwoNodeMesh);
  ASSERT_TRUE(state) << state.message();

  EXPECT_EQ(state->bridge_ipv4, ip("198.18.0.1"));
  EXPECT_EQ(state->bridge_ipv6, ip("fd00:5::1"));
  EXPECT_EQ(state->nodes[0].ipv4, ip("198.18.0.2"));
  EXPECT_EQ(state->nodes[0].ipv6, ip("fd00:5::2"));
  EXPECT_EQ(state->nodes[1].ipv4, ip("198.18.0.3"));
  EXPECT_EQ(state->nodes[1].ipv6, ip("fd00:5::3"));
  const PodHandle& remote = *state->findPod("remote-server").value();
  EXPECT_EQ(remote.node, "node-b");
  EXPECT_EQ(*remote.ipv4(), ip("198.18.2.10"));
  EXPECT_EQ(*remote.ipv6(), ip("fd00:5::2:10"));
}

TEST(LabPlan, RefusesPodAddressOutsideTheLabNetworks) {
  for (const char* address : {"10.0.0.5", "192.168.1.5", "198.20.0.1", "\"fd00:6::5\""}) {
    auto state = plan(pod("web", "node-a", std::string("{ip: ") + address + "}"));
    ASSERT_FALSE(state) << address;
    EXPECT_THAT(state.message(), HasSubstr("pod shop/web"));
    EXPECT_THAT(state.message(), HasSubstr("198.18.0.0/15 and fd00:5::/64"));
  }
}

TEST(LabPlan, RefusesPodAddressTheFabricUses) {
  auto on_bridge = plan(pod("web", "node-a", "{ip: 198.18.0.1}"));
  ASSERT_FALSE(on_bridge);
  EXPECT_THAT(on_bridge.message(), HasSubstr("the host's bridge address"));

  auto on_node = plan(pod("web", "node-a", "{ip: 198.18.0.2}"));
  ASSERT_FALSE(on_node);
  EXPECT_THAT(on_node.message(), HasSubstr("node node-a's fabric address"));

  auto twice =
      plan(pod("a", "node-a", "{ip: 198.18.1.1}") + pod("b", "node-b", "{ip: 198.18.1.1}"));
  ASSERT_FALSE(twice);
  EXPECT_THAT(twice.message(), HasSubstr("which is pod shop/a"));
}

TEST(LabPlan, RefusesPodWithoutNodeOrAddress) {
  auto no_node = plan(
      "apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: shop}\n"
      "status: {podIP: 198.18.1.1}\n");
  ASSERT_FALSE(no_node);
  EXPECT_THAT(no_node.message(), HasSubstr("pod shop/web has no spec.nodeName"));

  auto no_ip = plan(
      "apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: shop}\n"
      "spec: {nodeName: node-a}\n");
  ASSERT_FALSE(no_ip);
  EXPECT_THAT(no_ip.message(), HasSubstr("pod shop/web has no status.podIP"));
}

TEST(LabPlan, LeavesOutHostNetworkPods) {
  auto state = plan(pod("web", "node-a", "{ip: 198.18.1.1}") +
                    pod("daemon", "node-b", "{ip: 10.1.2.3}", ", hostNetwork: true"));
  ASSERT_TRUE(state) << state.message();
  ASSERT_THAT(state->pods, SizeIs(1));
  EXPECT_EQ(state->pods[0].name, "web");
  EXPECT_THAT(state->nodes, SizeIs(1));
}

TEST(LabPlan, ShortensLongNamesAndKeepsThemDistinct) {
  std::string long_a(60, 'a');
  std::string long_b = long_a + "b";
  auto in = [](std::string_view ns, std::string_view name, std::string_view address) {
    return "---\napiVersion: v1\nkind: Pod\nmetadata: {name: " + std::string(name) +
           ", namespace: " + std::string(ns) + "}\nspec: {nodeName: node-a}\n" +
           "status: {podIP: " + std::string(address) + "}\n";
  };
  // Given pods whose plain names would be too long, or equal: "x-y"/"z" and "x"/"y-z", and
  // "node"/"a" against node "node-a".
  auto state = plan(pod(long_a, "node-a", "{ip: 198.18.1.1}") +
                    pod(long_b, "node-a", "{ip: 198.18.1.2}") + in("x-y", "z", "198.18.1.3") +
                    in("x", "y-z", "198.18.1.4") + in("node", "a", "198.18.1.5"));
  ASSERT_TRUE(state) << state.message();
  std::set<std::string> names;
  for (const PodHandle& p : state->pods) {
    EXPECT_LE(p.netns.size(), 64u) << p.netns;
    names.insert(p.netns);
  }
  for (const NodeHandle& n : state->nodes) names.insert(n.netns);
  EXPECT_THAT(names, SizeIs(state->pods.size() + state->nodes.size()));
}

TEST(LabPlan, FitNameHashesOnlyWhenTooLong) {
  EXPECT_EQ(fitName("short", 10), "short");
  std::string fitted = fitName("a-very-long-name-indeed", 16);
  EXPECT_LE(fitted.size(), 16u);
  EXPECT_EQ(fitted.rfind("a-very", 0), 0u);
  EXPECT_NE(fitted, fitName("a-very-long-name-indeeD", 16));
}

TEST(LabPlan, RefusesBadLabNames) {
  EXPECT_TRUE(checkLabName("ci-1.x_y"));
  for (const char* name : {"", "-x", "../etc", "a/b", "UPPER", "a b"})
    EXPECT_FALSE(checkLabName(name)) << name;
}

TEST(LabPlan, RunIdsAreFreshAndShort) {
  std::set<std::string> ids;
  for (int i = 0; i < 20; ++i) ids.insert(randomRunId());
  EXPECT_GE(ids.size(), 19u);
  for (const std::string& id : ids) EXPECT_EQ(id.size(), kRunIdLength);
}

TEST(LabState, SurvivesTheStateFile) {
  testing::TempDir dir;
  auto state = plan(kTwoNodeMesh);
  ASSERT_TRUE(state) << state.message();
  state->state_path = dir.path() / "sub" / "lab-test.json";

  ASSERT_TRUE(state->save());
  auto loaded = LabState::load(state->state_path);

  ASSERT_TRUE(loaded) << loaded.message();
  EXPECT_EQ(loaded->toJson(), state->toJson());
  EXPECT_EQ(loaded->state_path, state->state_path);
  EXPECT_EQ(loaded->pods[2].ips, state->pods[2].ips);
}

TEST(LabState, KeepsTheDataPlaneProcessesInTheStateFile) {
  testing::TempDir dir;
  auto state = plan(kTwoNodeMesh);
  ASSERT_TRUE(state) << state.message();
  state->state_path = dir.path() / "lab-test.json";
  state->run_dir = dir.path() / "lab-test.d";
  state->bpffs = state->run_dir / "bpf";
  ProcessHandle web;
  web.owner = "shop/remote-server";
  web.role = "web";
  web.argv = {"python3", "-m", "http.server", "8080"};
  web.environment = {"POD_NAME=remote-server"};
  web.log = state->run_dir / "web.log";
  web.pid = 4242;
  state->processes.push_back(web);

  ASSERT_TRUE(state->save());
  auto loaded = LabState::load(state->state_path);

  ASSERT_TRUE(loaded) << loaded.message();
  EXPECT_EQ(loaded->toJson(), state->toJson());
  ProcessHandle* found = loaded->process("shop/remote-server", "web");
  ASSERT_NE(found, nullptr);
  EXPECT_EQ(found->argv, web.argv);
  EXPECT_EQ(found->pid, 4242);
  EXPECT_FALSE(found->on_node);
  EXPECT_EQ(found->describe(), "pod shop/remote-server web");
  EXPECT_EQ(loaded->process("shop/remote-server", "agent"), nullptr);
}

TEST(LabState, LoadsAStateFileWrittenBeforeTheDataPlaneExisted) {
  auto state = plan(kTwoNodeMesh);
  ASSERT_TRUE(state) << state.message();
  std::string json = state->toJson();
  for (std::string_view key : {R"(,"runDir":"")", R"(,"bpffs":"")", R"(,"processes":[])"}) {
    size_t at = json.find(key);
    ASSERT_NE(at, std::string::npos) << key;
    json.erase(at, key.size());
  }

  auto loaded = LabState::fromJson(json, "old.json");

  ASSERT_TRUE(loaded) << loaded.message();
  EXPECT_TRUE(loaded->run_dir.empty());
  EXPECT_TRUE(loaded->processes.empty());
}

TEST(LabState, RejectsDamagedStateFileNamingTheField) {
  auto state = LabState::fromJson(R"({"kind": "SluiceLab", "name": "x", "runId": 5})", "f.json");
  ASSERT_FALSE(state);
  EXPECT_THAT(state.message(), HasSubstr("f.json:.runId is not a string"));
  EXPECT_FALSE(LabState::fromJson("{", "f.json"));
  EXPECT_THAT(LabState::fromJson(R"({"kind": "Pod"})", "f.json").message(),
              HasSubstr("not a lab state file"));
}

TEST(LabHost, FindsTheCgroup2MountOnHybridAndUnifiedHosts) {
  auto hybrid = findCgroup2Mount(
      "tmpfs /sys/fs/cgroup tmpfs rw 0 0\n"
      "cgroup /sys/fs/cgroup/cpu cgroup rw,cpu 0 0\n"
      "cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0\n");
  ASSERT_TRUE(hybrid) << hybrid.message();
  EXPECT_EQ(*hybrid, "/sys/fs/cgroup/unified");

  auto escaped = findCgroup2Mount("none /mnt/my\\040cgroups cgroup2 rw 0 0\n");
  ASSERT_TRUE(escaped);
  EXPECT_EQ(*escaped, "/mnt/my cgroups");

  auto none = findCgroup2Mount("proc /proc proc rw 0 0\n");
  ASSERT_FALSE(none);
  EXPECT_THAT(none.message(), HasSubstr("cgroup v2"));
}

TEST(LabUp, RefusesASecondLabOfTheSameName) {
  testing::TempDir dir;
  LabSpec spec = specFor(kTwoNodeMesh, dir.path(), "busy");
  std::ofstream(statePath(dir.path(), "busy")) << "{}";

  auto state = up(spec);

  ASSERT_FALSE(state);
  EXPECT_THAT(state.message(), HasSubstr("already up"));
  EXPECT_THAT(state.message(), HasSubstr("sluicectl lab down --name busy"));
}

TEST(LabDown, IsANoOpForALabThatIsNotThere) {
  testing::TempDir dir;
  EXPECT_TRUE(downByName(dir.path(), "absent"));
}

}  // namespace
}  // namespace sluice::lab
