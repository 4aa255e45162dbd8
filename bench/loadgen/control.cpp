#include "bench/loadgen/control.hpp"

#include <arpa/inet.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>

#include "bench/common/common.hpp"
#include "bench/loadgen/source_socket.hpp"

namespace callrelay::bench {

namespace {
constexpr uint64_t kRtoNs = 500'000'000;  // loopback: an answer takes well under a millisecond
constexpr uint8_t kMaxAttempts = 6;
constexpr uint8_t kMaxNonceRounds = 3;
constexpr uint64_t kScanPeriodNs = 10'000'000;
constexpr uint64_t kCredentialValidityS = 86400;
constexpr uint64_t kBusyRetryNs = 50'000'000;  // a renewal due while another is in flight

bool in_transaction(Step s) {
  return s == Step::kChallenge || s == Step::kAllocate || s == Step::kPermission ||
         s == Step::kChannel || s == Step::kRelease || s == Step::kRefresh;
}

const char* step_name(Step s) {
  switch (s) {
    case Step::kChallenge:
      return "Allocate (no credentials)";
    case Step::kAllocate:
      return "Allocate";
    case Step::kPermission:
      return "CreatePermission";
    case Step::kChannel:
      return "ChannelBind";
    case Step::kRelease:
      return "Refresh(0)";
    case Step::kRefresh:
      return "Refresh";
    default:
      return "idle";
  }
}
}  // namespace

stun::Endpoint to_endpoint(const sockaddr_in& addr) {
  const uint32_t ip = ntohl(addr.sin_addr.s_addr);
  return stun::Endpoint::v4({static_cast<uint8_t>(ip >> 24), static_cast<uint8_t>(ip >> 16),
                             static_cast<uint8_t>(ip >> 8), static_cast<uint8_t>(ip)},
                            ntohs(addr.sin_port));
}

ControlDriver::ControlDriver(const Options& options, Goal goal)
    : options_(options),
      goal_(goal),
      epoll_(epoll_create1(EPOLL_CLOEXEC)),
      rng_(std::random_device{}()) {
  // Start somewhere random so that consecutive runs use different 5-tuples.
  next_port_ = static_cast<uint16_t>(kFirstCyclePort + rng_() % (kLastCyclePort - kFirstCyclePort));
}

ControlDriver::~ControlDriver() {
  if (shared_fds_.empty()) {
    for (const auto& s : sessions_) close(s.fd);
  }
  for (const int fd : shared_fds_) close(fd);
  close(epoll_);
}

bool ControlDriver::add_sessions(size_t n) {
  const uint64_t expiry = static_cast<uint64_t>(time(nullptr)) + kCredentialValidityS;
  sessions_.reserve(sessions_.size() + n);
  const size_t per_socket = options_.source_addresses;
  for (size_t i = 0; i < n; ++i) {
    const auto idx = static_cast<uint32_t>(sessions_.size());
    int fd = -1;
    uint32_t source = 0;
    if (per_socket == 0) {
      fd = open_socket();
      if (fd < 0) return false;
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.u32 = idx;
      epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &ev);
    } else {
      const size_t sock = idx / per_socket;
      if (sock == shared_fds_.size()) {
        const int shared = open_socket();
        if (shared < 0) return false;
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u32 = static_cast<uint32_t>(sock);
        epoll_ctl(epoll_, EPOLL_CTL_ADD, shared, &ev);
        shared_fds_.push_back(shared);
      }
      fd = shared_fds_[sock];
      source = options_.source_base + static_cast<uint32_t>(idx % per_socket);
    }
    Session& s = sessions_.emplace_back();
    s.fd = fd;
    s.source = source;
    s.credential =
        make_rest_credential(options_.secret, options_.user + std::to_string(idx), expiry);
    pending_.push_back(idx);
  }
  refill();
  return true;
}

int ControlDriver::open_socket() {
  sockaddr_in local{};
  local.sin_family = AF_INET;
  // --sources: clients behind one address (127.0.0.1) or spread over 127.0.0.1..N.
  local.sin_addr.s_addr =
      htonl(INADDR_LOOPBACK + static_cast<uint32_t>(sockets_opened_++ % options_.sources));
  for (int tries = 0; tries < 200; ++tries) {
    local.sin_port = htons(next_port_);
    next_port_ =
        next_port_ >= kLastCyclePort ? kFirstCyclePort : static_cast<uint16_t>(next_port_ + 1);
    const int fd = options_.source_addresses != 0 ? open_source_socket(ntohs(local.sin_port))
                                                  : open_udp(local, &options_.server, 0);
    if (fd >= 0) return fd;
  }
  return -1;
}

void ControlDriver::reopen(uint32_t idx) {
  Session& s = sessions_[idx];
  epoll_ctl(epoll_, EPOLL_CTL_DEL, s.fd, nullptr);
  close(s.fd);
  s.fd = open_socket();
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u32 = idx;
  epoll_ctl(epoll_, EPOLL_CTL_ADD, s.fd, &ev);
}

