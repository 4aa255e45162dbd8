#include "relay/core/abuse.hpp"

#include <openssl/rand.h>

#include <algorithm>
#include <bit>
#include <stdexcept>

namespace callrelay::core {
namespace {

uint64_t load_le64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

/// SipHash-2-4 (Aumasson and Bernstein) of exactly 24 bytes: a keyed hash whose outputs an
/// attacker who does not know the key cannot predict, so it cannot pick addresses that collide.
uint64_t siphash24(const std::array<uint64_t, 2>& key, const std::array<uint8_t, 24>& in) {
  uint64_t v0 = 0x736f6d6570736575ULL ^ key[0];
  uint64_t v1 = 0x646f72616e646f6dULL ^ key[1];
  uint64_t v2 = 0x6c7967656e657261ULL ^ key[0];
  uint64_t v3 = 0x7465646279746573ULL ^ key[1];
  const auto round = [&] {
    v0 += v1; v1 = std::rotl(v1, 13); v1 ^= v0; v0 = std::rotl(v0, 32);
    v2 += v3; v3 = std::rotl(v3, 16); v3 ^= v2;
    v0 += v3; v3 = std::rotl(v3, 21); v3 ^= v0;
    v2 += v1; v1 = std::rotl(v1, 17); v1 ^= v2; v2 = std::rotl(v2, 32);
  };
  const auto absorb = [&](uint64_t m) {
    v3 ^= m;
    round();
    round();
    v0 ^= m;
  };
  for (size_t i = 0; i < in.size(); i += 8) absorb(load_le64(in.data() + i));
  absorb(static_cast<uint64_t>(in.size()) << 56);  // the length block (no tail: 24 = 3 * 8)
  v2 ^= 0xff;
  for (int i = 0; i < 4; ++i) round();
  return v0 ^ v1 ^ v2 ^ v3;
}

uint32_t to_milli(uint32_t v) { return static_cast<uint32_t>(std::min<uint64_t>(v * 1000ULL, UINT32_MAX)); }

size_t round_up_pow2(uint32_t n) { return std::bit_ceil(std::max<uint32_t>(n, 1)); }

}  // namespace

ReflectionGuard::ReflectionGuard(const AbuseConfig& cfg, const std::array<uint8_t, 16>& key)
    : cfg_(cfg), slots_(round_up_pow2(cfg.table_slots)), mask_(slots_.size() - 1) {
  key_[0] = load_le64(key.data());
  key_[1] = load_le64(key.data() + 8);
}

ReflectionGuard::ReflectionGuard(const AbuseConfig& cfg)
    : ReflectionGuard(cfg, [] {
        std::array<uint8_t, 16> k{};
        if (RAND_bytes(k.data(), static_cast<int>(k.size())) != 1) {
          throw std::runtime_error(
              "cannot draw the key of the unauthenticated-answer table from the system's random "
              "source");
        }
        return k;
      }()) {}

void ReflectionGuard::reconfigure(const AbuseConfig& cfg) {
  const size_t slots = slots_.size();
  cfg_ = cfg;
  cfg_.table_slots = static_cast<uint32_t>(slots);  // the table keeps its size
}

size_t ReflectionGuard::slot_of(const Endpoint& source) const {
  // The key is the address without the port (a spoofer picks ports freely); IPv6 sources by
  // their /64, the smallest prefix a site is given (RFC 6177), since one host may hold many.
  std::array<uint8_t, 24> in{};
  in[0] = static_cast<uint8_t>(source.family);
  const size_t n = source.is_v4() ? 4 : 8;
  std::copy_n(source.addr.begin(), n, in.begin() + 8);
  return static_cast<size_t>(siphash24(key_, in)) & mask_;
}

void ReflectionGuard::refill(Slot& s, TimeMs now) const {
  const uint32_t allowance_cap = to_milli(cfg_.allowance_bytes);
  const uint32_t challenge_cap = to_milli(cfg_.challenge_burst);
  if (s.fresh != 0) {
    s = Slot{0, allowance_cap, challenge_cap, 0, now};
    return;
  }
  // Monotonic time; a step back (tests, a reordered batch) refills nothing.
  const TimeMs elapsed = std::clamp<TimeMs>(now - s.last, 0, 3'600'000);
  if (elapsed == 0) return;
  s.last = now;
  const auto add = [elapsed](uint32_t tokens, uint32_t per_s, uint32_t cap) {
    // per_s bytes per second = per_s milli-bytes per millisecond.
    const uint64_t v = tokens + static_cast<uint64_t>(per_s) * static_cast<uint64_t>(elapsed);
    return static_cast<uint32_t>(std::min<uint64_t>(v, cap));
  };
  s.allowance_milli = add(s.allowance_milli, cfg_.allowance_bytes_per_s, allowance_cap);
  s.challenges_milli = add(s.challenges_milli, cfg_.challenges_per_s, challenge_cap);
}

size_t ReflectionGuard::credit(const Endpoint& source, size_t bytes, TimeMs now) {
  const size_t i = slot_of(source);
  Slot& s = slots_[i];
  refill(s, now);
  s.credit = static_cast<uint32_t>(std::min<uint64_t>(uint64_t{s.credit} + bytes, kMaxCredit));
  return i;
}

bool ReflectionGuard::allow(size_t slot, size_t bytes, Answer kind, TimeMs now, Refusal* why) {
  const auto refuse = [why](Refusal r) {
    if (why != nullptr) *why = r;
    return false;
  };
  if (why != nullptr) *why = Refusal::kNone;
  if (!cfg_.reflection_enabled) return true;
  Slot& s = slots_[slot & mask_];
  refill(s, now);
  const bool challenge = kind == Answer::kChallenge && cfg_.challenges_per_s != 0;
  if (challenge && s.challenges_milli < 1000) return refuse(Refusal::kChallengeRate);
  // Credit first (bytes the sources sent), then the allowance.
  const uint64_t from_allowance = bytes > s.credit ? bytes - s.credit : 0;
  if (from_allowance * 1000 > s.allowance_milli) return refuse(Refusal::kBytes);
  s.credit -= static_cast<uint32_t>(bytes - from_allowance);
  s.allowance_milli -= static_cast<uint32_t>(from_allowance * 1000);
  if (challenge) s.challenges_milli -= 1000;
  return true;
}

}  // namespace callrelay::core
