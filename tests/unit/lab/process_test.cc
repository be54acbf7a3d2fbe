// Running programs without a shell: output, exit codes, deadlines, and failures that name
// the step (cgroup, netns, exec) that went wrong.
#include "lab/process.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <fstream>

#include "tests/unit/lab/lab_test_util.h"

namespace sluice::lab {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

TEST(LabProcess, CapturesOutputAndExitCode) {
  auto ran = runCommand({"sh", "-c", "echo out; echo err >&2; exit 3"});

  ASSERT_TRUE(ran) << ran.message();
  EXPECT_EQ(ran->exit_code, 3);
  EXPECT_EQ(ran->out, "out\n");
  EXPECT_EQ(ran->err, "err\n");
  EXPECT_FALSE(ran->ok());
  EXPECT_EQ(ran->describe(), "exited 3: err");
}

TEST(LabProcess, KillsACommandPastItsDeadline) {
  auto ran = runCommand({"sleep", "30"}, {}, 100ms);

  ASSERT_TRUE(ran) << ran.message();
  EXPECT_TRUE(ran->timed_out);
  EXPECT_FALSE(ran->ok());
}

TEST(LabProcess, NamesAProgramThatIsNotThere) {
  auto ran = runCommand({"sluice-no-such-program"});

  ASSERT_FALSE(ran);
  EXPECT_THAT(ran.message(), HasSubstr("sluice-no-such-program"));
  EXPECT_THAT(ran.message(), HasSubstr("not found"));
}

TEST(LabProcess, NamesTheNetnsItCouldNotEnter) {
  auto started = ChildProcess::start({"true"}, Placement{{}, "/run/netns/sluice-no-such-netns"});

  ASSERT_FALSE(started);
  EXPECT_THAT(started.message(), HasSubstr("/run/netns/sluice-no-such-netns"));
}

TEST(LabProcess, NamesTheCgroupItCouldNotJoin) {
  testing::TempDir dir;  // a plain directory: its cgroup.procs does not exist
  auto ran = runCommand({"true"}, Placement{dir.path(), {}});

  ASSERT_FALSE(ran);
  EXPECT_THAT(ran.message(), HasSubstr("cgroup " + dir.path().string()));
}

TEST(LabProcess, StartedChildIsKilledWhenItsHandleIsDropped) {
  pid_t pid;
  {
    auto child = ChildProcess::start({"sleep", "30"});
    ASSERT_TRUE(child) << child.message();
    pid = child->pid();
    EXPECT_EQ(::kill(pid, 0), 0);
  }
  EXPECT_NE(::kill(pid, 0), 0);  // reaped, so the pid is gone
}

TEST(LabProcess, WaitReportsTheExitCode) {
  auto child = ChildProcess::start({"sh", "-c", "exit 7"});
  ASSERT_TRUE(child) << child.message();

  auto code = child->wait(5s);

  ASSERT_TRUE(code) << code.message();
  EXPECT_EQ(*code, 7);
  EXPECT_FALSE(child->running());
}

TEST(LabProcess, WaitingForAListenerFailsWhenTheServerExits) {
  auto child = ChildProcess::start({"true"});
  ASSERT_TRUE(child) << child.message();

  auto listening = waitForListener(child->pid(), 1, 5s);

  ASSERT_FALSE(listening);
  EXPECT_THAT(listening.message(), HasSubstr("exited before listening"));
}

TEST(LabProcess, ChildSeesTheExtraEnvironment) {
  testing::TempDir dir;
  StartOptions options;
  options.output = dir.path() / "out";
  options.environment = {"POD_NAME=web-1", "HOME=/pod-home"};
  auto child = ChildProcess::start({"sh", "-c", "echo $POD_NAME $HOME"}, {}, options);
  ASSERT_TRUE(child) << child.message();

  ASSERT_TRUE(child->wait(5s));

  std::ifstream out(options.output);
  std::string line;
  std::getline(out, line);
  EXPECT_EQ(line, "web-1 /pod-home");  // added, and the caller's HOME overridden
}

TEST(LabProcess, DetachedChildOutlivesItsHandleAndStopsOnRequest) {
  pid_t pid;
  {
    StartOptions options;
    options.new_session = true;
    auto child = ChildProcess::start({"sleep", "30"}, {}, options);
    ASSERT_TRUE(child) << child.message();
    pid = child->detach();
    EXPECT_FALSE(child->running());
  }
  EXPECT_TRUE(processAlive(pid));
  EXPECT_EQ(::getsid(pid), pid);  // a session of its own

  ASSERT_TRUE(stopProcess(pid, SIGTERM, 5s));

  EXPECT_FALSE(processAlive(pid));
  EXPECT_TRUE(stopProcess(pid, SIGTERM, 5s));  // already gone: nothing to do
  ::waitpid(pid, nullptr, 0);                  // our child: reap the zombie
}

TEST(LabProcess, QuotesCommandsForMessages) {
  EXPECT_EQ(quoteCommand({"ip", "link", "add", "a b", ""}), "ip link add 'a b' ''");
}

}  // namespace
}  // namespace sluice::lab