bool ControlDriver::all_settled() const {
  if (!pending_.empty() || !releasing_.empty()) return false;
  for (const uint32_t idx : active_) {
    const Session& s = sessions_[idx];
    if (in_transaction(s.step) && s.renewal == Renewal::kNone) return false;
  }
  return true;
}

void ControlDriver::refill() {
  if (!due_.empty()) start_due_renewals(now_ns());
  while (active_.size() < options_.concurrency && !pending_.empty()) {
    const uint32_t idx = pending_.back();
    pending_.pop_back();
    active_.push_back(idx);
    advance(idx, Step::kChallenge);
  }
  while (active_.size() < options_.concurrency && !releasing_.empty()) {
    const uint32_t idx = releasing_.back();
    releasing_.pop_back();
    active_.push_back(idx);
    advance(idx, Step::kRelease);
  }
}

uint64_t ControlDriver::release_all(uint64_t deadline_ns) {
  cycling_ = false;
  const uint64_t before = stats_.cycles;
  for (uint32_t idx = 0; idx < sessions_.size(); ++idx) {
    if (sessions_[idx].step == Step::kReady) releasing_.push_back(idx);
  }
  refill();
  run_until([this] { return all_settled(); }, deadline_ns);
  return stats_.cycles - before;
}

void ControlDriver::enable_renewals(uint64_t permission_ns, uint64_t allocation_ns) {
  permission_ns_ = permission_ns;
  allocation_ns_ = allocation_ns;
}

void ControlDriver::schedule(uint32_t idx, Renewal what, uint64_t now) {
  const uint64_t period = what == Renewal::kPermission ? permission_ns_ : allocation_ns_;
  if (period != 0) due_.push({now + period, idx, what});
}

// Pacing: a renewal takes a transaction slot like any request, so at most --concurrency are in
// flight and the rest wait here in the order they fell due; renewal_late_max_ns says whether
// the generator kept up.
void ControlDriver::start_due_renewals(uint64_t now) {
  while (!due_.empty() && due_.top().at_ns <= now && active_.size() < options_.concurrency) {
    const Due due = due_.top();
    due_.pop();
    Session& s = sessions_[due.idx];
    if (s.step == Step::kFailed || s.step == Step::kDone) continue;
    if (s.step != Step::kReady) {  // the other renewal is in flight: right after it
      due_.push({now + kBusyRetryNs, due.idx, due.what});
      continue;
    }
    if (now - due.at_ns > stats_.renewal_late_max_ns) stats_.renewal_late_max_ns = now - due.at_ns;
    s.renewal = due.what;
    active_.push_back(due.idx);
    advance(due.idx, due.what == Renewal::kPermission ? Step::kPermission : Step::kChannel);
  }
}

void ControlDriver::finish_renewal(uint32_t idx) {
  Session& s = sessions_[idx];
  ++stats_.renewals;
  schedule(idx, s.renewal, now_ns());
  s.renewal = Renewal::kNone;
  s.step = Step::kReady;
}

void ControlDriver::send(Session& s) {
  if (s.source != 0) {
    send_from(s.fd, s.source, options_.server, {s.request.data(), s.request_len});
  } else {
    ::send(s.fd, s.request.data(), s.request_len, MSG_DONTWAIT);
  }
  s.sent_ns = now_ns();
  ++s.attempts;
}

void ControlDriver::advance(uint32_t idx, Step next) {
  Session& s = sessions_[idx];
  if (goal_ == Goal::kStorm && next == Step::kAllocate) {
    if (storm_budget_ == 0) {
      s.step = Step::kDone;
      return;
    }
    --storm_budget_;
    ++stats_.storm_allocates;
  }
  if (!build_request(s, next, to_endpoint(peer_of(options_, idx)), rng_)) {
    fail(idx, std::string("request did not fit: ") + step_name(next));
    return;
  }
  send(s);
}

void ControlDriver::fail(uint32_t idx, const std::string& why) {
  Session& s = sessions_[idx];
  ++stats_.failed;
  if (s.renewal != Renewal::kNone) ++stats_.renewals_failed;
  if (stats_.first_failure.empty()) {
    stats_.first_failure = why + " at " + step_name(s.step);
    if (s.renewal != Renewal::kNone) stats_.first_failure += " (renewing a held allocation)";
  }
  s.step = Step::kFailed;
  if (goal_ == Goal::kCycle && cycling_) {  // keep measuring: a new 5-tuple starts over
    reopen(idx);
    advance(idx, Step::kChallenge);
  }
}

