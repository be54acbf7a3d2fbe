// Checks that the guest tests/vm/run.sh boots is a machine the BPF suite can run on: the kernel
// asked for, a working bpf() syscall with BTF, cgroup v2, bpffs, loopback and veth/bridge links.
// Meant to run only inside that VM (it fails elsewhere, on purpose: it checks the harness).
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/bpf.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

namespace sluice::vm {
namespace {

constexpr long kBpfFsMagic = 0xcafe4a11;

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }

 private:
  int fd_;
};

std::string errnoText() { return std::strerror(errno); }

std::string env(const char* name) {
  const char* value = std::getenv(name);
  return value ? value : "";
}

// Names unique to this run, short enough for a 15-character interface name.
std::string uniqueName(const std::string& stem) { return stem + std::to_string(getpid() % 100000); }

int bpf(bpf_cmd cmd, bpf_attr& attr) {
  return static_cast<int>(syscall(__NR_bpf, cmd, &attr, sizeof(attr)));
}

int createArrayMap() {
  bpf_attr attr{};
  attr.map_type = BPF_MAP_TYPE_ARRAY;
  attr.key_size = sizeof(std::uint32_t);
  attr.value_size = sizeof(std::uint64_t);
  attr.max_entries = 1;
  return bpf(BPF_MAP_CREATE, attr);
}

int run(const std::string& command) { return std::system((command + " 2>&1").c_str()); }

bool exists(const std::string& path) { return access(path.c_str(), F_OK) == 0; }

TEST(VmSelftest, RunsTheRequestedKernelSeries) {
  // Given run.sh exported what it booted
  ASSERT_EQ(env("SLUICE_VM"), "1") << "run me through tests/vm/run.sh, not on the host";
  utsname name{};
  ASSERT_EQ(uname(&name), 0);
  std::string release = name.release;

  // Then the running kernel is that one, and of the series asked for
  EXPECT_EQ(release, env("SLUICE_VM_RELEASE"));
  std::string series = env("SLUICE_VM_SERIES");
  if (!series.empty()) {
    EXPECT_EQ(release.rfind(series + ".", 0), 0u) << release << " is not Linux " << series;
  }
}

TEST(VmSelftest, BpfSyscallCreatesAndUpdatesAnArrayMap) {
  // Given an array map
  Fd map(createArrayMap());
  ASSERT_TRUE(map.valid()) << "BPF_MAP_CREATE: " << errnoText();

  // When a value is stored and read back
  std::uint32_t key = 0;
  std::uint64_t stored = 42, loaded = 0;
  bpf_attr update{};
  update.map_fd = static_cast<std::uint32_t>(map.get());
  update.key = reinterpret_cast<std::uint64_t>(&key);
  update.value = reinterpret_cast<std::uint64_t>(&stored);
  ASSERT_EQ(bpf(BPF_MAP_UPDATE_ELEM, update), 0) << errnoText();
  bpf_attr lookup{};
  lookup.map_fd = static_cast<std::uint32_t>(map.get());
  lookup.key = reinterpret_cast<std::uint64_t>(&key);
  lookup.value = reinterpret_cast<std::uint64_t>(&loaded);
  ASSERT_EQ(bpf(BPF_MAP_LOOKUP_ELEM, lookup), 0) << errnoText();

  // Then it is the same value
  EXPECT_EQ(loaded, 42u);
}

TEST(VmSelftest, VerifierLoadsAndTestRunsAProgram) {
  // Given "r0 = 7; exit" as a socket filter
  bpf_insn program[2] = {};
  program[0].code = BPF_ALU64 | BPF_MOV | BPF_K;
  program[0].dst_reg = BPF_REG_0;
  program[0].imm = 7;
  program[1].code = BPF_JMP | BPF_EXIT;
  char license[] = "GPL";
  char log[4096] = {};
  bpf_attr load{};
  load.prog_type = BPF_PROG_TYPE_SOCKET_FILTER;
  load.insns = reinterpret_cast<std::uint64_t>(program);
  load.insn_cnt = sizeof(program) / sizeof(program[0]);
  load.license = reinterpret_cast<std::uint64_t>(license);
  load.log_buf = reinterpret_cast<std::uint64_t>(log);
  load.log_size = sizeof(log);
  load.log_level = 1;
  Fd prog(bpf(BPF_PROG_LOAD, load));
  ASSERT_TRUE(prog.valid()) << "BPF_PROG_LOAD: " << errnoText() << "\n" << log;

  // When it runs on a packet through BPF_PROG_TEST_RUN
  unsigned char packet[64] = {};
  bpf_attr test{};
  test.test.prog_fd = static_cast<std::uint32_t>(prog.get());
  test.test.data_in = reinterpret_cast<std::uint64_t>(packet);
  test.test.data_size_in = sizeof(packet);
  test.test.repeat = 1;
  ASSERT_EQ(bpf(BPF_PROG_TEST_RUN, test), 0) << errnoText();

  // Then it returned what it says
  EXPECT_EQ(test.test.retval, 7u);
}

TEST(VmSelftest, KernelPublishesBtfForCoRe) {
  std::ifstream btf("/sys/kernel/btf/vmlinux", std::ios::binary);
  ASSERT_TRUE(btf) << "/sys/kernel/btf/vmlinux is missing";
  unsigned char magic[2] = {};
  btf.read(reinterpret_cast<char*>(magic), sizeof(magic));
  // BTF_MAGIC 0xeB9F, little-endian on x86-64.
  EXPECT_EQ(magic[0], 0x9f);
  EXPECT_EQ(magic[1], 0xeb);
}

