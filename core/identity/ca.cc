#include "core/identity/ca.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/identity/x509_builder.h"
#include "core/net/unique_fd.h"

namespace sluice::identity {
namespace {

namespace fs = std::filesystem;
using std::chrono::system_clock;

constexpr std::string_view kLockFile = "ca.lock";
constexpr std::chrono::hours kRootBackdate{1};

std::string errnoText(int err) { return std::strerror(err); }

using net::UniqueFd;

// Holds an exclusive flock on <dir>/ca.lock until destroyed (the lock dies with the fd, so a
// crashed process never leaves the directory locked).
Result<UniqueFd> lockDirectory(const fs::path& dir) {
  fs::path path = dir / kLockFile;
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (fd.get() < 0) return Error{"cannot open " + path.string() + ": " + errnoText(errno)};
  while (::flock(fd.get(), LOCK_EX) != 0) {
    if (errno != EINTR) return Error{"cannot lock " + path.string() + ": " + errnoText(errno)};
  }
  return fd;
}

Result<void> writeAll(int fd, std::string_view data, const fs::path& path) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error{"cannot write " + path.string() + ": " + errnoText(errno)};
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return success();
}

// Writes `data` so that `path` either keeps its old content or has all of the new one, even
// across a crash: temp file in the same directory, fsync, rename, fsync the directory.
Result<void> writeFileAtomically(const fs::path& path, std::string_view data, mode_t mode) {
  std::string tmpl = (path.parent_path() / ("." + path.filename().string() + ".XXXXXX")).string();
  UniqueFd fd(::mkstemp(tmpl.data()));
  if (fd.get() < 0)
    return Error{"cannot create a temporary file in " + path.parent_path().string() + ": " +
                 errnoText(errno)};
  auto fail = [&](Error e) {
    ::unlink(tmpl.c_str());
    return e;
  };
  if (::fchmod(fd.get(), mode) != 0) {
    return fail(Error{"cannot chmod " + tmpl + ": " + errnoText(errno)});
  }
  if (auto ok = writeAll(fd.get(), data, tmpl); !ok) return fail(ok.error());
  if (::fsync(fd.get()) != 0) return fail(Error{"cannot fsync " + tmpl + ": " + errnoText(errno)});
  fd.reset();
  if (::rename(tmpl.c_str(), path.c_str()) != 0) {
    return fail(Error{"cannot rename " + tmpl + " to " + path.string() + ": " + errnoText(errno)});
  }
  UniqueFd dir_fd(::open(path.parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir_fd.get() >= 0) ::fsync(dir_fd.get());
  return success();
}

Result<std::string> readFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error{"cannot read " + path.string() + ": " + errnoText(errno)};
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

}  // namespace

Result<CertificateAuthority> CertificateAuthority::fromPem(std::string_view root_cert_pem,
                                                           std::string_view root_key_pem,
                                                           std::string trust_domain) {
  if (auto ok = validateTrustDomain(trust_domain); !ok) return Error{"CA: " + ok.message()};
  auto certs = certificatesFromPem(root_cert_pem);
  if (!certs) return Error{"CA root certificate: " + certs.message()};
  auto key = privateKeyFromPem(root_key_pem);
  if (!key) return Error{"CA root key: " + key.message()};
  X509Ptr root = std::move(certs->front());
  if (X509_check_ca(root.get()) == 0) {
    return Error{"CA root certificate is not a CA certificate (basicConstraints CA:TRUE missing)"};
  }
  if (X509_check_private_key(root.get(), key->get()) != 1) {
    ERR_clear_error();
    return Error{"CA root key does not match the root certificate"};
  }
  auto state = std::make_shared<State>();
  state->trust_domain = std::move(trust_domain);
  state->root = std::move(root);
  state->key = std::move(*key);
  return CertificateAuthority(std::move(state));
}

Result<CertificateAuthority> CertificateAuthority::generate(std::string trust_domain,
                                                            system_clock::time_point now) {
  if (auto ok = validateTrustDomain(trust_domain); !ok) return Error{"CA: " + ok.message()};
  auto key = generateP256Key();
  if (!key) return key.error();
  CertificateSpec spec;
  spec.organization = trust_domain;
  spec.common_name = "Sluice root CA";
  spec.is_ca = true;
  spec.not_before = now - kRootBackdate;
  spec.not_after = now + kRootLifetime;
  auto root = buildCertificate(spec, key->get(), nullptr, key->get());
  if (!root) return Error{"cannot create CA root: " + root.message()};
  auto state = std::make_shared<State>();
  state->trust_domain = std::move(trust_domain);
  state->root = std::move(*root);
  state->key = std::move(*key);
  return CertificateAuthority(std::move(state));
}

Result<CertificateAuthority> CertificateAuthority::loadOrCreate(const fs::path& dir,
                                                                std::string trust_domain) {
  if (auto ok = validateTrustDomain(trust_domain); !ok) return Error{"CA: " + ok.message()};
  std::error_code ec;
  if (fs::create_directories(dir, ec)) {
    fs::permissions(dir, fs::perms::owner_all, ec);
  } else if (ec) {
    return Error{"cannot create CA directory " + dir.string() + ": " + ec.message()};
  }
  auto lock = lockDirectory(dir);
  if (!lock) return lock.error();

  const fs::path cert_path = dir / kRootCertFile;
  const fs::path key_path = dir / kRootKeyFile;
  const bool have_cert = fs::exists(cert_path, ec);
  const bool have_key = fs::exists(key_path, ec);

  if (have_cert) {
    if (!have_key) {
      return Error{cert_path.string() + " exists but " + key_path.string() +
                   " is missing; restore the key, or remove both files to start a new root (every "
                   "workload certificate must then be reissued)"};
    }
    struct stat st {};
    if (::stat(key_path.c_str(), &st) == 0 && (st.st_mode & 077) != 0) {
      spdlog::warn("CA root key {} is readable by group or others (mode {:o}); use mode 0600",
                   key_path.string(), st.st_mode & 0777);
    }
    auto cert_pem = readFile(cert_path);
    if (!cert_pem) return cert_pem.error();
    auto key_pem = readFile(key_path);
    if (!key_pem) return key_pem.error();
    auto ca = fromPem(*cert_pem, *key_pem, std::move(trust_domain));
    if (!ca) return Error{ca.message() + " (in " + dir.string() + ")"};
    auto not_after = toTimePoint(X509_get0_notAfter(ca->root()));
    if (not_after <= system_clock::now()) {
      return Error{"CA root " + cert_path.string() + " expired at " + formatUtc(not_after) +
                   "; rotate the root"};
    }
    spdlog::info("CA: loaded root for trust domain {} from {}", ca->trustDomain(), dir.string());
    return ca;
  }

  // A key without a certificate is the trace of a crash between the two renames below: nobody
  // can have trusted that root yet, so start afresh.
  auto ca = generate(std::move(trust_domain));
  if (!ca) return ca.error();
  // Key first: the certificate's appearance is what marks the pair complete.
  if (auto ok = writeFileAtomically(key_path, privateKeyPem(ca->state_->key.get()), 0600); !ok) {
    return ok.error();
  }
  if (auto ok = writeFileAtomically(cert_path, ca->rootPem(), 0644); !ok) return ok.error();
  spdlog::info("CA: generated a new root for trust domain {} in {}", ca->trustDomain(),
               dir.string());
  return ca;
}

Result<std::shared_ptr<const WorkloadCertificate>> CertificateAuthority::issue(
    const SpiffeId& id, std::chrono::seconds lifetime, system_clock::time_point now) const {
  if (id.empty()) return Error{"CA: cannot issue a certificate for an empty identity"};
  if (id.trustDomain() != state_->trust_domain) {
    return Error{"CA: refusing to issue for " + id.str() + ": this CA serves trust domain " +
                 state_->trust_domain};
  }
  if (lifetime <= std::chrono::seconds::zero()) {
    return Error{"CA: certificate lifetime must be positive"};
  }
  auto key = generateP256Key();
  if (!key) return key.error();
  CertificateSpec spec;
  spec.organization = state_->trust_domain;
  spec.uri_san = id.str();
  spec.not_before = now - kClockSkewAllowance;
  spec.not_after = std::min(now + lifetime, toTimePoint(X509_get0_notAfter(state_->root.get())));
  auto leaf = buildCertificate(spec, key->get(), state_->root.get(), state_->key.get());
  if (!leaf) return Error{"CA: cannot issue for " + id.str() + ": " + leaf.message()};
  std::vector<X509Ptr> roots;
  roots.push_back(shareX509(state_->root.get()));
  return makeWorkloadCertificate(std::move(*leaf), {}, std::move(*key), std::move(roots));
}

std::string CertificateAuthority::rootPem() const { return toPem(state_->root.get()); }

}  // namespace sluice::identity
