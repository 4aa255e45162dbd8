// The TURN REST API credential endpoint (draft-uberti-behave-turn-rest-00, as Janus, Matrix and
// Cloudflare clients call it) and revocation, behind API keys. Pure request -> response logic;
// thread-safe (the HTTP listener's threads call it at once): its state is immutable, the key
// checks are ApiKeys' and revocations the Authenticator's, both thread-safe. The operator
// endpoints (AdminApi) sit beside them.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <variant>
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
};

/// The operator endpoints under /api/v1/admin/, for API keys marked `admin: true`:
///   POST /api/v1/admin/allocations/end {"user": U}  ends every allocation of user U;
///   POST /api/v1/admin/drain {"deadline_s": S}       starts draining (S optional).
/// Thread-safe as long as the actions are.
class AdminApi {
 public:
  struct Actions {
    /// Ends every live allocation of `user` (the app's user id, or a static username).
    std::function<void(const std::string& user)> end_user;
    /// Starts draining (or, when draining already, shortens the deadline to `deadline_s`);
    /// returns the seconds left until the drain's deadline.
    std::function<uint32_t(std::optional<uint32_t> deadline_s)> drain;
  };
  /// `keys` (which must outlive this) checks the key; `actions` do the work.
  AdminApi(ApiKeys& keys, Actions actions);

  /// The answer to a request under /api/v1/admin/, or nullopt for a path this class does not
  /// serve (another admin route may).
  std::optional<Response> handle(const Request& req, core::TimeMs now);

  /// The key of an admin request, or the response to send: 401/429 as ApiKeys::authorize,
  /// 403 for a valid key not marked admin. `params` receives the request's parameters.
  std::variant<const ApiKey*, Response> authorize(const Request& req, Params& params,
                                                  core::TimeMs now);

 private:
  Response end_allocations(const Request& req, core::TimeMs now);
  Response drain(const Request& req, core::TimeMs now);

  ApiKeys& keys_;
  Actions actions_;
};

}  // namespace callrelay::http
