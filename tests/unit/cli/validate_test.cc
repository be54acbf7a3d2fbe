// sluicectl's command line: dispatch, help, and `validate` output and exit codes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "cli/command.h"

namespace sluice::cli {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::StartsWith;

// A directory unique to this run, removed with everything in it when the test ends.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "sluicectl-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  std::string write(const std::string& name, std::string_view content) const {
    std::ofstream(path_ / name, std::ios::binary) << content;
    return (path_ / name).string();
  }
  std::string path() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

struct Outcome {
  int code;
  std::string out;
  std::string err;

  std::vector<std::string> outLines() const {
    std::vector<std::string> lines;
    std::istringstream in(out);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
  }
};

Outcome sluicectl(std::vector<std::string> args) {
  std::ostringstream out, err;
  int code = run(args, Io{out, err});
  return Outcome{code, out.str(), err.str()};
}

constexpr std::string_view kGood = R"(apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: shop}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
)";

constexpr std::string_view kBad = R"(apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: strict, namespace: shop}
spec:
  mtls:
    mode: STRICTER
)";

TEST(Validate, PrintsOneLinePerDocumentAndSucceedsWhenNothingIsRejected) {
  TempDir dir;
  std::string file = dir.write("good.yaml", kGood);
  Outcome result = sluicectl({"validate", file});
  EXPECT_EQ(result.code, kExitOk);
  EXPECT_THAT(
      result.outLines(),
      ElementsAre("ACCEPTED " + file + ":1 Namespace shop", "ACCEPTED " + file + ":5 Pod shop/web",
                  "IGNORED " + file + ":9 Deployment shop/web (kind not used by Sluice)",
                  "3 document(s): 2 accepted, 1 ignored, 0 rejected"));
  EXPECT_THAT(result.err, IsEmpty());
}

TEST(Validate, NamesFileLineAndFieldOfARejectionAndFails) {
  TempDir dir;
  dir.write("a-good.yaml", kGood);
  std::string bad = dir.write("b-bad.yaml", kBad);
  Outcome result = sluicectl({"validate", dir.path()});
  EXPECT_EQ(result.code, kExitFailure);
  EXPECT_THAT(result.out,
              HasSubstr("REJECTED " + bad +
                        ":6 PeerAuthentication shop/strict: spec.mtls.mode: must be one of UNSET, "
                        "DISABLE, PERMISSIVE, STRICT, got \"STRICTER\"\n"));
  EXPECT_THAT(result.out, HasSubstr("4 document(s): 2 accepted, 1 ignored, 1 rejected\n"));
}

// One of each kind the waypoint reads, in the API versions users write.
constexpr std::string_view kWaypointKinds = R"(apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata: {name: api, namespace: shop}
spec:
  hosts: [api]
  http: [{route: [{destination: {host: api}}], timeout: 5s}]
---
apiVersion: networking.istio.io/v1alpha3
kind: DestinationRule
metadata: {name: api, namespace: shop}
spec: {host: api, subsets: [{name: v1, labels: {version: v1}}]}
---
apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata: {name: deny, namespace: shop}
spec: {action: DENY, rules: [{}]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: waypoint, namespace: shop}
spec:
  gatewayClassName: sluice-waypoint
  listeners: [{name: mesh, port: 15008, protocol: HBONE}]
---
apiVersion: gateway.networking.k8s.io/v1beta1
kind: HTTPRoute
metadata: {name: api, namespace: shop}
spec:
  parentRefs: [{name: waypoint}]
  rules: [{backendRefs: [{name: api, port: 80}]}]
)";

TEST(Validate, AcceptsTheKindsTheWaypointReads) {
  TempDir dir;
  std::string file = dir.write("waypoint.yaml", kWaypointKinds);
  Outcome result = sluicectl({"validate", file});
  EXPECT_EQ(result.code, kExitOk) << result.out;
  EXPECT_THAT(result.outLines(),
              ElementsAre("ACCEPTED " + file + ":1 VirtualService shop/api",
                          "ACCEPTED " + file + ":8 DestinationRule shop/api",
                          "ACCEPTED " + file + ":13 AuthorizationPolicy shop/deny",
                          "ACCEPTED " + file + ":18 Gateway shop/waypoint",
                          "ACCEPTED " + file + ":25 HTTPRoute shop/api",
                          "5 document(s): 5 accepted, 0 ignored, 0 rejected"));
}

