// Hashing and names for the core's shared value types.
#include "relay/core/types.hpp"

#include <cstring>

namespace callrelay::core {

const char* to_string(Transport t) {
  switch (t) {
    case Transport::kUdp: return "udp";
    case Transport::kTcp: return "tcp";
    case Transport::kTls: return "tls";
  }
  return "unknown";
}

namespace {
// A 64-bit mixer (the splitmix64 finaliser): cheap, and every input bit reaches every output
// bit, so addresses that differ only in a few low bits still spread over the buckets.
constexpr uint64_t mix(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

uint64_t load64(const uint8_t* p) {
  uint64_t v = 0;
  std::memcpy(&v, p, sizeof v);
  return v;
}
}  // namespace

size_t FiveTupleHash::operator()(const FiveTuple& t) const noexcept {
  // The client address and port vary the most; the server side and listener add the rest.
  uint64_t h = mix(load64(t.client.addr.data()) ^ (uint64_t{t.client.port} << 48));
  h = mix(h ^ load64(t.client.addr.data() + 8) ^ static_cast<uint64_t>(t.client.family));
  h = mix(h ^ load64(t.server.addr.data()) ^ (uint64_t{t.server.port} << 32) ^
          (uint64_t{t.listener} << 8) ^ static_cast<uint64_t>(t.transport));
  h = mix(h ^ load64(t.server.addr.data() + 8));
  return static_cast<size_t>(h);
}

}  // namespace callrelay::core