void ControlDriver::on_success(uint32_t idx) {
  Session& s = sessions_[idx];
  s.nonce_rounds = 0;
  if (!s.response_had_integrity) ++stats_.no_integrity;
  switch (s.step) {
    case Step::kChallenge:
      fail(idx, "success without credentials");
      return;
    case Step::kAllocate:
      if (goal_ == Goal::kStorm) {
        s.step = Step::kReady;  // holds one of the few relay ports
        ++stats_.ready;
        return;
      }
      advance(idx, Step::kPermission);
      return;
    case Step::kPermission:
      if (s.renewal == Renewal::kPermission) {
        finish_renewal(idx);
        return;
      }
      advance(idx, Step::kChannel);
      return;
    case Step::kChannel:
      if (s.renewal == Renewal::kAllocation) {
        advance(idx, Step::kRefresh);
      } else if (goal_ == Goal::kCycle) {
        advance(idx, Step::kRelease);
      } else {
        s.step = Step::kReady;
        ++stats_.ready;
        const uint64_t now = now_ns();
        schedule(idx, Renewal::kPermission, now);
        schedule(idx, Renewal::kAllocation, now);
      }
      return;
    case Step::kRefresh:
      finish_renewal(idx);
      return;
    case Step::kRelease:
      ++stats_.cycles;
      if (cycling_) {
        reopen(idx);
        advance(idx, Step::kChallenge);
      } else {
        s.step = Step::kDone;
      }
      return;
    default:
      return;
  }
}

void ControlDriver::on_error(uint32_t idx) {
  Session& s = sessions_[idx];
  if (goal_ == Goal::kStorm && s.step == Step::kAllocate) {
    ++stats_.storm_refused;
    ++stats_.errors[s.last_error];
    if (storm_budget_ == 0) {
      s.step = Step::kDone;
      return;
    }
    reopen(idx);  // a storm comes from many 5-tuples, each with its own 401 round
    advance(idx, Step::kChallenge);
    return;
  }
  ++stats_.errors[s.last_error];
  fail(idx, "error " + std::to_string(s.last_error));
}

void ControlDriver::on_datagram(uint32_t idx, std::span<const uint8_t> bytes) {
  Session& s = sessions_[idx];
  if (!in_transaction(s.step)) return;
  switch (interpret_reply(s, bytes)) {
    case Reply::kIgnore:
      return;
    case Reply::kSuccess:
      on_success(idx);
      return;
    case Reply::kError:
      on_error(idx);
      return;
    case Reply::kBadIntegrity:
      ++stats_.bad_integrity;
      fail(idx, "success response with bad MESSAGE-INTEGRITY or missing XOR-RELAYED-ADDRESS");
      return;
    case Reply::kNewNonce:
      if (s.step == Step::kChallenge) {
        advance(idx, Step::kAllocate);
      } else if (++s.nonce_rounds > kMaxNonceRounds) {
        ++stats_.errors[s.last_error];
        fail(idx, "credentials refused with " + std::to_string(s.last_error));
      } else {
        advance(idx, s.step);
      }
      return;
  }
}

void ControlDriver::drain(uint32_t idx) {
  uint8_t buf[2048];
  while (true) {
    const ssize_t n = recv(sessions_[idx].fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0) return;
    on_datagram(idx, {buf, static_cast<size_t>(n)});
  }
}

void ControlDriver::drain_shared(uint32_t sock) {
  const size_t per_socket = options_.source_addresses;
  uint8_t buf[2048];
  Received r;
  while (recv_to(shared_fds_[sock], buf, r)) {
    if (r.from.sin_addr.s_addr != options_.server.sin_addr.s_addr ||
        r.from.sin_port != options_.server.sin_port || r.to < options_.source_base) {
      continue;  // not from the server, or not to one of this socket's client addresses
    }
    const uint64_t k = r.to - options_.source_base;
    const uint64_t idx = sock * per_socket + k;
    if (k >= per_socket || idx >= sessions_.size()) continue;
    on_datagram(static_cast<uint32_t>(idx), {buf, r.len});
  }
}

void ControlDriver::retransmit_due(uint64_t now) {
  size_t kept = 0;
  for (const uint32_t idx : active_) {
    Session& s = sessions_[idx];
    if (in_transaction(s.step) && now - s.sent_ns > kRtoNs) {
      if (s.attempts >= kMaxAttempts) {
        ++stats_.timeouts;
        fail(idx, "no answer");
      } else {
        ++stats_.retransmits;
        send(s);
      }
    }
    if (in_transaction(s.step)) active_[kept++] = idx;
  }
  active_.resize(kept);
  refill();
}

bool ControlDriver::run_until(const std::function<bool()>& done, uint64_t deadline_ns) {
  epoll_event events[256];
  while (!done()) {
    const uint64_t now = now_ns();
    if (stop_requested() || now >= deadline_ns) return false;
    if (now >= next_scan_ns_) {
      retransmit_due(now);
      next_scan_ns_ = now + kScanPeriodNs;
    }
    const int n = epoll_wait(epoll_, events, 256, 2);
    for (int i = 0; i < n; ++i) {
      if (shared_fds_.empty()) {
        drain(events[i].data.u32);
      } else {
        drain_shared(events[i].data.u32);
      }
    }
  }
  return true;
}

}  // namespace callrelay::bench
