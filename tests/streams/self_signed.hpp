// A self-signed P-256 certificate for CN=localhost, valid for a day, made in memory: for test
// servers (TestCertificate writes it to PEM files) and the TLS fuzz target. Header only, so
// that the fuzz target needs no test library.
#pragma once

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <memory>

namespace callrelay::net::testing {

struct SelfSigned {
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key{nullptr, &EVP_PKEY_free};
  std::unique_ptr<X509, decltype(&X509_free)> cert{nullptr, &X509_free};
};

inline SelfSigned make_self_signed() {
  SelfSigned s;
  s.key.reset(EVP_EC_gen("P-256"));
  s.cert.reset(X509_new());
  X509* x = s.cert.get();
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
  X509_gmtime_adj(X509_getm_notBefore(x), 0);
  X509_gmtime_adj(X509_getm_notAfter(x), 86400);
  X509_set_pubkey(x, s.key.get());
  X509_NAME* name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("localhost"), -1, -1, 0);
  X509_set_issuer_name(x, name);
  X509_sign(x, s.key.get(), EVP_sha256());
  return s;
}

}  // namespace callrelay::net::testing
