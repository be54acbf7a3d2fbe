#include "core/identity/ca.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <latch>
#include <sstream>
#include <thread>

#include "core/identity/x509_builder.h"
#include "unit/identity/test_support.h"

namespace sluice::identity {
namespace {

using std::chrono::hours;
using testing::fixedNow;
using testing::TempDir;

std::string readFile(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

SpiffeId idOf(const char* uri) { return *SpiffeId::parse(uri); }

TEST(CertificateAuthorityTest, GeneratesRootOnFirstStartAndReloadsTheSameRoot) {
  TempDir dir;
  const auto ca_dir = dir.path() / "ca";

  auto first = CertificateAuthority::loadOrCreate(ca_dir, "cluster.local");
  ASSERT_TRUE(first) << first.message();
  auto second = CertificateAuthority::loadOrCreate(ca_dir, "cluster.local");
  ASSERT_TRUE(second) << second.message();

  EXPECT_EQ(first->rootPem(), second->rootPem());
  EXPECT_EQ(readFile(ca_dir / "root-cert.pem"), first->rootPem());
  struct stat st {};
  ASSERT_EQ(::stat((ca_dir / "root-key.pem").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  // A certificate from the reloaded CA verifies against the first one's root.
  auto leaf = second->issue(idOf("spiffe://cluster.local/ns/a/sa/b"));
  ASSERT_TRUE(leaf) << leaf.message();
  EXPECT_EQ(X509_cmp((*leaf)->roots.at(0).get(), first->root()), 0);
}

TEST(CertificateAuthorityTest, RootIsP256SelfSignedCaValidForTenYears) {
  auto ca = CertificateAuthority::generate("cluster.local", fixedNow());
  ASSERT_TRUE(ca) << ca.message();
  X509* root = const_cast<X509*>(ca->root());
  EXPECT_NE(X509_check_ca(root), 0);
  EVP_PKEY* key = X509_get0_pubkey(root);
  EXPECT_TRUE(isP256(key));
  EXPECT_EQ(X509_verify(root, key), 1);
  EXPECT_GE(toTimePoint(X509_get0_notAfter(root)) - fixedNow(), hours(24 * 3650));
  EXPECT_LE(toTimePoint(X509_get0_notBefore(root)), fixedNow());
}

TEST(CertificateAuthorityTest, ThreadsStartingAtOnceOnOneDirAgreeOnOneRoot) {
  TempDir dir;
  constexpr int kStarters = 6;
  std::latch start(kStarters);
  std::vector<std::string> roots(kStarters);
  std::vector<std::string> errors(kStarters);
  std::vector<std::thread> threads;
  for (int i = 0; i < kStarters; ++i) {
    threads.emplace_back([&, i] {
      start.arrive_and_wait();
      auto ca = CertificateAuthority::loadOrCreate(dir.path(), "cluster.local");
      if (ca) {
        roots[i] = ca->rootPem();
      } else {
        errors[i] = ca.message();
      }
    });
  }
  for (auto& t : threads) t.join();

  for (int i = 0; i < kStarters; ++i) {
    EXPECT_EQ(errors[i], "");
    EXPECT_TRUE(roots[i] == roots[0]) << "starter " << i << " ended up with another root";
  }
  EXPECT_TRUE(readFile(dir.path() / "root-cert.pem") == roots[0]) << "the file holds another root";
}

TEST(CertificateAuthorityTest, ProcessesStartingAtOnceOnOneDirAgreeOnOneRoot) {
  TempDir dir;
  constexpr int kChildren = 3;
  int go[2];
  ASSERT_EQ(::pipe(go), 0);
  std::vector<std::pair<pid_t, int>> children;  // pid, read end of its result pipe
  for (int i = 0; i < kChildren; ++i) {
    int result[2];
    ASSERT_EQ(::pipe(result), 0);
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::close(go[1]);
      ::close(result[0]);
      char c;
      (void)!::read(go[0], &c, 1);  // returns 0 when the parent closes the write end: go
      auto ca = CertificateAuthority::loadOrCreate(dir.path(), "cluster.local");
      std::string out = ca ? ca->rootPem() : "ERROR " + ca.message();
      (void)!::write(result[1], out.data(), out.size());
      ::_exit(0);
    }
    ::close(result[1]);
    children.emplace_back(pid, result[0]);
  }
  ::close(go[0]);
  ::close(go[1]);  // releases every child at once
  auto mine = CertificateAuthority::loadOrCreate(dir.path(), "cluster.local");
  ASSERT_TRUE(mine) << mine.message();

  for (auto [pid, fd] : children) {
    std::string theirs;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof(buf))) > 0) theirs.append(buf, static_cast<size_t>(n));
    ::close(fd);
    int status = 0;
    ::waitpid(pid, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    EXPECT_TRUE(theirs == mine->rootPem()) << "child " << pid << " ended up with another root";
  }
}

TEST(CertificateAuthorityTest, IssuedLeafHasUriSanP256KeyBothEkusAnd24Hours) {
  auto ca = CertificateAuthority::generate("cluster.local", fixedNow());
  ASSERT_TRUE(ca);
  const auto id = idOf("spiffe://cluster.local/ns/shop/sa/cart");

  auto cert = ca->issue(id, CertificateAuthority::kDefaultLeafLifetime, fixedNow());
  ASSERT_TRUE(cert) << cert.message();

  const WorkloadCertificate& c = **cert;
  EXPECT_EQ(c.id, id);
  auto san = spiffeIdOf(c.leaf.get());
  ASSERT_TRUE(san) << san.message();
  EXPECT_EQ(*san, id);
  EXPECT_TRUE(isP256(c.key.get()));
  EXPECT_TRUE(isP256(X509_get0_pubkey(c.leaf.get())));
  EXPECT_EQ(X509_check_private_key(c.leaf.get(), c.key.get()), 1);
  EXPECT_EQ(c.not_after, fixedNow() + hours(24));
  EXPECT_EQ(c.not_before, fixedNow() - CertificateAuthority::kClockSkewAllowance);
  EXPECT_EQ(toTimePoint(X509_get0_notAfter(c.leaf.get())), c.not_after);
  EXPECT_EQ(X509_check_ca(c.leaf.get()), 0);
  const uint32_t eku = X509_get_extended_key_usage(c.leaf.get());
  EXPECT_TRUE(eku & XKU_SSL_SERVER);
  EXPECT_TRUE(eku & XKU_SSL_CLIENT);
  EXPECT_EQ(X509_verify(c.leaf.get(), X509_get0_pubkey(ca->root())), 1);
  ASSERT_EQ(c.roots.size(), 1u);
  EXPECT_EQ(X509_cmp(c.roots[0].get(), ca->root()), 0);
  EXPECT_TRUE(c.chain.empty());
}

TEST(CertificateAuthorityTest, EachLeafGetsItsOwnKeyAndSerial) {
  auto ca = CertificateAuthority::generate("cluster.local");
  ASSERT_TRUE(ca);
  const auto id = idOf("spiffe://cluster.local/ns/shop/sa/cart");
  auto a = ca->issue(id);
  auto b = ca->issue(id);
  ASSERT_TRUE(a && b);
  EXPECT_NE(EVP_PKEY_eq((*a)->key.get(), (*b)->key.get()), 1);
  EXPECT_NE(ASN1_INTEGER_cmp(X509_get0_serialNumber((*a)->leaf.get()),
                             X509_get0_serialNumber((*b)->leaf.get())),
            0);
}

TEST(CertificateAuthorityTest, RefusesToIssueForAnotherTrustDomain) {
  auto ca = CertificateAuthority::generate("cluster.local");
  ASSERT_TRUE(ca);
  auto cert = ca->issue(idOf("spiffe://evil.org/ns/a/sa/b"));
  ASSERT_FALSE(cert);
  EXPECT_NE(cert.message().find("this CA serves trust domain cluster.local"), std::string::npos)
      << cert.message();
}

TEST(CertificateAuthorityTest, RejectsInvalidTrustDomain) {
  TempDir dir;
  auto ca = CertificateAuthority::loadOrCreate(dir.path(), "Not Valid");
  ASSERT_FALSE(ca);
  EXPECT_NE(ca.message().find("trust domain"), std::string::npos) << ca.message();
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "root-cert.pem"));
}

