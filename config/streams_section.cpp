// The TCP and TLS part of the configuration: stream listeners, the certificate, stream limits
// and their defaults (listen.tcp follows listen.udp; listen.tls follows a certificate).
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "config/loader.hpp"

namespace callrelay::config::detail {

void Loader::read_stream_listen(const Field& f, std::vector<stun::Endpoint>& out, bool& given) {
  given = true;  // [] (or null) is allowed: no listener of this kind
  if (f.node.IsNull()) return;
  reader_.for_each_item(f, [this, &out](const Field& item) {
    const auto s = reader_.string(item);
    if (!s) return;
    const auto ep = stun::Endpoint::parse(*s);
    if (!ep) {
      reader_.error(
          item, "must be an address and port like '0.0.0.0:3478' or '[::]:3478', not '" + *s + "'");
      return;
    }
    for (const stun::Endpoint& other : out) {
      if (other == *ep) reader_.error(item, "'" + *s + "' is listed twice");
    }
    out.push_back(*ep);
  });
}

void Loader::read_tls(const Field& f) {
  reader_.read_map(f, {{"cert",
                        [this](const Field& x) {
                          tls_cert_ = x;
                          read_tls_file(x, cfg_.tls.cert);
                        }},
                       {"key", [this](const Field& x) { read_tls_file(x, cfg_.tls.key); }},
                       {"min_version", on(&Loader::read_tls_min_version)},
                       {"records", on(&Loader::read_tls_records)}});
}

void Loader::read_tls_file(const Field& f, std::string& out) {
  if (f.node.IsNull()) return;
  text(out, kMaxPathChars)(f);
  if (out.empty()) return;
  std::filesystem::path path(out);
  if (path.is_relative()) path = base_dir_ / path;
  out = path.string();
  std::ifstream in;
  if (const auto why = open_regular(path, in)) {
    reader_.error(f, "cannot read '" + out + "': " + *why);
  }
}

void Loader::read_tls_min_version(const Field& f) {
  if (auto s = reader_.choice(f, {"1.2", "1.3"}, "(older TLS is never accepted)")) {
    cfg_.tls.min_version = std::move(*s);
  }
}

void Loader::read_tls_records(const Field& f) {
  if (const auto s = reader_.choice(f, {"per_frame", "packed"})) {
    cfg_.tls.pack_records = *s == "packed";
  }
}

void Loader::read_streams(const Field& f) {
  StreamConfig& st = cfg_.streams;
  const std::vector<KeyHandler> keys = {
      {"idle_timeout", u32(st.idle_timeout_s, 1, kMaxLifetimeS)},
      {"max_frame", u32(st.max_frame_bytes, 548, 65552)},
      {"send_queue", u32(st.send_queue_bytes, 65560, 64 << 20)},
      {"max_connections", u32(st.max_connections, 0, UINT32_MAX)},
  };
  reader_.read_map(f, keys);
}

/// listen.tcp left out: TCP on the UDP endpoints. listen.tls left out: 5349 when a
/// certificate is configured. TLS needs both cert and key.
void Loader::apply_stream_defaults() {
  if (!tcp_given_) cfg_.listen.tcp = cfg_.listen.udp;
  const bool has_cert = !cfg_.tls.cert.empty() && !cfg_.tls.key.empty();
  if (!cfg_.tls.cert.empty() != !cfg_.tls.key.empty()) {
    reader_.error(tls_cert_.path.empty() ? Field{"tls", {}, 0} : tls_cert_,
                  "tls.cert and tls.key go together: give both or neither");
  }
  if (!tls_given_ && has_cert) {
    cfg_.listen.tls = {*stun::Endpoint::parse("0.0.0.0:5349"), *stun::Endpoint::parse("[::]:5349")};
  }
  if (!cfg_.listen.tls.empty() && !has_cert) {
    reader_.error(listen_tls_, "listening on TLS needs tls.cert and tls.key");
  }
}

}  // namespace callrelay::config::detail
