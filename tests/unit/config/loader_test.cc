// Loading files and directories: document shapes, duplicates, malformed input, reports.
#include "core/config/loader.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/unit/config/config_test_util.h"

namespace sluice::config {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::load;
using testing::onlyReport;
using testing::TempDir;
using Status = DocumentReport::Status;

std::vector<std::string> lines(const LoadResult& result) {
  std::vector<std::string> out;
  for (const auto& report : result.documents) out.push_back(formatReport(report));
  return out;
}

constexpr std::string_view kShopNamespace = R"(apiVersion: v1
kind: Namespace
metadata: {name: shop}
)";

constexpr std::string_view kWebPod = R"(apiVersion: v1
kind: Pod
metadata: {name: web, namespace: shop}
status: {phase: Running, podIP: 10.0.0.5}
)";

TEST(Loader, ReadsEveryDocumentOfAMultiDocumentFile) {
  auto result = load(R"(---
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
# a comment-only document is skipped
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: shop}
...
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
)");
  ASSERT_NE(result.snapshot, nullptr);
  EXPECT_THAT(lines(result), ElementsAre("ACCEPTED test.yaml:2 Namespace shop",
                                         "ACCEPTED test.yaml:8 Pod shop/web",
                                         "IGNORED test.yaml:13 Deployment shop/web (kind not "
                                         "used by Sluice)"));
  EXPECT_EQ(result.snapshot->namespaces().size(), 1u);
  EXPECT_EQ(result.snapshot->pods().size(), 1u);
}

TEST(Loader, ExpandsKubectlListWithALinePerItem) {
  auto result = load(R"(apiVersion: v1
kind: List
metadata: {resourceVersion: ""}
items:
- apiVersion: v1
  kind: Namespace
  metadata: {name: shop}
- apiVersion: v1
  kind: Pod
  metadata: {name: web, namespace: shop}
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: settings, namespace: shop}
)");
  ASSERT_NE(result.snapshot, nullptr);
  EXPECT_THAT(lines(result), ElementsAre("ACCEPTED test.yaml:5 Namespace shop",
                                         "ACCEPTED test.yaml:8 Pod shop/web",
                                         "IGNORED test.yaml:11 ConfigMap shop/settings (kind "
                                         "not used by Sluice)"));
}

TEST(Loader, ExpandsTypedListWhoseItemsHaveNoKind) {
  auto result = load(R"({"apiVersion": "v1", "kind": "PodList", "items": [
  {"metadata": {"name": "a", "namespace": "shop"}, "status": {"podIP": "10.0.0.1"}},
  {"metadata": {"name": "b", "namespace": "shop"}, "status": {"podIP": "10.0.0.2"}}]}
)");
  ASSERT_NE(result.snapshot, nullptr) << ::testing::PrintToString(lines(result));
  EXPECT_THAT(lines(result),
              ElementsAre("ACCEPTED test.yaml:2 Pod shop/a", "ACCEPTED test.yaml:3 Pod shop/b"));
}

TEST(Loader, RejectsBadItemOfAListAtItsOwnLine) {
  auto result = load(R"(apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Pod
  metadata: {name: good}
- apiVersion: v1
  kind: Pod
  metadata: {name: bad}
  status:
    podIP: 300.1.1.1
)");
  EXPECT_EQ(result.snapshot, nullptr);
  EXPECT_THAT(lines(result),
              ElementsAre("ACCEPTED test.yaml:4 Pod default/good",
                          "REJECTED test.yaml:11 Pod default/bad: status.podIP: must be an IPv4 "
                          "or IPv6 address, got \"300.1.1.1\""));
}

TEST(Loader, RejectsListItemsThatAreNotAList) {
  auto result = load(R"(apiVersion: v1
kind: List
items: {apiVersion: v1}
)");
  EXPECT_EQ(result.snapshot, nullptr);
  DocumentReport report = onlyReport(result);
  EXPECT_EQ(report.field, "items");
  EXPECT_EQ(report.line, 3);
}

