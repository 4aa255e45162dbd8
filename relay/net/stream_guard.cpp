#include "relay/net/stream_guard.hpp"

#include <sys/resource.h>

#include <algorithm>
#include <string_view>

namespace callrelay::net {

uint64_t raise_descriptor_limit() {
  rlimit r{};
  if (::getrlimit(RLIMIT_NOFILE, &r) != 0) return 1024;
  if (r.rlim_cur < r.rlim_max) {
    rlimit raised = r;
    raised.rlim_cur = r.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) r = raised;
  }
  return r.rlim_cur == RLIM_INFINITY ? UINT64_MAX : static_cast<uint64_t>(r.rlim_cur);
}

StreamGuard::StreamGuard(const core::AbuseConfig& cfg, uint64_t soft_nofile,
                         base::LimitCounters* counters)
    : cfg_(cfg), soft_nofile_(soft_nofile), counters_(counters) {}

size_t StreamGuard::KeyHash::operator()(const Key& k) const noexcept {
  return std::hash<std::string_view>{}(
      std::string_view(reinterpret_cast<const char*>(k.bytes.data()), k.bytes.size()));
}

StreamGuard::Key StreamGuard::key_of(const stun::Endpoint& source) {
  // IPv6 by /64: a host is given a whole /64 and can pick addresses in it freely.
  Key k;
  k.bytes[0] = static_cast<uint8_t>(source.family);
  std::copy_n(source.addr.begin(), source.is_v4() ? 4 : 8, k.bytes.begin() + 1);
  return k;
}

uint64_t StreamGuard::reserve_locked() const {
  return std::min<uint64_t>(cfg_.fd_reserve, soft_nofile_ / 2);
}

uint64_t StreamGuard::reserve() const {
  const std::lock_guard<std::mutex> lock(mu_);
  return reserve_locked();
}

StreamGuard::Verdict StreamGuard::refuse(Verdict v) {
  if (counters_ == nullptr) return v;
  switch (v) {
    case Verdict::kPerAddress: counters_->hit(base::Limit::kTcpPerAddress); break;
    case Verdict::kTotal: counters_->hit(base::Limit::kTcpTotal); break;
    case Verdict::kTlsRate: counters_->hit(base::Limit::kTlsHandshakeRate); break;
    case Verdict::kFdReserve: counters_->hit(base::Limit::kFdReserve); break;
    case Verdict::kAccept: break;
  }
  return v;
}

bool StreamGuard::take_handshake(int64_t now_ms) {
  if (cfg_.tls_handshakes_per_s == 0) return true;
  const double burst = 2.0 * cfg_.tls_handshakes_per_s;
  if (handshake_last_ == INT64_MIN) {
    handshake_tokens_ = burst;
  } else if (now_ms > handshake_last_) {
    handshake_tokens_ = std::min(
        burst, handshake_tokens_ + static_cast<double>(now_ms - handshake_last_) *
                                       cfg_.tls_handshakes_per_s / 1000.0);
  }
  handshake_last_ = std::max(handshake_last_, now_ms);
  if (handshake_tokens_ < 1.0) return false;
  handshake_tokens_ -= 1.0;
  return true;
}

StreamGuard::Verdict StreamGuard::admit(const stun::Endpoint& source, int fd, bool tls,
                                        int64_t now_ms) {
  const std::lock_guard<std::mutex> lock(mu_);
  // The kernel hands out the lowest free descriptor: one this high means every descriptor
  // below it is taken, so fewer than the reserve are left for relay sockets.
  if (fd >= 0 && static_cast<uint64_t>(fd) + reserve_locked() >= soft_nofile_) {
    return refuse(Verdict::kFdReserve);
  }
  if (cfg_.tcp_max_total != 0 && open_ >= cfg_.tcp_max_total) return refuse(Verdict::kTotal);
  const Key key = key_of(source);
  const auto it = per_address_.find(key);
  const uint32_t have = it == per_address_.end() ? 0 : it->second;
  if (cfg_.tcp_max_per_address != 0 && have >= cfg_.tcp_max_per_address) {
    return refuse(Verdict::kPerAddress);
  }
  if (tls && !take_handshake(now_ms)) return refuse(Verdict::kTlsRate);
  if (it == per_address_.end()) {
    per_address_.emplace(key, 1);
  } else {
    ++it->second;
  }
  ++open_;
  return Verdict::kAccept;
}

void StreamGuard::release(const stun::Endpoint& source) {
  const std::lock_guard<std::mutex> lock(mu_);
  const auto it = per_address_.find(key_of(source));
  if (it == per_address_.end()) return;  // not admitted here: nothing to give back
  if (--it->second == 0) per_address_.erase(it);
  if (open_ > 0) --open_;
}

void StreamGuard::reconfigure(const core::AbuseConfig& cfg) {
  const std::lock_guard<std::mutex> lock(mu_);
  cfg_ = cfg;
}

size_t StreamGuard::open() const {
  const std::lock_guard<std::mutex> lock(mu_);
  return open_;
}

size_t StreamGuard::addresses() const {
  const std::lock_guard<std::mutex> lock(mu_);
  return per_address_.size();
}

}  // namespace callrelay::net
