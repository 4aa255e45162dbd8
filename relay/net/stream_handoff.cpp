#include "relay/net/stream_handoff.hpp"

#include <unistd.h>

#include "relay/net/stream_guard.hpp"
#include "relay/stun/message.hpp"

namespace callrelay::net {

namespace {
std::atomic<uint64_t> handoffs{0};
}  // namespace

bool ConnectionOwners::claim(core::ConnectionId cid, unsigned worker) {
  const std::lock_guard lock(mu_);
  const auto [it, added] = owners_.emplace(cid, worker);
  return added || it->second == worker;
}

void ConnectionOwners::release(core::ConnectionId cid, unsigned worker) {
  const std::lock_guard lock(mu_);
  const auto it = owners_.find(cid);
  if (it != owners_.end() && it->second == worker) owners_.erase(it);
}

std::optional<unsigned> ConnectionOwners::owner(core::ConnectionId cid) const {
  const std::lock_guard lock(mu_);
  const auto it = owners_.find(cid);
  if (it == owners_.end()) return std::nullopt;
  return it->second;
}

size_t ConnectionOwners::size() const {
  const std::lock_guard lock(mu_);
  return owners_.size();
}

StreamHandoff::~StreamHandoff() {
  if (ssl != nullptr) SSL_free(ssl);
  if (fd >= 0) ::close(fd);
  if (guard != nullptr) guard->release(client);
}

std::optional<core::ConnectionId> connection_bind_target(std::span<const uint8_t> frame) {
  // Every STUN frame of a control connection passes here (Send indications too): look at the
  // message type before parsing (the parse then checks every length).
  constexpr uint16_t kType =
      stun::message_type(stun::Method::kConnectionBind, stun::Class::kRequest);
  if (frame.size() < 20 || frame[0] != (kType >> 8) || frame[1] != (kType & 0xFF))
    return std::nullopt;
  const auto msg = stun::MessageView::parse(frame);
  if (!msg || msg->method() != stun::Method::kConnectionBind ||
      msg->cls() != stun::Class::kRequest) {
    return std::nullopt;
  }
  return msg->u32(stun::attr::kConnectionId);
}

uint64_t stream_handoffs() { return handoffs.load(std::memory_order_relaxed); }
void count_stream_handoff() { handoffs.fetch_add(1, std::memory_order_relaxed); }

}  // namespace callrelay::net
