// The malformed-datagram battery: RFC 8489 framing (20-byte header, 4-byte aligned lengths,
// TLV attributes) broken in every way a parser can trip on, plus RFC 8656 ChannelData framing
// with lengths that overrun the datagram, plus datagrams at the IPv4 UDP maximum.
#include "tests/integration/tools/malformed.hpp"

#include <chrono>
#include <initializer_list>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <random>
#include <thread>
#include <vector>

#include "tests/integration/tools/udp.hpp"

namespace callrelay::integ {
namespace {

using Bytes = std::vector<uint8_t>;

constexpr uint32_t kMagicCookie = 0x2112A442;  // RFC 8489 section 5
constexpr size_t kHeaderSize = 20;
constexpr size_t kMaxUdpPayloadV4 = 65507;  // 65535 - 20 (IPv4) - 8 (UDP)
constexpr uint16_t kBindingRequest = 0x0001;
constexpr uint16_t kAllocateRequest = 0x0003;
constexpr uint16_t kSendIndication = 0x0016;

/// One datagram of the battery; may_succeed is false when any success response is a bug.
struct Probe {
  std::string name;
  Bytes bytes;
  bool may_succeed = false;
};

void put16(Bytes& b, size_t at, uint16_t v) {
  b[at] = static_cast<uint8_t>(v >> 8);
  b[at + 1] = static_cast<uint8_t>(v);
}

uint16_t get16(const Bytes& b, size_t at) {
  return static_cast<uint16_t>((b[at] << 8) | b[at + 1]);
}

class Battery {
 public:
  /// A STUN header with a fresh transaction id and the given (possibly lying) length.
  Bytes header(uint16_t type, uint16_t length) {
    Bytes b(kHeaderSize);
    put16(b, 0, type);
    put16(b, 2, length);
    put16(b, 4, static_cast<uint16_t>(kMagicCookie >> 16));
    put16(b, 6, static_cast<uint16_t>(kMagicCookie & 0xFFFF));
    for (size_t i = 8; i < kHeaderSize; ++i) b[i] = byte();
    return b;
  }

  /// Appends a TLV attribute with declared length `declared` and the given value bytes, padded.
  static void attr(Bytes& b, uint16_t type, uint16_t declared, const Bytes& value, bool pad) {
    const size_t at = b.size();
    b.resize(at + 4);
    put16(b, at, type);
    put16(b, at + 2, declared);
    b.insert(b.end(), value.begin(), value.end());
    while (pad && b.size() % 4 != 0) b.push_back(0);
  }

  /// Sets the header length field to the true body size.
  static void fix_length(Bytes& b) { put16(b, 2, static_cast<uint16_t>(b.size() - kHeaderSize)); }

  Bytes random_bytes(size_t n) {
    Bytes b(n);
    for (auto& x : b) x = byte();
    return b;
  }

  uint8_t byte() { return static_cast<uint8_t>(rng_() & 0xFF); }
  uint32_t next() { return static_cast<uint32_t>(rng_()); }

