// One TURN client's control state: REST credentials, the current request, and how a response
// moves it on. Built on relay_stun (MessageBuilder, MessageView, integrity); no sockets here.
#pragma once

#include <array>
#include <cstdint>
#include <random>
#include <span>
#include <string>

#include "relay/stun/endpoint.hpp"
#include "relay/stun/integrity.hpp"
#include "relay/stun/message.hpp"

namespace callrelay::bench {

/// Where a client is in its control sequence. Each step with a request waits for its answer.
enum class Step : uint8_t {
  kIdle,        ///< not started
  kChallenge,   ///< Allocate without credentials, expecting 401 with REALM and NONCE
  kAllocate,    ///< Allocate with credentials
  kPermission,  ///< CreatePermission for the echo peer
  kChannel,     ///< ChannelBind of kChannel to the echo peer
  kRelease,     ///< Refresh with LIFETIME 0
  kRefresh,     ///< Refresh with LIFETIME kRefreshLifetimeS (keeping a held allocation)
  kReady,       ///< allocation, permission and channel in place
  kDone,        ///< finished its share of the work
  kFailed,      ///< gave up (error response, bad integrity or no answer)
};

/// What a ready session is renewing, if anything (hold mode).
enum class Renewal : uint8_t {
  kNone,
  kPermission,  ///< CreatePermission, back to kReady
  kAllocation,  ///< ChannelBind, then Refresh, back to kReady
};

/// The LIFETIME a refreshing client asks for: the default allocation lifetime (RFC 8656
/// section 7.2).
inline constexpr uint32_t kRefreshLifetimeS = 600;

/// The channel every client binds (channels are per allocation, so all may use the same).
inline constexpr uint16_t kBenchChannel = 0x4000;

/// TURN REST API credential (username "expiry:user", password base64(HMAC-SHA1(secret, username))).
struct RestCredential {
  std::string username;
  std::string password;
};
RestCredential make_rest_credential(const std::string& secret, const std::string& user,
                                    uint64_t expiry_unix_s);

/// How a datagram relates to the session's outstanding request.
enum class Reply : uint8_t {
  kIgnore,        ///< not a response to the outstanding request (stale, garbage, ChannelData)
  kSuccess,       ///< success response; integrity verified when the request carried credentials
  kNewNonce,      ///< 401/438 carrying REALM/NONCE: the key and nonce are updated, resend
  kError,         ///< any other error response; see last_error
  kBadIntegrity,  ///< success response whose MESSAGE-INTEGRITY does not verify
};

struct Session {
  int fd = -1;
  /// Host order; non-zero when `fd` is shared and this client sends from this address.
  uint32_t source = 0;
  Step step = Step::kIdle;
  Renewal renewal = Renewal::kNone;
  uint8_t attempts = 0;      ///< transmissions of the current request
  uint8_t nonce_rounds = 0;  ///< consecutive 401/438 answers to credentialed requests
  uint64_t sent_ns = 0;      ///< when the current request was last sent
  stun::TransactionId tid{};
  RestCredential credential;
  std::string realm;
  std::string nonce;
  stun::Sha1Key key{};
  stun::Endpoint relayed{};
  uint16_t last_error = 0;
  bool response_had_integrity = true;
  std::array<uint8_t, 512> request{};
  size_t request_len = 0;
};

/// Builds the request for `step` into s.request with a fresh transaction id: credentials on
/// everything but the challenge, then MESSAGE-INTEGRITY and FINGERPRINT as browsers send them.
/// Returns false if it did not fit (a bug in the bench, reported by the caller).
bool build_request(Session& s, Step step, const stun::Endpoint& peer, std::mt19937_64& rng);

/// Matches `bytes` against the outstanding request and interprets it. On kSuccess for an
/// Allocate, s.relayed holds XOR-RELAYED-ADDRESS.
Reply interpret_reply(Session& s, std::span<const uint8_t> bytes);

}  // namespace callrelay::bench