TEST(CertificateAuthorityTest, RefusesToReplaceARootWhoseKeyIsMissing) {
  TempDir dir;
  auto ca = CertificateAuthority::loadOrCreate(dir.path(), "cluster.local");
  ASSERT_TRUE(ca);
  std::filesystem::remove(dir.path() / "root-key.pem");

  auto again = CertificateAuthority::loadOrCreate(dir.path(), "cluster.local");
  ASSERT_FALSE(again);
  EXPECT_NE(again.message().find("root-key.pem is missing"), std::string::npos) << again.message();
  EXPECT_EQ(readFile(dir.path() / "root-cert.pem"), ca->rootPem());
}

TEST(CertificateAuthorityTest, RejectsKeyThatDoesNotMatchTheRoot) {
  auto a = CertificateAuthority::generate("cluster.local");
  auto other_key = generateP256Key();
  ASSERT_TRUE(a && other_key);
  auto ca =
      CertificateAuthority::fromPem(a->rootPem(), privateKeyPem(other_key->get()), "cluster.local");
  ASSERT_FALSE(ca);
  EXPECT_NE(ca.message().find("does not match"), std::string::npos) << ca.message();
}

TEST(WorkloadCertificateTest, RoundTripsThroughPem) {
  auto ca = CertificateAuthority::generate("cluster.local", fixedNow());
  ASSERT_TRUE(ca);
  auto cert = ca->issue(idOf("spiffe://cluster.local/ns/a/sa/b"), hours(24), fixedNow());
  ASSERT_TRUE(cert);

  auto loaded = workloadCertificateFromPem((*cert)->chainPem(), privateKeyPem((*cert)->key.get()),
                                           (*cert)->rootsPem());
  ASSERT_TRUE(loaded) << loaded.message();
  EXPECT_EQ((*loaded)->id, (*cert)->id);
  EXPECT_EQ((*loaded)->not_before, (*cert)->not_before);
  EXPECT_EQ((*loaded)->not_after, (*cert)->not_after);
  EXPECT_EQ((*loaded)->leafPem(), (*cert)->leafPem());
  EXPECT_EQ((*loaded)->rootsPem(), ca->rootPem());
}