 private:
  std::mt19937 rng_{20260101};  // fixed seed: the battery is the same on every run
};

void add_truncated(Battery& g, std::vector<Probe>& out) {
  for (size_t n : {0, 1, 2, 3, 4, 8, 19}) {
    Bytes b = g.header(kBindingRequest, 0);
    b.resize(n);
    out.push_back({"truncated header " + std::to_string(n), b});
  }
  for (const uint16_t declared : std::initializer_list<uint16_t>{4, 8, 100, 0xFFFC}) {
    out.push_back({"length overruns datagram " + std::to_string(declared),
                   g.header(kBindingRequest, declared)});
  }
  Bytes odd = g.header(kBindingRequest, 3);
  odd.resize(kHeaderSize + 3);
  out.push_back({"length not a multiple of 4", odd});
}

void add_bad_attributes(Battery& g, std::vector<Probe>& out) {
  Bytes over = g.header(kBindingRequest, 0);
  Battery::attr(over, 0x8022, 100, Bytes(4, 'x'), false);  // SOFTWARE claims 100, has 4
  Battery::fix_length(over);
  out.push_back({"attribute overruns message", over});

  Bytes huge = g.header(kBindingRequest, 0);
  Battery::attr(huge, 0x8022, 0xFFFF, Bytes(8, 'x'), false);
  Battery::fix_length(huge);
  out.push_back({"attribute length 0xFFFF", huge});

  Bytes half = g.header(kBindingRequest, 0);
  half.push_back(0x80);
  half.push_back(0x22);
  half.push_back(0x00);
  half.push_back(0x00);
  half.resize(half.size() + 2);  // 6 body bytes: half an attribute header left over
  Battery::fix_length(half);
  out.push_back({"trailing partial attribute header", half});

  Bytes bad_fp = g.header(kBindingRequest, 0);
  Battery::attr(bad_fp, 0x8028, 4, {0xDE, 0xAD, 0xBE, 0xEF}, true);  // wrong FINGERPRINT
  Battery::fix_length(bad_fp);
  out.push_back({"wrong FINGERPRINT", bad_fp});

  Bytes short_fp = g.header(kBindingRequest, 0);
  Battery::attr(short_fp, 0x8028, 2, {0x01, 0x02}, true);
  Battery::fix_length(short_fp);
  out.push_back({"FINGERPRINT of 2 bytes", short_fp});

  Bytes unknown = g.header(kBindingRequest, 0);
  Battery::attr(unknown, 0x0033, 4, {1, 2, 3, 4}, true);  // unknown comprehension-required
  Battery::fix_length(unknown);
  out.push_back({"unknown comprehension-required attribute", unknown});

  Bytes bad_mi = g.header(kAllocateRequest, 0);
  Battery::attr(bad_mi, 0x0019, 4, {17, 0, 0, 0}, true);    // REQUESTED-TRANSPORT UDP
  Battery::attr(bad_mi, 0x0006, 5, {'a', 'l', 'i', 'c', 'e'}, true);  // USERNAME
  Battery::attr(bad_mi, 0x0008, 10, Bytes(10, 0xAB), true);  // MESSAGE-INTEGRITY of 10 bytes
  Battery::fix_length(bad_mi);
  out.push_back({"MESSAGE-INTEGRITY of 10 bytes", bad_mi});

  Bytes bad_rt = g.header(kAllocateRequest, 0);
  Battery::attr(bad_rt, 0x0019, 2, {17, 0}, true);  // REQUESTED-TRANSPORT of 2 bytes
  Battery::fix_length(bad_rt);
  out.push_back({"REQUESTED-TRANSPORT of 2 bytes", bad_rt});

  Bytes xpa = g.header(kSendIndication, 0);
  Battery::attr(xpa, 0x0012, 3, {0, 1, 2}, true);  // XOR-PEER-ADDRESS of 3 bytes
  Battery::attr(xpa, 0x0013, 4, {1, 2, 3, 4}, true);
  Battery::fix_length(xpa);
  out.push_back({"Send indication with broken XOR-PEER-ADDRESS", xpa});
}

void add_channel_data(Battery& g, std::vector<Probe>& out) {
  // RFC 8656 section 12.4: channel number (0x4000-0x4FFF), length, data.
  for (const uint16_t channel : std::initializer_list<uint16_t>{0x4000, 0x4FFF, 0x5000, 0x7FFF, 0xFFFF}) {
    for (const uint16_t declared : std::initializer_list<uint16_t>{0, 4, 100, 0xFFFF}) {
      Bytes b(4);
      put16(b, 0, channel);
      put16(b, 2, declared);
      Bytes tail = g.random_bytes(4);
      b.insert(b.end(), tail.begin(), tail.end());
      out.push_back({"ChannelData " + std::to_string(channel) + " len " + std::to_string(declared),
                     b});
    }
  }
  Bytes three = {0x40, 0x00, 0x00};
  out.push_back({"ChannelData of 3 bytes", three});
}

void add_jumbo(Battery& g, std::vector<Probe>& out) {
  out.push_back({"64 KiB of zeros", Bytes(kMaxUdpPayloadV4, 0)});
  out.push_back({"64 KiB of garbage", g.random_bytes(kMaxUdpPayloadV4)});
  Bytes lying = g.header(kBindingRequest, 0xFFFC);
  lying.resize(kMaxUdpPayloadV4, 0x41);
  out.push_back({"64 KiB Binding with length beyond datagram", lying});
  // Well framed: one SOFTWARE attribute filling the datagram (servers may accept or refuse).
  Bytes software = g.header(kBindingRequest, 0);
  Battery::attr(software, 0x8022, 65480, Bytes(65480, 'y'), true);
  Battery::fix_length(software);
  out.push_back({"64 KiB Binding with a huge SOFTWARE", software, true});
  Bytes send = g.header(kSendIndication, 0);
  Battery::attr(send, 0x0013, 65000, g.random_bytes(65000), true);
  Battery::fix_length(send);
  out.push_back({"64 KiB Send indication without allocation", send});
  Bytes channel(kMaxUdpPayloadV4, 0x55);
  put16(channel, 0, 0x4001);
  put16(channel, 2, 0xFFFF);
  out.push_back({"64 KiB ChannelData with length beyond datagram", channel});
}

void add_fuzz(Battery& g, std::vector<Probe>& out) {
  for (int i = 0; i < 150; ++i) {
    out.push_back({"garbage " + std::to_string(i), g.random_bytes(g.next() % 1500)});
  }
  // STUN-shaped: valid cookie and consistent length, random type and random TLVs whose lengths
  // may or may not fit. A success answer is possible for a lucky Binding; only crashes count.
  for (int i = 0; i < 150; ++i) {
    Bytes b = g.header(static_cast<uint16_t>(g.next() & 0x3FFF), 0);
    const int attrs = static_cast<int>(g.next() % 6);
    for (int a = 0; a < attrs; ++a) {
      const auto len = static_cast<uint16_t>(g.next() % 64);
      const auto declared = (g.next() % 4 == 0) ? static_cast<uint16_t>(g.next()) : len;
      Battery::attr(b, static_cast<uint16_t>(g.next()), declared, g.random_bytes(len), true);
    }
    Battery::fix_length(b);
    out.push_back({"random STUN " + std::to_string(i), b, true});
  }
}

std::string txid_of(const Bytes& b, size_t size) {
  if (size < kHeaderSize) return {};
  return std::string(b.begin() + 8, b.begin() + kHeaderSize);
}

/// Reads whatever answers arrive; returns the number of success responses to probes that must
/// not succeed.
int drain(UdpSocket& sock, const std::map<std::string, size_t>& by_txid,
          const std::vector<Probe>& probes, int wait_ms, int& answers) {
  int bad = 0;
  Bytes buf(70000);
  while (const auto got = sock.receive(buf, wait_ms)) {
    ++answers;
    const auto it = by_txid.find(txid_of(buf, *got));
    if (it == by_txid.end() || *got < kHeaderSize) continue;
    const uint16_t type = get16(buf, 0);
    const bool success = (type & 0x0110) == 0x0100;  // RFC 8489 section 5: class bits C1 C0
    const Probe& probe = probes[it->second];
    if (success && !probe.may_succeed) {
      std::fprintf(stderr, "success response (type 0x%04x) to malformed probe '%s'\n",
                   type, probe.name.c_str());
      ++bad;
    }
  }
  return bad;
}

/// Sends a well-formed Binding request and checks the success response and its
/// XOR-MAPPED-ADDRESS port (RFC 8489 section 14.2).
bool binding_still_works(Battery& g, UdpSocket& sock, const std::string& host, uint16_t port) {
  Bytes buf(70000);
  for (int attempt = 0; attempt < 5; ++attempt) {
    const Bytes req = g.header(kBindingRequest, 0);
    sock.send_to(host, port, req.data(), req.size());
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    while (std::chrono::steady_clock::now() < deadline) {
      const auto got = sock.receive(buf, 200);
      if (!got || *got < kHeaderSize || txid_of(buf, *got) != txid_of(req, req.size())) continue;
      if (get16(buf, 0) != 0x0101) {
        std::fprintf(stderr, "FAIL: Binding answered with type 0x%04x\n", get16(buf, 0));
        return false;
      }
      for (size_t at = kHeaderSize; at + 8 <= *got;) {
        const uint16_t type = get16(buf, at);
        const uint16_t len = get16(buf, at + 2);
        if (type == 0x0020 && len >= 8) {
          const auto mapped = static_cast<uint16_t>(get16(buf, at + 6) ^ (kMagicCookie >> 16));
          if (mapped == sock.local_port()) return true;
          std::fprintf(stderr, "FAIL: XOR-MAPPED-ADDRESS port %u, expected %u\n", mapped,
                       sock.local_port());
          return false;
        }
        at += 4 + ((len + 3u) & ~3u);
      }
      std::fprintf(stderr, "FAIL: Binding success without XOR-MAPPED-ADDRESS\n");
      return false;
    }
  }
  std::fprintf(stderr, "FAIL: no answer to a valid Binding request after the battery\n");
  return false;
}

}  // namespace

int run_malformed(const std::string& host, uint16_t port) {
  Battery gen;
  std::vector<Probe> probes;
  add_truncated(gen, probes);
  add_bad_attributes(gen, probes);
  add_channel_data(gen, probes);
  add_jumbo(gen, probes);
  add_fuzz(gen, probes);

  UdpSocket sock(host.find(':') == std::string::npos ? "127.0.0.1" : "::1", 0);
  if (!sock.ok()) return 1;
  std::map<std::string, size_t> by_txid;
  int bad = 0;
  int answers = 0;
  for (size_t i = 0; i < probes.size(); ++i) {
    const Probe& p = probes[i];
    if (p.bytes.size() >= kHeaderSize) by_txid[txid_of(p.bytes, p.bytes.size())] = i;
    if (!sock.send_to(host, port, p.bytes.data(), p.bytes.size())) return 1;
    bad += drain(sock, by_txid, probes, 0, answers);
    if (i % 16 == 15) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  bad += drain(sock, by_txid, probes, 500, answers);
  std::printf("sent %zu malformed datagrams, %d answers\n", probes.size(), answers);
  if (bad > 0 && std::getenv("INTEG_MALFORMED_LENIENT") != nullptr) {
    std::printf("INTEG_MALFORMED_LENIENT set: %d success answers to malformed probes tolerated\n",
                bad);
    bad = 0;
  }
  if (bad > 0) std::fprintf(stderr, "FAIL: %d malformed probes got a success response\n", bad);
  if (!binding_still_works(gen, sock, host, port)) return 1;
  std::printf("valid Binding answered after the battery\n");
  return bad == 0 ? 0 : 1;
}

}  // namespace callrelay::integ
