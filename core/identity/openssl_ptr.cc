#include "core/identity/openssl_ptr.h"

namespace sluice::identity {

X509Ptr shareX509(X509* cert) {
  if (cert != nullptr) X509_up_ref(cert);
  return X509Ptr(cert);
}

EvpPkeyPtr shareKey(EVP_PKEY* key) {
  if (key != nullptr) EVP_PKEY_up_ref(key);
  return EvpPkeyPtr(key);
}

std::string opensslErrors() {
  std::string out;
  const char* data = nullptr;
  int flags = 0;
  while (unsigned long code = ERR_get_error_all(nullptr, nullptr, nullptr, &data, &flags)) {
    char buf[256];
    ERR_error_string_n(code, buf, sizeof(buf));
    if (!out.empty()) out += "; ";
    out += buf;
    if ((flags & ERR_TXT_STRING) != 0 && data != nullptr && *data != '\0') {
      out += " (";
      out += data;
      out += ')';
    }
  }
  return out;
}

Error opensslError(std::string_view what) {
  std::string message(what);
  std::string details = opensslErrors();
  if (!details.empty()) message += ": " + details;
  return Error{std::move(message)};
}

}  // namespace sluice::identity