TEST(Loader, RejectsNestedList) {
  auto result = load(R"(apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: List
  items: []
)");
  EXPECT_EQ(result.snapshot, nullptr);
  EXPECT_THAT(onlyReport(result).reason, HasSubstr("a List cannot be nested"));
}

TEST(Loader, RejectsMalformedYamlWithItsLine) {
  auto result = load(R"(apiVersion: v1
kind: Pod
metadata:
  name: web
  labels: {app: web
spec: {}
)");
  EXPECT_EQ(result.snapshot, nullptr);
  DocumentReport report = onlyReport(result);
  EXPECT_EQ(report.status, Status::kRejected);
  EXPECT_EQ(report.file, "test.yaml");
  EXPECT_EQ(report.line, 6);
  EXPECT_THAT(report.reason, HasSubstr("malformed YAML"));
  EXPECT_THAT(formatReport(report), ::testing::StartsWith("REJECTED test.yaml:6: malformed YAML"));
}

TEST(Loader, RejectsStrayCommaInsteadOfLoopingForever) {
  // yaml-cpp 0.7's LoadAll never returns on these (found by fuzzing).
  for (std::string_view input :
       {std::string_view(","), std::string_view("apiVersion: v1\n---\n,\n"),
        std::string_view(R"({"apiVersion":"v1",K""podI"P:"192.1":"b"},"status":{"p:.1"}]}}]})")}) {
    auto result = load(input);
    EXPECT_EQ(result.snapshot, nullptr) << input;
    DocumentReport report = onlyReport(result);
    EXPECT_EQ(report.status, Status::kRejected) << input;
    EXPECT_THAT(report.reason, HasSubstr("malformed YAML")) << input;
  }
  auto result = load("apiVersion: v1\n---\n,\n");
  EXPECT_EQ(formatReport(onlyReport(result)),
            "REJECTED test.yaml:3: malformed YAML: unexpected \",\"");
}

TEST(Loader, RejectsDeeplyNestedInputWithoutExhaustingTheStack) {
  std::string nested = "apiVersion: v1\nkind: Pod\nmetadata: " + std::string(100000, '[');
  auto result = load(nested);
  EXPECT_EQ(result.snapshot, nullptr);
  EXPECT_EQ(onlyReport(result).reason, "malformed YAML: nested too deeply");
}

TEST(Loader, RejectsDuplicateObjectNamingBothPlaces) {
  TempDir dir;
  dir.write("a.yaml", kWebPod);
  dir.write("b.yaml", std::string(kShopNamespace) + "---\n" + std::string(kWebPod));
  auto result = loadPaths({dir.path()});
  EXPECT_EQ(result.snapshot, nullptr);
  ASSERT_EQ(result.documents.size(), 3u);
  const DocumentReport& duplicate = result.documents[2];
  EXPECT_EQ(duplicate.status, Status::kRejected);
  EXPECT_EQ(duplicate.file, (dir.path() / "b.yaml").string());
  EXPECT_EQ(duplicate.line, 5);
  EXPECT_EQ(duplicate.reason,
            "duplicate Pod shop/web, first defined at " + (dir.path() / "a.yaml").string() + ":1");
}

TEST(Loader, TreatsPeerAuthenticationVersionsAsOneKindForDuplicates) {
  auto result = load(R"(apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: shop}
---
apiVersion: security.istio.io/v1beta1
kind: PeerAuthentication
metadata: {name: default, namespace: shop}
)");
  EXPECT_EQ(result.snapshot, nullptr);
  EXPECT_EQ(result.documents[1].reason,
            "duplicate PeerAuthentication shop/default, first defined at test.yaml:1");
}

TEST(Loader, AllowsSameNameInOtherNamespaceOrOfOtherKind) {
  auto result = load(R"(apiVersion: v1
kind: Pod
metadata: {name: web, namespace: shop}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: blog}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
)");
  EXPECT_NE(result.snapshot, nullptr) << ::testing::PrintToString(lines(result));
}

