#include "bench/timers/core_driver.hpp"

#include <array>
#include <cstring>

#include "relay/stun/builder.hpp"
#include "relay/stun/channel_data.hpp"
#include "relay/stun/integrity.hpp"
#include "relay/stun/message.hpp"

namespace callrelay::bench {

namespace {

constexpr char kRealm[] = "bench.example";
constexpr char kSecret[] = "bench-secret";
constexpr uint16_t kChannel = 0x4000;

core::AuthConfig bench_auth() {
  core::AuthConfig a;
  a.realm = kRealm;
  a.rest_secrets = {kSecret};
  a.password_algorithms = {stun::PasswordAlgorithm::kMd5};
  return a;
}

std::array<uint8_t, 32> nonce_key() {
  std::array<uint8_t, 32> k{};
  for (size_t i = 0; i < k.size(); ++i) k[i] = static_cast<uint8_t>(i * 13 + 5);
  return k;
}

core::CoreConfig bench_core() {
  core::CoreConfig cfg;
  cfg.max_allocations_per_user = 0;  // every client is the same REST user
  cfg.abuse.reflection_enabled = false;  // one answer per request, whatever the source
  cfg.media_quality = false;
  return cfg;
}

}  // namespace

std::optional<core::RelayPorts::Opened> FreeListPorts::open(core::Family family,
                                                            const core::Endpoint& /*server*/,
                                                            bool /*even*/, bool /*reserve*/) {
  Opened o;
  if (free_.empty()) {
    o.relay.id = next_++;
  } else {
    o.relay.id = free_.back();
    free_.pop_back();
  }
  o.relay.address = *core::Endpoint::parse("192.0.2.1:1");
  o.relay.address.family = family;
  o.relay.address.port = static_cast<uint16_t>(1024 + o.relay.id % 60000);
  last_ = o.relay.id;
  ++open_;
  return o;
}

void FreeListPorts::close(core::RelayId id) {
  free_.push_back(id);
  --open_;
}

CoreDriver::CoreDriver(core::TimeMs epoch, core::Observer* observer)
    : epoch_(epoch),
      auth_(bench_auth()),
      nonces_(nonce_key(), 600),
      request_buf_(1024),
      peer_buf_(core::kPeerHeadroom + 1500 + core::kPeerTailroom) {
  server_ = std::make_unique<core::TurnServer>(bench_core(), auth_, nonces_, policy_, ports_,
                                               observer);
}

BenchClient CoreDriver::client(uint32_t index) const {
  BenchClient c;
  const std::string addr = "10." + std::to_string((index >> 16) & 0xFF) + "." +
                           std::to_string((index >> 8) & 0xFF) + "." +
                           std::to_string(index & 0xFF) + ":40000";
  c.tuple.client = *core::Endpoint::parse(addr);
  c.tuple.server = *core::Endpoint::parse("192.0.2.1:3478");
  c.username = std::to_string(epoch_ / 1000 + 86'400) + ":bench";
  c.password = core::Authenticator::rest_password(kSecret, c.username);
  return c;
}

template <typename F>
int CoreDriver::request(BenchClient& c, uint16_t method, F&& attrs, core::TimeMs now) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    stun::TransactionId tid{};
    ++c.serial;
    std::memcpy(tid.data(), &c.serial, sizeof c.serial);
    std::memcpy(tid.data() + 4, &c.tuple.client.port, sizeof c.tuple.client.port);
    const bool sign = !c.nonce.empty();
    stun::MessageBuilder b(request_buf_, static_cast<stun::Method>(method), stun::Class::kRequest,
                           tid);
    attrs(b);
    if (sign) {
      b.add_string(stun::attr::kUsername, c.username);
      b.add_string(stun::attr::kRealm, kRealm);
      b.add_string(stun::attr::kNonce, c.nonce);
      b.add_integrity(stun::long_term_key(c.username, kRealm, c.password));
    }
    const size_t n = b.finish();
    const core::Output out =
        server_->on_client_packet(c.tuple, std::span<const uint8_t>(request_buf_.data(), n), now);
    if (out.kind != core::Output::Kind::kToClient) return -1;
    const auto msg = stun::MessageView::parse(out.data);
    if (!msg) return -1;
    if (msg->cls() == stun::Class::kSuccess) return 0;
    const auto err = msg->error_code();
    const int code = err ? err->code : -1;
    const auto nonce = msg->string(stun::attr::kNonce);
    if ((code == 401 && !sign) || code == 438) {
      if (!nonce) return code;
      c.nonce = std::string(*nonce);  // the 401 round, or a stale nonce: once more
      continue;
    }
    return code;
  }
  return -1;
}

bool CoreDriver::allocate(BenchClient& c, uint32_t lifetime_s, const core::Endpoint& peer,
                          core::TimeMs now) {
  const int code = request(c, static_cast<uint16_t>(stun::Method::kAllocate),
                           [&](stun::MessageBuilder& b) {
                             b.add_requested_transport(17);
                             b.add_u32(stun::attr::kLifetime, lifetime_s);
                           },
                           now);
  if (code != 0) return false;
  c.relay = ports_.last_opened();
  return channel_bind(c, peer, now);
}

bool CoreDriver::create_permission(BenchClient& c, const core::Endpoint& peer, core::TimeMs now) {
  return request(c, static_cast<uint16_t>(stun::Method::kCreatePermission),
                 [&](stun::MessageBuilder& b) {
                   b.add_xor_address(stun::attr::kXorPeerAddress, peer);
                 },
                 now) == 0;
}

bool CoreDriver::channel_bind(BenchClient& c, const core::Endpoint& peer, core::TimeMs now) {
  return request(c, static_cast<uint16_t>(stun::Method::kChannelBind),
                 [&](stun::MessageBuilder& b) {
                   b.add_channel_number(kChannel);
                   b.add_xor_address(stun::attr::kXorPeerAddress, peer);
                 },
                 now) == 0;
}

bool CoreDriver::refresh(BenchClient& c, uint32_t lifetime_s, core::TimeMs now) {
  return request(c, static_cast<uint16_t>(stun::Method::kRefresh),
                 [&](stun::MessageBuilder& b) { b.add_u32(stun::attr::kLifetime, lifetime_s); },
                 now) == 0;
}

bool CoreDriver::round_trip(const BenchClient& c, const core::Endpoint& peer, size_t size,
                            core::TimeMs now) {
  std::array<uint8_t, 4 + 1500> frame{};
  size = std::min<size_t>(size, 1500);
  stun::write_channel_data_header(std::span<uint8_t, 4>(frame.data(), 4), kChannel,
                                  static_cast<uint16_t>(size));
  const core::Output to_peer = server_->on_client_packet(
      c.tuple, std::span<const uint8_t>(frame.data(), 4 + size), now);
  if (to_peer.kind != core::Output::Kind::kToPeer) return false;
  const core::Output to_client = server_->on_peer_packet(c.relay, peer, peer_buf_, size, now);
  return to_client.kind == core::Output::Kind::kToClient;
}

}  // namespace callrelay::bench