TEST(WorkloadCertificateTest, RejectsCertificateThatDoesNotChainToTheBundle) {
  auto ca = CertificateAuthority::generate("cluster.local");
  auto other = CertificateAuthority::generate("cluster.local");
  ASSERT_TRUE(ca && other);
  auto cert = ca->issue(idOf("spiffe://cluster.local/ns/a/sa/b"));
  ASSERT_TRUE(cert);

  auto loaded = workloadCertificateFromPem((*cert)->chainPem(), privateKeyPem((*cert)->key.get()),
                                           other->rootPem());
  ASSERT_FALSE(loaded);
  EXPECT_NE(loaded.message().find("does not chain to the trust bundle"), std::string::npos)
      << loaded.message();
}

TEST(WorkloadCertificateTest, CertificateWithoutUriSanHasNoSpiffeId) {
  auto key = generateP256Key();
  ASSERT_TRUE(key);
  CertificateSpec spec;
  spec.common_name = "plain";
  spec.not_before = fixedNow();
  spec.not_after = fixedNow() + hours(1);
  auto cert = buildCertificate(spec, key->get(), nullptr, key->get());
  ASSERT_TRUE(cert) << cert.message();
  auto id = spiffeIdOf(cert->get());
  ASSERT_FALSE(id);
  EXPECT_NE(id.message().find("no URI SAN"), std::string::npos) << id.message();
}

}  // namespace
}  // namespace sluice::identity