TEST(Validate, NamesTheFieldOfABadRetryCondition) {
  TempDir dir;
  std::string file = dir.write("bad.yaml", R"(apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: api, namespace: shop}
spec:
  hosts: [api]
  http:
  - route: [{destination: {host: api}}]
    retries: {attempts: 3, retryOn: 5xx-ish}
)");
  Outcome result = sluicectl({"validate", file});
  EXPECT_EQ(result.code, kExitFailure);
  EXPECT_THAT(result.out, HasSubstr("REJECTED " + file +
                                    ":8 VirtualService shop/api: spec.http[0].retries.retryOn: "
                                    "unknown retry condition \"5xx-ish\""));
}

TEST(Validate, QuietPrintsOnlyRejectionsAndTheSummary) {
  TempDir dir;
  dir.write("a-good.yaml", kGood);
  std::string bad = dir.write("b-bad.yaml", kBad);
  Outcome result = sluicectl({"validate", "--quiet", dir.path()});
  EXPECT_EQ(result.code, kExitFailure);
  ASSERT_EQ(result.outLines().size(), 2u) << result.out;
  EXPECT_THAT(result.outLines()[0], StartsWith("REJECTED " + bad + ":6"));
}

TEST(Validate, ReportsAMissingPathAsARejection) {
  TempDir dir;
  Outcome result = sluicectl({"validate", dir.path() + "/nope.yaml"});
  EXPECT_EQ(result.code, kExitFailure);
  EXPECT_THAT(result.out, HasSubstr("REJECTED " + dir.path() + "/nope.yaml: cannot read"));
}

TEST(Validate, WithoutPathsIsAUsageError) {
  Outcome result = sluicectl({"validate"});
  EXPECT_EQ(result.code, kExitUsage);
  EXPECT_THAT(result.err, HasSubstr("no PATH given"));
  EXPECT_THAT(result.err, HasSubstr("usage: sluicectl validate"));
  EXPECT_THAT(result.out, IsEmpty());
}

TEST(Validate, UnknownOptionIsAUsageError) {
  Outcome result = sluicectl({"validate", "--strict", "x.yaml"});
  EXPECT_EQ(result.code, kExitUsage);
  EXPECT_THAT(result.err, HasSubstr("unknown option \"--strict\""));
}

TEST(Validate, TakesPathsThatLookLikeOptionsAfterDoubleDash) {
  TempDir dir;
  dir.write("-odd.yaml", kGood);
  std::filesystem::path previous = std::filesystem::current_path();
  std::filesystem::current_path(dir.path());
  Outcome result = sluicectl({"validate", "--", "-odd.yaml"});
  std::filesystem::current_path(previous);
  EXPECT_EQ(result.code, kExitOk) << result.out << result.err;
  EXPECT_THAT(result.out, HasSubstr("ACCEPTED -odd.yaml:1 Namespace shop"));
}

TEST(Validate, HelpPrintsUsageAndSucceeds) {
  Outcome result = sluicectl({"validate", "--help"});
  EXPECT_EQ(result.code, kExitOk);
  EXPECT_THAT(result.out, StartsWith("usage: sluicectl validate"));
  EXPECT_THAT(result.out, HasSubstr("exit status"));
}

TEST(Sluicectl, HelpListsEveryCommand) {
  Outcome result = sluicectl({"--help"});
  EXPECT_EQ(result.code, kExitOk);
  EXPECT_THAT(result.out, StartsWith("usage: sluicectl COMMAND"));
  for (const Command& command : commands()) EXPECT_THAT(result.out, HasSubstr(command.name));
}

TEST(Sluicectl, HelpCommandShowsTheCommandsHelp) {
  Outcome result = sluicectl({"help", "validate"});
  EXPECT_EQ(result.code, kExitOk);
  EXPECT_THAT(result.out, StartsWith("usage: sluicectl validate"));
}

TEST(Sluicectl, NoArgumentsIsAUsageError) {
  Outcome result = sluicectl({});
  EXPECT_EQ(result.code, kExitUsage);
  EXPECT_THAT(result.err, StartsWith("usage: sluicectl COMMAND"));
}

TEST(Sluicectl, UnknownCommandIsAUsageError) {
  Outcome result = sluicectl({"frobnicate"});
  EXPECT_EQ(result.code, kExitUsage);
  EXPECT_THAT(result.err, HasSubstr("unknown command \"frobnicate\""));
}

}  // namespace
}  // namespace sluice::cli
