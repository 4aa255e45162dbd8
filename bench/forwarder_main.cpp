// bench_forwarder: the floor the relay is compared with. A bare UDP forwarder with no TURN at
// all: clients send ChannelData-framed datagrams to one port; the forwarder strips the 4-byte
// header and sends the payload to the peer from a socket of that client's own (as a relay
// socket would); what comes back on that socket is framed again and sent to the client.
// Single thread, epoll, recvmmsg/sendmmsg, no copy of the payload.
//
//   bench_forwarder --listen 127.0.0.1:13478 --peer 127.0.0.1:19000 [--port-min 20000]
//                   [--peer-addresses N]
//
// With --peer-addresses N the k-th client to appear gets the peer's address + k mod N, as
// bench_loadgen --peer-addresses gives the relay's clients.
#include <sys/epoll.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <exception>
#include <stdexcept>
#include <unordered_map>
#include <vector>

#include "bench/common/common.hpp"

namespace {

using namespace callrelay::bench;

constexpr size_t kBufferSize = 2048;
constexpr size_t kBatch = 64;
constexpr size_t kOutBatch = 256;
constexpr uint32_t kListenerTag = 0xFFFFFFFF;
constexpr size_t kHeader = 4;  // ChannelData header (RFC 8656 section 12.4)
constexpr uint16_t kChannel = 0x4000;

struct ClientSlot {
  int fd = -1;
  sockaddr_in addr{};
};

class Forwarder {
 public:
  Forwarder(const sockaddr_in& listen, const sockaddr_in& peer, uint32_t peer_addresses,
            uint16_t port_min)
      : peer_(peer),
        peer_addresses_(peer_addresses),
        next_port_(port_min),
        in_(kBatch, kBufferSize),
        to_peer_(kBatch, 0),
        out_(kOutBatch, kBufferSize) {
    listener_ = open_udp(listen, nullptr, 4 << 20);
    if (listener_ < 0) throw std::runtime_error("cannot bind " + to_string(listen));
    epoll_ = epoll_create1(EPOLL_CLOEXEC);
    watch(listener_, kListenerTag);
  }

  void run() {
    epoll_event events[kBatch];
    while (!stop_requested()) {
      const int n = epoll_wait(epoll_, events, static_cast<int>(kBatch), 100);
      for (int i = 0; i < n; ++i) {
        const uint32_t tag = events[i].data.u32;
        if (tag == kListenerTag) {
          from_clients();
        } else {
          from_peer(tag);
        }
      }
      flush_out();
    }
  }

 private:
  void watch(int fd, uint32_t tag) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u32 = tag;
    epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &ev);
  }

  static uint64_t key_of(const sockaddr_in& a) {
    return (static_cast<uint64_t>(a.sin_addr.s_addr) << 16) | a.sin_port;
  }

  // Finds the client's own socket towards the peer, opening one on first contact.
  int slot_for(const sockaddr_in& from) {
    const auto it = index_.find(key_of(from));
    if (it != index_.end()) return static_cast<int>(it->second);
    sockaddr_in local{};
    local.sin_family = AF_INET;
    local.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sockaddr_in peer = peer_;
    peer.sin_addr.s_addr = htonl(ntohl(peer_.sin_addr.s_addr) +
                                 static_cast<uint32_t>(slots_.size() % peer_addresses_));
    for (int tries = 0; tries < 1000; ++tries) {
      local.sin_port = htons(next_port_++);
      const int fd = open_udp(local, &peer, 0);
      if (fd < 0) continue;
      const auto idx = static_cast<uint32_t>(slots_.size());
      slots_.push_back({fd, from});
      index_.emplace(key_of(from), idx);
      watch(fd, idx);
      return static_cast<int>(idx);
    }
    return -1;
  }

  void from_clients() {
    for (size_t i = 0; i < kBatch; ++i) in_.prepare_recv(i);
    const int n = recvmmsg(listener_, in_.hdrs(), kBatch, MSG_DONTWAIT, nullptr);
    if (n <= 0) return;
    int run_slot = -1;
    size_t run_len = 0;
    for (size_t i = 0; i < static_cast<size_t>(n); ++i) {
      const uint8_t* b = in_.buffer(i);
      const size_t len = in_.hdr(i).msg_len;
      if (len < kHeader || (b[0] & 0xC0) != 0x40) continue;
      const size_t payload = static_cast<size_t>((b[2] << 8) | b[3]);
      if (payload + kHeader > len) continue;
      const int slot = slot_for(in_.addr(i));
      if (slot < 0) continue;
      if (slot != run_slot && run_len > 0) {
        send_all(slots_[static_cast<size_t>(run_slot)].fd, to_peer_.hdrs(), run_len);
        run_len = 0;
      }
      run_slot = slot;
      to_peer_.prepare_send(run_len++, b + kHeader, payload, nullptr);
    }
    if (run_len > 0) send_all(slots_[static_cast<size_t>(run_slot)].fd, to_peer_.hdrs(), run_len);
  }

  void from_peer(uint32_t slot) {
    if (out_count_ == kOutBatch) flush_out();
    const size_t room = kOutBatch - out_count_;
    for (size_t i = 0; i < room; ++i) out_.prepare_recv(out_count_ + i, kHeader);
    const int n = recvmmsg(slots_[slot].fd, out_.hdrs() + out_count_, static_cast<unsigned>(room),
                           MSG_DONTWAIT, nullptr);
    if (n <= 0) return;
    for (size_t i = out_count_; i < out_count_ + static_cast<size_t>(n); ++i) {
      const size_t len = out_.hdr(i).msg_len;
      uint8_t* b = out_.buffer(i);
      b[0] = kChannel >> 8;
      b[1] = kChannel & 0xFF;
      b[2] = static_cast<uint8_t>(len >> 8);
      b[3] = static_cast<uint8_t>(len & 0xFF);
      out_.prepare_send(i, b, len + kHeader, &slots_[slot].addr);
    }
    out_count_ += static_cast<size_t>(n);
  }

  void flush_out() {
    if (out_count_ > 0) send_all(listener_, out_.hdrs(), out_count_);
    out_count_ = 0;
  }

  sockaddr_in peer_;
  uint32_t peer_addresses_;
  uint16_t next_port_;
  int listener_ = -1;
  int epoll_ = -1;
  MsgBatch in_;
  MsgBatch to_peer_;
  MsgBatch out_;
  size_t out_count_ = 0;
  std::vector<ClientSlot> slots_;
  std::unordered_map<uint64_t, uint32_t> index_;
};

}  // namespace

int main(int argc, char** argv) {
  try {
    install_stop_handlers();
    Args args(argc, argv);
    const sockaddr_in listen = parse_addr(args.str("listen", "127.0.0.1:13478"));
    const sockaddr_in peer = parse_addr(args.str("peer", "127.0.0.1:19000"));
    const auto port_min = static_cast<uint16_t>(args.num("port-min", 20000));
    const double peer_addresses = args.num("peer-addresses", 1);
    args.finish();
    if (peer_addresses < 1 || peer_addresses > 254) {
      throw std::invalid_argument("--peer-addresses must be 1..254");
    }
    Forwarder fwd(listen, peer, static_cast<uint32_t>(peer_addresses), port_min);
    std::fprintf(stderr, "bench_forwarder listening udp %s\nready\n", to_string(listen).c_str());
    fwd.run();
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_forwarder: %s\n", e.what());
    return 2;
  }
}