TEST(Loader, OneRejectionWithholdsTheSnapshotButReportsEveryDocument) {
  auto result = load(R"(apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: v1
kind: Namespace
metadata: {name: Bad_Name}
---
apiVersion: v1
kind: Namespace
metadata: {name: blog}
)");
  EXPECT_EQ(result.snapshot, nullptr);
  EXPECT_EQ(result.count(Status::kAccepted), 2u);
  EXPECT_EQ(result.count(Status::kRejected), 1u);
}

TEST(Loader, OnlyIgnoredDocumentsStillBuildAnEmptySnapshot) {
  auto result = load("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n");
  ASSERT_NE(result.snapshot, nullptr);
  EXPECT_TRUE(result.snapshot->pods().empty());
}

TEST(Loader, EmptyInputBuildsAnEmptySnapshot) {
  auto result = load("");
  ASSERT_NE(result.snapshot, nullptr);
  EXPECT_TRUE(result.documents.empty());
}

TEST(Loader, ReadsYamlYmlAndJsonFilesOfADirectoryInNameOrder) {
  TempDir dir;
  dir.write("b.yml", kWebPod);
  dir.write("a.yaml", kShopNamespace);
  dir.write(
      "c.json",
      R"({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "shop"}})");
  dir.write("README.md", "not: [configuration");
  dir.write(".hidden.yaml", "not: [configuration");
  std::filesystem::create_directory(dir.path() / "nested");
  dir.write("nested/d.yaml", kWebPod);  // subdirectories are not read
  auto result = loadPaths({dir.path()});
  ASSERT_NE(result.snapshot, nullptr) << ::testing::PrintToString(lines(result));
  ASSERT_EQ(result.documents.size(), 3u);
  EXPECT_EQ(result.documents[0].file, (dir.path() / "a.yaml").string());
  EXPECT_EQ(result.documents[1].file, (dir.path() / "b.yml").string());
  EXPECT_EQ(result.documents[2].file, (dir.path() / "c.json").string());
}

TEST(Loader, ReadsAnExplicitlyNamedFileWhateverItsExtensionAndOnlyOnce) {
  TempDir dir;
  auto file = dir.write("pod.txt", kWebPod);
  auto yaml = dir.write("ns.yaml", kShopNamespace);
  auto result = loadPaths({file, dir.path(), yaml});
  ASSERT_NE(result.snapshot, nullptr) << ::testing::PrintToString(lines(result));
  EXPECT_EQ(result.documents.size(), 2u);
}

TEST(Loader, RejectsMissingPath) {
  TempDir dir;
  auto missing = dir.path() / "missing.yaml";
  auto result = loadPaths({missing});
  EXPECT_EQ(result.snapshot, nullptr);
  DocumentReport report = onlyReport(result);
  EXPECT_EQ(report.status, Status::kRejected);
  EXPECT_EQ(report.line, 0);
  EXPECT_EQ(formatReport(report),
            "REJECTED " + missing.string() + ": cannot read: No such file or directory");
}

TEST(ReportFormat, RejectedLineNamesFileLineKindObjectAndField) {
  auto result = load(R"(apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  ports:
  - port: 0
)");
  EXPECT_EQ(formatReport(onlyReport(result)),
            "REJECTED test.yaml:6 Service shop/web: spec.ports[0].port: must be a port number "
            "1..65535, got \"0\"");
}

TEST(ReportFormat, EscapesControlCharactersFromInput) {
  DocumentReport report;
  report.file = "f.yaml";
  report.line = 3;
  report.kind = "Pod";
  report.name = "evil\nACCEPTED";
  report.status = Status::kRejected;
  report.reason = "metadata.name: bad";
  EXPECT_EQ(formatReport(report), "REJECTED f.yaml:3 Pod evil\\x0aACCEPTED: metadata.name: bad");
}

}  // namespace
}  // namespace sluice::config
