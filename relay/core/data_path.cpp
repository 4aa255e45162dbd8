// The hot path: Send indications and ChannelData from clients, datagrams from peers.
// No allocation, no lock, no payload copy: outputs point into the caller's buffers. Bandwidth
// caps cost a few atomic operations (the shared buckets), never a lock.
#include <algorithm>
#include <cstring>

#include "relay/core/server_impl.hpp"
#include "relay/stun/channel_data.hpp"

namespace callrelay::core {

Output TurnServer::Impl::handle_send(const FiveTuple& from, const stun::MessageView& msg, TimeMs now,
                                     int64_t now_us) {
  // RFC 8656 section 11.2: "When the server receives a Send indication, it processes as per
  // Section 5 plus the specific rules mentioned here."
  Allocation* const found = by_tuple.find(from);
  if (found == nullptr || found->expires <= now) {
    drop(DropReason::kNoAllocation);
    return {};
  }
  Allocation& a = *found;
  if (a.tcp) {  // RFC 6062: a TCP allocation relays over peer data connections only
    drop(DropReason::kMalformed);
    return {};
  }
  // "The message is first checked for validity. The Send indication MUST contain both an
  // XOR-PEER-ADDRESS attribute and a DATA attribute. If one of these attributes is missing or
  // invalid, then the message is discarded." Unknown comprehension-required attributes make
  // an indication invalid as well (RFC 8489 section 6.3.2).
  const auto peer = msg.xor_address(stun::attr::kXorPeerAddress);
  const auto data = msg.data();
  if (!peer || !data) {
    drop(DropReason::kMalformed);
    return {};
  }
  for (const auto& attr : msg.attributes()) {
    const bool understood = attr.type == stun::attr::kXorPeerAddress || attr.type == stun::attr::kData ||
                            attr.type == stun::attr::kDontFragment || !stun::attr::is_comprehension_required(attr.type);
    if (!understood) {
      drop(DropReason::kMalformed);
      return {};
    }
  }
  // "If the XOR-PEER-ADDRESS attribute contains an address of an address family that is not
  // the same as that of a relayed transport address for the allocation, the indication is
  // discarded." A dual allocation sends from the relay of the peer's family.
  const FamilyRelay* relay = a.relay_for(peer->family, now);
  if (relay == nullptr) {
    drop(DropReason::kPeerDenied);
    return {};
  }
  // "The server also checks that there is a permission installed for the IP address contained
  // in the XOR-PEER-ADDRESS attribute. If no such permission exists, the message is discarded."
  if (!a.permitted(*peer, now)) {
    drop(DropReason::kNoPermission);
    return {};
  }
  // Bandwidth caps (allocation, user, server): over them the datagram is dropped and counted.
  if (!a.gate.admit(Direction::kToPeer, data->size(), now)) return {};
  // "If everything is OK, then the server forms a UDP datagram as follows: the source transport
  // address is the relayed transport address of the allocation ... the destination transport
  // address is taken from the XOR-PEER-ADDRESS attribute; the data following the UDP header is
  // the contents of the value field of the DATA attribute."
  a.info.traffic.bytes_to_peer.add(data->size());
  a.info.traffic.packets_to_peer.add(1);
  if (cfg.media_quality) {
    a.monitor.on_client_datagram(*data, media_time_us(now, now_us), a.info.media.write());
  }
  Output out;
  out.kind = Output::Kind::kToPeer;
  out.relay = relay->relay.id;
  out.peer = *peer;
  out.data = *data;
  return out;
}

Output TurnServer::Impl::handle_channel_data(const FiveTuple& from, std::span<const uint8_t> bytes, TimeMs now,
                                             int64_t now_us) {
  // RFC 8656 section 12.6: "If the ChannelData message is received in a UDP datagram, and if
  // the UDP datagram is too short to contain the claimed length of the ChannelData message
  // (i.e., the UDP datagram is shorter than 4 + Length), then the message is silently discarded."
  const auto cd = stun::parse_channel_data(bytes);
  if (!cd) {
    drop(DropReason::kMalformed);
    return {};
  }
  Allocation* const found = by_tuple.find(from);
  if (found == nullptr || found->expires <= now) {
    drop(DropReason::kNoAllocation);
    return {};
  }
  Allocation& a = *found;
  // "If the ChannelData message is received on a channel that is not bound to any peer, then
  // the message is silently discarded."
  const ChannelBinding* ch = a.channel(cd->channel, now);
  if (ch == nullptr) {
    drop(DropReason::kNoChannel);
    return {};
  }
  // A channel of a family whose relay was deleted (dual allocation) has nowhere to send from.
  const FamilyRelay* relay = a.relay_for(ch->peer.family, now);
  if (relay == nullptr) {
    drop(DropReason::kNoChannel);
    return {};
  }
  if (!a.gate.admit(Direction::kToPeer, cd->payload.size(), now)) return {};
  // "Otherwise, the server relays the Application Data as a UDP datagram to the peer bound to
  // the channel" (sections 12.6 and 11.2): no copy, the output points into `bytes`.
  a.info.traffic.bytes_to_peer.add(cd->payload.size());
  a.info.traffic.packets_to_peer.add(1);
  if (cfg.media_quality) {
    a.monitor.on_client_datagram(cd->payload, media_time_us(now, now_us), a.info.media.write());
  }
  Output out;
  out.kind = Output::Kind::kToPeer;
  out.relay = relay->relay.id;
  out.peer = ch->peer;
  out.data = cd->payload;
  return out;
}

Output TurnServer::Impl::handle_peer(RelayId relay, const Endpoint& peer, std::span<uint8_t> buffer, size_t len,
                                     TimeMs now, int64_t now_us) {
  if (buffer.size() < kPeerHeadroom + kPeerTailroom || len > buffer.size() - kPeerHeadroom - kPeerTailroom ||
      len > 0xFFFF) {
    drop(DropReason::kMalformed);
    return {};
  }
  Allocation* a = relay < by_relay.size() ? by_relay[relay] : nullptr;
  // Both relays of a dual allocation lead here; the datagram must have reached the live relay
  // of its own family (each relay socket is bound to one family).
  const FamilyRelay* own = a != nullptr ? a->relay_for(peer.family, now) : nullptr;
  if (own == nullptr || own->relay.id != relay) {
    drop(DropReason::kNoAllocation);
    return {};
  }
  // RFC 8656 section 11.3: "When the server receives a UDP datagram at a currently allocated
  // relayed transport address, the server looks up the allocation associated with the relayed
  // transport address. The server then checks to see whether the set of permissions for the
  // allocation allow the relaying of the UDP datagram as described in Section 9." Section 9:
  // "If no such permission exists, the server silently discards the datagram."
  if (!a->permitted(peer, now)) {
    drop(DropReason::kNoPermission);
    return {};
  }
  if (!a->gate.admit(Direction::kToClient, len, now)) return {};
  uint8_t* payload = buffer.data() + kPeerHeadroom;
  // Measured before any header goes into the headroom (the payload bytes are not touched).
  if (cfg.media_quality) {
    a->monitor.on_peer_datagram(std::span<const uint8_t>(payload, len), media_time_us(now, now_us),
                                a->info.media.write());
  }
  Output out;
  out.kind = Output::Kind::kToClient;
  out.client = a->info.client;
  // "If relaying is permitted, then the server checks if there is a channel bound to the peer
  // that sent the UDP datagram (see Section 12). If a channel is bound, then processing
  // proceeds as described in Section 12.7" (ChannelData to the client).
  if (const ChannelBinding* ch = a->channel_to(peer, now)) {
    uint8_t* start = payload - stun::kChannelDataHeaderSize;
    stun::write_channel_data_header(std::span<uint8_t, stun::kChannelDataHeaderSize>(start, stun::kChannelDataHeaderSize),
                                    ch->number, static_cast<uint16_t>(len));
    size_t total = stun::kChannelDataHeaderSize + len;
    // RFC 8656 section 12.5: "Over TCP and TLS-over-TCP, the ChannelData message MUST be padded
    // to a multiple of four bytes"; over UDP the padding is not needed.
    if (a->info.client.transport != Transport::kUdp) {
      const size_t pad = (4 - len % 4) % 4;
      std::fill_n(payload + len, pad, uint8_t{0});
      total += pad;
    }
    out.data = std::span<const uint8_t>(start, total);
    a->info.traffic.bytes_to_client.add(len);
    a->info.traffic.packets_to_client.add(1);
    return out;
  }
  // "If no channel is bound to the peer, then the server forms and sends a Data indication.
  // The Data indication MUST contain both an XOR-PEER-ADDRESS and a DATA attribute." The DATA
  // value is the payload where it already sits; the header goes in the headroom before it.
  stun::TransactionId tid{};
  const uint64_t serial = ++indication_counter;
  const uint64_t id = a->info.id;
  std::memcpy(tid.data(), &serial, sizeof serial);
  std::memcpy(tid.data() + sizeof serial, &id, tid.size() - sizeof serial);
  const size_t header = stun::data_indication_header_size(peer);
  uint8_t* start = payload - header;
  if (stun::write_data_indication_header(std::span<uint8_t>(start, header), tid, peer, len) == 0) {
    drop(DropReason::kMalformed);  // a payload too large for one STUN message
    return {};
  }
  // RFC 8489 section 14: attribute values are padded to a multiple of 4 bytes.
  const size_t pad = (4 - len % 4) % 4;
  std::fill_n(payload + len, pad, uint8_t{0});
  out.data = std::span<const uint8_t>(start, header + len + pad);
  a->info.traffic.bytes_to_client.add(len);
  a->info.traffic.packets_to_client.add(1);
  return out;
}

}  // namespace callrelay::core
