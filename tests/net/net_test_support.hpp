// A blocking UDP socket with deadlines and a small TURN client, for driving a real server on
// loopback from a test. Every wait is bounded (no sleeps): a missing answer fails the test.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "relay/core/observer.hpp"
#include "relay/stun/builder.hpp"
#include "relay/stun/endpoint.hpp"
#include "relay/stun/integrity.hpp"
#include "relay/stun/message.hpp"

namespace callrelay::net::testing {

inline constexpr int kWaitMs = 2000;  ///< longest a test waits for one datagram

stun::Endpoint loopback(uint16_t port);
/// Whether a UDP socket can bind [::1]. The IPv6 tests require it (as CI's hosts and the IPv6
/// integration tests do): without it they fail with kNoIpv6, they do not pass by skipping.
bool ipv6_available();
inline constexpr const char* kNoIpv6 = "this test needs IPv6 loopback ([::1]) and the host has none";

/// A UDP socket bound to 127.0.0.1 (port 0 unless given).
class UdpSocket {
 public:
  explicit UdpSocket(uint16_t port = 0);
  explicit UdpSocket(const stun::Endpoint& bind);
  ~UdpSocket();
  UdpSocket(const UdpSocket&) = delete;
  UdpSocket& operator=(const UdpSocket&) = delete;

  int fd() const { return fd_; }
  const stun::Endpoint& local() const { return local_; }
  bool ok() const { return fd_ >= 0; }
  void send_to(const stun::Endpoint& to, std::span<const uint8_t> data) const;
  /// The next datagram within `timeout_ms`, or nullopt.
  std::optional<std::vector<uint8_t>> receive(int timeout_ms = kWaitMs,
                                              stun::Endpoint* from = nullptr) const;

 private:
  int fd_ = -1;
  stun::Endpoint local_;
};

std::vector<uint8_t> bytes(std::string_view s);

/// A parsed response that owns its bytes.
struct Response {
  std::vector<uint8_t> raw;
  std::optional<stun::MessageView> msg;
  uint16_t error_code() const;  ///< 0 for a success response
};

/// A TURN client over one UdpSocket with REST credentials; signs requests once it has a nonce.
class TurnClient {
 public:
  /// `local`: the address the client's socket binds (127.0.0.1:0 by default).
  TurnClient(stun::Endpoint server, std::string username, std::string password, std::string realm,
             const stun::Endpoint& local = loopback(0));

  using Attrs = std::function<void(stun::MessageBuilder&)>;
  /// Sends a request and waits for the response with its transaction id. `sign`: add USERNAME,
  /// REALM, NONCE and MESSAGE-INTEGRITY (a 401/438 answer updates the nonce and retries once).
  std::optional<Response> request(stun::Method m, const Attrs& attrs, bool sign = true);
  /// Allocate with the 401 round; returns the relayed address.
  std::optional<stun::Endpoint> allocate(const Attrs& extra = {});
  /// Sends an indication or ChannelData as is.
  void send_raw(std::span<const uint8_t> data) { socket_.send_to(server_, data); }
  std::vector<uint8_t> build(stun::Method m, stun::Class c, const Attrs& attrs, bool sign);

  UdpSocket& socket() { return socket_; }
  const stun::Endpoint& server() const { return server_; }
  std::optional<Response> last_401;  ///< the first challenge seen

 private:
  std::optional<Response> exchange(const std::vector<uint8_t>& req, const stun::TransactionId& tid);
  UdpSocket socket_;
  stun::Endpoint server_;
  std::string username_, password_, realm_, nonce_;
  stun::TransactionId tid_{};
  uint32_t counter_ = 0;
};

/// Records ended allocations (on worker threads) and lets the test wait for them, with a
/// deadline: a wait that runs out returns what was seen, and the test's checks fail.
class EndWatcher : public core::Observer {
 public:
  struct Ended {
    std::string call_id;
    std::string user_id;
    core::EndReason reason;
  };
  void on_allocation_ended(const core::AllocationInfo& a, core::EndReason reason,
                           core::TimeMs) override {
    {
      const std::lock_guard lock(mu_);
      ended_.push_back({a.call_id, a.user_id, reason});
    }
    cv_.notify_all();
  }
  /// Waits up to kWaitMs for `n` ended allocations; returns those seen.
  std::vector<Ended> wait_for(size_t n) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, std::chrono::milliseconds(kWaitMs), [&] { return ended_.size() >= n; });
    return ended_;
  }
  std::vector<Ended> seen() {
    const std::lock_guard lock(mu_);
    return ended_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Ended> ended_;
};

}  // namespace callrelay::net::testing
