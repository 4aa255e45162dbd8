// The TURN REST API credential endpoint (draft-uberti-behave-turn-rest-00, as Janus, Matrix and
// Cloudflare clients call it) and revocation, behind API keys. Pure request -> response logic;
// thread-safe (the HTTP listener's threads call it at once): its state is immutable, the key
// checks are ApiKeys' and revocations the Authenticator's, both thread-safe. The operator
// endpoints are AdminApi's (http/admin_api.hpp).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "http/api_keys.hpp"
#include "http/codec.hpp"
#include "http/http_config.hpp"
#include "http/message.hpp"
#include "relay/core/auth.hpp"
#include "relay/core/types.hpp"

namespace callrelay::http {

/// REST usernames the API mints: "<expiry><separator><user>". User ids longer than this are
/// refused (RFC 8489 section 14.3 caps USERNAME at 512 bytes, the expiry takes some).
inline constexpr size_t kMaxUserIdBytes = 256;

/// TURN URIs for the relay's listeners ("turn:HOST:PORT?transport=udp", "...=tcp",
/// "turns:HOST:PORT?transport=tcp"), without duplicates. HOST is `public_host` when set, else
/// the listener's address; wildcard listeners (0.0.0.0, ::) give no URI without a public_host.
std::vector<std::string> derive_turn_uris(const std::string& public_host,
                                          const std::vector<stun::Endpoint>& udp,
                                          const std::vector<stun::Endpoint>& tcp = {},
                                          const std::vector<stun::Endpoint>& tls = {});

class CredentialApi {
 public:
  /// `cfg`: the `api:` section (its default_ttl_s; the keys are `keys`'). `uris`: the TURN
  /// URIs to return (already derived from config). Credentials are signed with the first
  /// REST secret `auth` holds when they are minted (a reload may rotate it; none: minting
  /// answers 503). `auth` receives revocations; `keys` checks API keys (shared with the other
  /// /api/v1 endpoints). Both must outlive this object.
  CredentialApi(const ApiConfig& cfg, std::vector<std::string> uris, char separator,
                core::Authenticator& auth, ApiKeys& keys);

  /// GET|POST /api/v1/turn/credentials.
  Response credentials(const Request& req, core::TimeMs now);
  /// POST /api/v1/turn/revoke.
  Response revoke(const Request& req, core::TimeMs now);
  /// OPTIONS on either: a CORS preflight, answered for origins some key allows.
  Response preflight(const Request& req) const;

  /// Called with each username revoked (expired ones too), after the Authenticator refuses it,
  /// to end its live allocations. Before the server starts.
  void set_on_revoked(std::function<void(const std::string& username)> hook) {
    on_revoked_ = std::move(hook);
  }
  /// The TURN URIs to return for a client of `region` ("" when the request names none, else
  /// letters, digits, '.', '_' and '-'), instead of the fixed ones: in cluster mode those of
  /// the least-loaded healthy instances. Before the server starts; called on HTTP threads.
  void set_uri_source(std::function<std::vector<std::string>(const std::string& region)> source) {
    uri_source_ = std::move(source);
  }

 private:
  struct Authorized {
    const ApiKey* key = nullptr;
    Params params;
  };
  /// Reads the parameters and checks the API key; an error response when either fails.
  std::optional<Response> authorize(const Request& req, core::TimeMs now, Authorized& out);
  Response with_cors(Response r, const Request& req, const ApiKey* key) const {
    return keys_.with_cors(std::move(r), req, key);
  }

  uint32_t default_ttl_s_;
  std::vector<std::string> uris_;
  char separator_;
  core::Authenticator& auth_;
  ApiKeys& keys_;
  std::function<void(const std::string&)> on_revoked_;
  std::function<std::vector<std::string>(const std::string&)> uri_source_;
};

}  // namespace callrelay::http
