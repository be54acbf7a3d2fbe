// Istio's workload labels, derived from a pod (core/telemetry/workload_labels.h): ztunnel and
// the waypoint both report these, so Kiali sees one workload per Deployment.
#include "core/telemetry/workload_labels.h"

#include <gtest/gtest.h>

#include "core/config/objects.h"

namespace sluice::telemetry {
namespace {

config::Pod pod(std::string name, std::map<std::string, std::string> labels) {
  config::Pod out;
  out.meta.ns = "shop";
  out.meta.name = std::move(name);
  out.meta.labels = std::move(labels);
  return out;
}

TEST(WorkloadLabels, ADeploymentsPodIsReportedAsTheDeployment) {
  auto labels = workloadLabels(
      pod("reviews-v1-5d8f7c9b4-x2x7q", {{"pod-template-hash", "5d8f7c9b4"}, {"app", "reviews"}}),
      "spiffe://cluster.local/ns/shop/sa/reviews");
  EXPECT_EQ(labels.workload, "reviews-v1");
  EXPECT_EQ(labels.workload_namespace, "shop");
  EXPECT_EQ(labels.principal, "spiffe://cluster.local/ns/shop/sa/reviews");
  EXPECT_EQ(labels.cluster, "Kubernetes");
}

TEST(WorkloadLabels, APodOfNoDeploymentIsItself) {
  EXPECT_EQ(workloadLabels(pod("client", {})).workload, "client");
  // A hash that is not in the name changes nothing
  EXPECT_EQ(workloadLabels(pod("client", {{"pod-template-hash", "abc"}})).workload, "client");
}

TEST(WorkloadLabels, CanonicalNamesFollowIstiosLabelOrder) {
  auto labels = workloadLabels(
      pod("ratings-7c9b4-abcde",
          {{"app.kubernetes.io/name", "ratings"}, {"app", "old"}, {"version", "v2"}}));
  EXPECT_EQ(labels.app, "ratings");
  EXPECT_EQ(labels.version, "v2");
  EXPECT_EQ(labels.canonical_service, "ratings");
  EXPECT_EQ(labels.canonical_revision, "v2");
  auto named = workloadLabels(pod("x", {{"service.istio.io/canonical-name", "front"},
                                        {"service.istio.io/canonical-revision", "r7"},
                                        {"app", "web"}}));
  EXPECT_EQ(named.canonical_service, "front");
  EXPECT_EQ(named.canonical_revision, "r7");
  EXPECT_EQ(named.app, "web");
  // Without labels: the workload name, "latest", and unknown app/version; no principal unproven
  auto bare = workloadLabels(pod("batch", {}));
  EXPECT_EQ(bare.canonical_service, "batch");
  EXPECT_EQ(bare.canonical_revision, "latest");
  EXPECT_EQ(bare.app, kUnknown);
  EXPECT_EQ(bare.version, kUnknown);
  EXPECT_EQ(bare.principal, kUnknown);
}

}  // namespace
}  // namespace sluice::telemetry
