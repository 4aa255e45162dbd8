// Names for the observer's enums (logs and metric labels).
#include "relay/core/observer.hpp"

namespace callrelay::core {

const char* to_string(EndReason r) {
  switch (r) {
    case EndReason::kRefreshZero: return "refresh_zero";
    case EndReason::kExpired: return "expired";
    case EndReason::kTransportClosed: return "transport_closed";
    case EndReason::kShutdown: return "shutdown";
    case EndReason::kCallEnded: return "call_ended";
    case EndReason::kRevoked: return "revoked";
    case EndReason::kCredentialExpired: return "credential_expired";
    case EndReason::kAdminEnded: return "admin_ended";
    case EndReason::kDrained: return "drained";
  }
  return "unknown";
}

const char* to_string(AuthFailure r) {
  switch (r) {
    case AuthFailure::kExpired: return "expired";
    case AuthFailure::kBadIntegrity: return "bad_integrity";
    case AuthFailure::kUnknownUser: return "unknown_user";
    case AuthFailure::kStaleNonce: return "stale_nonce";
    case AuthFailure::kRevoked: return "revoked";
    case AuthFailure::kWrongRealm: return "wrong_realm";
  }
  return "unknown";
}

const char* to_string(PeerDenyReason r) {
  switch (r) {
    case PeerDenyReason::kLoopback: return "loopback";
    case PeerDenyReason::kPrivate: return "private";
    case PeerDenyReason::kLinkLocal: return "link_local";
    case PeerDenyReason::kMulticast: return "multicast";
    case PeerDenyReason::kBroadcast: return "broadcast";
    case PeerDenyReason::kUnspecified: return "unspecified";
    case PeerDenyReason::kDocumentation: return "documentation";
    case PeerDenyReason::kReserved: return "reserved";
    case PeerDenyReason::kDeniedByConfig: return "denied_by_config";
    case PeerDenyReason::kFamilyMismatch: return "family_mismatch";
    case PeerDenyReason::kOwnAddress: return "own_address";
  }
  return "unknown";
}

const char* to_string(DropReason r) {
  switch (r) {
    case DropReason::kNoAllocation: return "no_allocation";
    case DropReason::kNoPermission: return "no_permission";
    case DropReason::kNoChannel: return "no_channel";
    case DropReason::kMalformed: return "malformed";
    case DropReason::kOverQuota: return "over_quota";
    case DropReason::kPeerDenied: return "peer_denied";
    case DropReason::kAmbiguousPeer: return "ambiguous_peer";
  }
  return "unknown";
}

}  // namespace callrelay::core