TEST(VmSelftest, Cgroup2IsMountedAndTakesChildGroups) {
  // Given cgroup v2 on /sys/fs/cgroup
  std::ifstream mounts("/proc/mounts");
  std::string line;
  bool found = false;
  while (std::getline(mounts, line)) {
    std::istringstream fields(line);
    std::string device, mountPoint, type;
    fields >> device >> mountPoint >> type;
    found = found || (mountPoint == "/sys/fs/cgroup" && type == "cgroup2");
  }
  ASSERT_TRUE(found) << "no cgroup2 on /sys/fs/cgroup in /proc/mounts";

  // When a child cgroup is made, then the kernel populates it, and it can be removed
  std::string child = "/sys/fs/cgroup/" + uniqueName("sluice-vm-selftest-");
  ASSERT_EQ(mkdir(child.c_str(), 0755), 0) << errnoText();
  EXPECT_TRUE(exists(child + "/cgroup.procs"));
  EXPECT_EQ(rmdir(child.c_str()), 0) << errnoText();
}

TEST(VmSelftest, BpfFilesystemTakesPins) {
  // Given bpffs on /sys/fs/bpf
  struct statfs fs {};
  ASSERT_EQ(statfs("/sys/fs/bpf", &fs), 0) << errnoText();
  ASSERT_EQ(static_cast<long>(fs.f_type), kBpfFsMagic) << "/sys/fs/bpf is not a BPF filesystem";

  // When a map is pinned there, then the pin exists
  Fd map(createArrayMap());
  ASSERT_TRUE(map.valid()) << errnoText();
  std::string pin = "/sys/fs/bpf/" + uniqueName("sluice-vm-selftest-");
  bpf_attr attr{};
  attr.pathname = reinterpret_cast<std::uint64_t>(pin.c_str());
  attr.bpf_fd = static_cast<std::uint32_t>(map.get());
  ASSERT_EQ(bpf(BPF_OBJ_PIN, attr), 0) << errnoText();
  EXPECT_TRUE(exists(pin));
  EXPECT_EQ(unlink(pin.c_str()), 0);
}

TEST(VmSelftest, LoopbackCarriesTcpOverIpv4AndIpv6) {
  for (int family : {AF_INET, AF_INET6}) {
    SCOPED_TRACE(family == AF_INET ? "IPv4" : "IPv6");
    // Given a listener on the loopback address, port 0
    sockaddr_storage address{};
    socklen_t length;
    if (family == AF_INET) {
      auto* in = reinterpret_cast<sockaddr_in*>(&address);
      in->sin_family = AF_INET;
      in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      length = sizeof(sockaddr_in);
    } else {
      auto* in6 = reinterpret_cast<sockaddr_in6*>(&address);
      in6->sin6_family = AF_INET6;
      in6->sin6_addr = in6addr_loopback;
      length = sizeof(sockaddr_in6);
    }
    Fd listener(socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0));
    ASSERT_TRUE(listener.valid()) << errnoText();
    auto* sa = reinterpret_cast<sockaddr*>(&address);
    ASSERT_EQ(bind(listener.get(), sa, length), 0) << errnoText();
    ASSERT_EQ(listen(listener.get(), 1), 0) << errnoText();
    ASSERT_EQ(getsockname(listener.get(), sa, &length), 0) << errnoText();

    // When a client connects, then the listener accepts it
    Fd client(socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0));
    ASSERT_EQ(connect(client.get(), sa, length), 0) << errnoText();
    Fd accepted(accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
    EXPECT_TRUE(accepted.valid()) << errnoText();
  }
}

TEST(VmSelftest, IpCreatesVethPairsAndBridges) {
  // Given iproute2 and the veth and bridge modules run.sh loaded
  std::string veth = uniqueName("svt-a"), peer = uniqueName("svt-b"), bridge = uniqueName("svt-br");

  // When a veth pair and a bridge are created, then they exist and can be joined
  ASSERT_EQ(run("ip link add " + veth + " type veth peer name " + peer), 0);
  EXPECT_TRUE(exists("/sys/class/net/" + peer));
  EXPECT_EQ(run("ip link add name " + bridge + " type bridge"), 0);
  EXPECT_EQ(run("ip link set " + veth + " master " + bridge + " up"), 0);
  EXPECT_TRUE(exists("/sys/class/net/" + bridge + "/brif/" + veth));

  EXPECT_EQ(run("ip link del " + veth), 0);
  EXPECT_EQ(run("ip link del " + bridge), 0);
  EXPECT_FALSE(exists("/sys/class/net/" + peer));
}

TEST(VmSelftest, ThreadCanEnterANewNetworkNamespace) {
  int result = -1, error = 0;
  // unshare() on a helper thread, so the rest of the tests stay in the initial namespace.
  std::thread helper([&] {
    result = unshare(CLONE_NEWNET);
    error = errno;
  });
  helper.join();
  EXPECT_EQ(result, 0) << std::strerror(error);
}

TEST(VmSelftest, GoogleTestFindsTempDirAndItsOwnBinary) {
  // Death tests re-execute /proc/self/exe; temporary files go to /tmp.
  char self[4096] = {};
  ASSERT_GT(readlink("/proc/self/exe", self, sizeof(self) - 1), 0) << errnoText();
  EXPECT_TRUE(exists(self)) << self;
  char dir[] = "/tmp/sluice-vm-selftest-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr) << errnoText();
  EXPECT_EQ(rmdir(dir), 0);
}

TEST(VmSelftestDeathTest, ChildProcessesReportBack) {
  EXPECT_EXIT(std::exit(3), testing::ExitedWithCode(3), "");
}

}  // namespace
}  // namespace sluice::vm
