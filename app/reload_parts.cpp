#include "app/reload_parts.hpp"

#include <memory>
#include <stdexcept>

#include "app/settings.hpp"
#include "base/log.hpp"
#include "relay/net/stream_service.hpp"

namespace callrelay::app {
namespace {

using Commit = std::function<void()>;

/// REST secrets, static users, realm, password algorithms: a lookup after the swap sees the new
/// secrets; one kept in the file goes on validating. The separator stays the running one.
LivePart auth_part(core::Authenticator& auth, char separator) {
  return {"auth", [&auth, separator](const config::Config& next) -> Commit {
            core::AuthConfig a = next.auth;
            a.rest_separator = separator;
            if (a.rest_secrets.empty() && a.static_users.empty())
              throw std::runtime_error("no REST secret and no static user: nobody could "
                                       "authenticate (keep auth.secrets or auth.users)");
            return [&auth, a = std::move(a)]() mutable { auth.reconfigure(std::move(a)); };
          }};
}

/// Peers checked after the swap (new permissions and channels) follow the new allow and deny
/// lists; permissions already granted run to their expiry.
LivePart peers_part(core::PeerPolicy& peers) {
  return {"peers", [&peers](const config::Config& next) -> Commit {
            return [&peers, p = next.peers] { peers.reconfigure(p); };
          }};
}

LivePart log_part() {
  return {"log", [](const config::Config& next) -> Commit {
            const auto level = log::parse_level(next.log.level);
            if (!level) throw std::runtime_error("log.level '" + next.log.level + "' is unknown");
            const auto format = log::parse_format(next.log.format);
            if (!format) throw std::runtime_error("log.format '" + next.log.format + "' is unknown");
            return [l = *level, f = *format] {
              log::set_level(l);
              log::set_format(f);
            };
          }};
}

/// Quotas, lifetimes of new allocations and the bandwidth caps, on every worker.
LivePart limits_part(net::Server& relay) {
  return {"allocations", [&relay](const config::Config& next) -> Commit {
            return [&relay, core = next.core] { relay.update_limits(core); };
          }};
}

/// The TURN TLS certificate and key, read again even when their paths did not change (the
/// usual rotation writes new files in place). Loaded here so that a bad file rejects the whole
/// reload; new handshakes use it, open connections keep theirs.
LivePart tls_part(net::Server& relay) {
  return {"tls", [&relay](const config::Config& next) -> Commit {
            if (next.tls.cert.empty() || next.tls.key.empty())
              throw std::runtime_error("the server listens on TLS: tls.cert and tls.key are "
                                       "needed until a restart without listen.tls");
            std::shared_ptr<asio::ssl::context> ctx =
                net::make_tls_context(stream_settings(next).tls);
            return [&relay, ctx = std::move(ctx)] { relay.set_tls_context(ctx); };
          }};
}

LivePart api_keys_part(http::ApiKeys& keys) {
  return {"api.keys", [&keys](const config::Config& next) -> Commit {
            return [&keys, k = next.api.keys] { keys.reconfigure(k); };
          }};
}

bool listens_on_tls(const net::Server& relay) {
  for (const auto& l : relay.stream_listening()) {
    if (l.transport == core::Transport::kTls) return true;
  }
  return false;
}

}  // namespace

std::vector<LivePart> live_parts(const LiveTargets& t, const config::Config& started) {
  std::vector<LivePart> parts;
  if (listens_on_tls(t.relay)) parts.push_back(tls_part(t.relay));  // may fail: first
  parts.push_back(auth_part(t.auth, started.auth.rest_separator));
  if (t.api_keys != nullptr) parts.push_back(api_keys_part(*t.api_keys));
  parts.push_back(peers_part(t.peers));
  parts.push_back(limits_part(t.relay));
  parts.push_back(log_part());
  return parts;
}

}  // namespace callrelay::app
