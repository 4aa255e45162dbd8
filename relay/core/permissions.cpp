// CreatePermission (RFC 8656 section 10) and ChannelBind (RFC 8656 section 12.2).
#include "relay/core/server_impl.hpp"
#include "relay/stun/channel_data.hpp"

namespace callrelay::core {

Output TurnServer::Impl::handle_create_permission(Request& req) {
  Output reply;
  Allocation* a = authenticate_for_allocation(req, &reply);
  if (a == nullptr) return reply;

  // RFC 8656 section 10.2: "When the server receives the CreatePermission request, it processes
  // it as per Section 5 plus the specific rules mentioned here. The message is checked for
  // validity. The CreatePermission request MUST contain at least one XOR-PEER-ADDRESS attribute
  // and MAY contain multiple such attributes. If no such attribute exists, or if any of these
  // attributes are invalid, then a 400 (Bad Request) error is returned."
  std::array<Endpoint, stun::kMaxAttributes> peers{};
  size_t n = 0;
  for (const auto& attr : req.msg.attributes()) {
    if (attr.type != stun::attr::kXorPeerAddress) continue;
    const auto peer = decode_xor_address(req.msg, attr);
    if (!peer) return respond_error(req, 400, "Malformed XOR-PEER-ADDRESS");
    peers[n++] = *peer;
  }
  if (n == 0) return respond_error(req, 400, "Missing XOR-PEER-ADDRESS");

  for (size_t i = 0; i < n; ++i) {
    // "If an XOR-PEER-ADDRESS attribute contains an address of an address family that is not
    // the same as that of a relayed transport address for the allocation, the server MUST
    // generate an error response with the 443 (Peer Address Family Mismatch) response code."
    if (a->relay_for(peers[i].family, req.now) == nullptr) {
      if (observer != nullptr) observer->on_peer_denied(PeerDenyReason::kFamilyMismatch);
      return respond_error(req, 443, "Peer Address Family Mismatch");
    }
    // "The server MAY impose restrictions on the IP address allowed in the XOR-PEER-ADDRESS
    // attribute; if a value is not allowed, the server rejects the request with a 403
    // (Forbidden) error." (Section 21.1.4 on relaying into the server's own network.)
    if (const auto denied = policy.check(peers[i])) {
      if (observer != nullptr) observer->on_peer_denied(*denied);
      return respond_error(req, 403, "Forbidden");
    }
  }
  // All checks pass before anything changes, so the request is all-or-nothing. "If the request
  // is valid, but the server is unable to fulfill the request due to some capacity limit or
  // similar, the server replies with a 508 (Insufficient Capacity) error."
  size_t fresh = 0;
  for (size_t i = 0; i < n; ++i) {
    if (!a->permitted(peers[i], req.now)) ++fresh;
  }
  if (a->permissions.size() + fresh > cfg.max_permissions_per_allocation) {
    a->prune(req.now);
    if (a->permissions.size() + fresh > cfg.max_permissions_per_allocation) {
      return respond_error(req, 508, "Insufficient Capacity");
    }
  }
  // "If the message is valid and the server is capable of carrying out the request, then the
  // server installs or refreshes a permission for the IP address contained in each
  // XOR-PEER-ADDRESS attribute ... The port portion of each attribute is ignored."
  const TimeMs until = req.now + ms_from_seconds(cfg.permission_lifetime_s);
  for (size_t i = 0; i < n; ++i) a->install_permission(peers[i], until, cfg.max_permissions_per_allocation);
  schedule(*a, until);
  return respond(req, 0, {}, [](stun::MessageBuilder&) {});
}

Output TurnServer::Impl::handle_channel_bind(Request& req) {
  Output reply;
  Allocation* a = authenticate_for_allocation(req, &reply);
  if (a == nullptr) return reply;
  // RFC 6062: a TCP allocation relays over peer data connections, never over channels.
  if (a->tcp) return respond_error(req, 400, "ChannelBind on a TCP allocation");

  // RFC 8656 section 12.2: "The server checks the following: The request contains both a
  // CHANNEL-NUMBER and an XOR-PEER-ADDRESS attribute; The channel number is in the range
  // 0x4000 through 0x4FFF (inclusive); ... If any of these tests fail, the server replies
  // with a 400 (Bad Request) error."
  const auto number = req.msg.channel_number();
  const auto peer_attr = req.msg.find(stun::attr::kXorPeerAddress);
  if (!number || !peer_attr) return respond_error(req, 400, "Missing CHANNEL-NUMBER or XOR-PEER-ADDRESS");
  // RFC 5766 section 11 allowed 0x4000 through 0x7FFF, and its clients still use that range.
  const uint16_t max_channel = cfg.accept_rfc5766_channels ? stun::kMaxChannelRfc5766 : stun::kMaxChannel;
  if (*number < stun::kMinChannel || *number > max_channel) {
    return respond_error(req, 400, "Channel number out of range");
  }
  const auto peer = decode_xor_address(req.msg, *peer_attr);
  if (!peer) return respond_error(req, 400, "Malformed XOR-PEER-ADDRESS");
  // "If the XOR-PEER-ADDRESS attribute contains an address of an address family that is not
  // the same as that of a relayed transport address for the allocation, the server MUST
  // generate an error response with the 443 (Peer Address Family Mismatch) response code."
  if (a->relay_for(peer->family, req.now) == nullptr) {
    if (observer != nullptr) observer->on_peer_denied(PeerDenyReason::kFamilyMismatch);
    return respond_error(req, 443, "Peer Address Family Mismatch");
  }
  // "The server MAY impose restrictions on the IP address and port values allowed in the
  // XOR-PEER-ADDRESS attribute; if a value is not allowed, the server rejects the request with
  // a 403 (Forbidden) error."
  if (const auto denied = policy.check(*peer)) {
    if (observer != nullptr) observer->on_peer_denied(*denied);
    return respond_error(req, 403, "Forbidden");
  }
  // A permission slot is needed too; check before changing anything.
  if (!a->permitted(*peer, req.now) && a->permissions.size() >= cfg.max_permissions_per_allocation) {
    a->prune(req.now);
    if (a->permissions.size() >= cfg.max_permissions_per_allocation) {
      return respond_error(req, 508, "Insufficient Capacity");
    }
  }
  // "The channel number is not currently bound to a different transport address (same
  // transport address is OK); The transport address is not currently bound to a different
  // channel number." Otherwise 400. "If the request is valid, but the server is unable to
  // fulfill the request due to some capacity limit or similar, the server replies with a 508".
  const TimeMs channel_until = req.now + ms_from_seconds(cfg.channel_lifetime_s);
  switch (a->bind_channel(*number, *peer, channel_until, req.now, cfg.max_channels_per_allocation)) {
    case Allocation::BindResult::kConflict:
      return respond_error(req, 400, "Channel or peer already bound");
    case Allocation::BindResult::kFull:
      return respond_error(req, 508, "Insufficient Capacity");
    case Allocation::BindResult::kOk:
      break;
  }
  // "If the request is valid ... the server creates or refreshes the channel binding using the
  // channel number in the CHANNEL-NUMBER attribute and the transport address in the
  // XOR-PEER-ADDRESS attribute. The server also installs or refreshes a permission for the IP
  // address in the XOR-PEER-ADDRESS attribute as described in Section 9."
  const TimeMs permission_until = req.now + ms_from_seconds(cfg.permission_lifetime_s);
  a->install_permission(*peer, permission_until, cfg.max_permissions_per_allocation);
  schedule(*a, std::min(permission_until, channel_until));
  return respond(req, 0, {}, [](stun::MessageBuilder&) {});
}

}  // namespace callrelay::core
