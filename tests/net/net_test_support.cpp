#include "tests/net/net_test_support.hpp"

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>

#include "relay/net/socket_ops.hpp"

namespace callrelay::net::testing {

stun::Endpoint loopback(uint16_t port) { return stun::Endpoint::v4({127, 0, 0, 1}, port); }

bool ipv6_available() {
  const OpenResult r = open_udp(stun::Endpoint::v6({0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 0), UdpOptions{});
  if (r.fd < 0) return false;
  ::close(r.fd);
  return true;
}

UdpSocket::UdpSocket(uint16_t port) : UdpSocket(loopback(port)) {}

UdpSocket::UdpSocket(const stun::Endpoint& bind) {
  const OpenResult r = open_udp(bind, UdpOptions{});
  fd_ = r.fd;
  if (fd_ >= 0) local_ = local_endpoint(fd_).value_or(stun::Endpoint{});
}

UdpSocket::~UdpSocket() {
  if (fd_ >= 0) ::close(fd_);
}

void UdpSocket::send_to(const stun::Endpoint& to, std::span<const uint8_t> data) const {
  const SockAddr sa = to_sockaddr(to);
  const ssize_t n = ::sendto(fd_, data.data(), data.size(), 0, sa.get(), sa.len);
  EXPECT_EQ(n, static_cast<ssize_t>(data.size()))
      << "sendto " << to.to_string() << ": " << std::strerror(errno);
}

std::optional<std::vector<uint8_t>> UdpSocket::receive(int timeout_ms, stun::Endpoint* from) const {
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  std::vector<uint8_t> buf(65536);
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left < 0) return std::nullopt;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
    SockAddr sa;
    sa.len = sizeof(sa.storage);
    const ssize_t n = ::recvfrom(fd_, buf.data(), buf.size(), MSG_DONTWAIT, sa.get(), &sa.len);
    if (n < 0) continue;
    if (from != nullptr) *from = from_sockaddr(sa.get(), sa.len).value_or(stun::Endpoint{});
    buf.resize(static_cast<size_t>(n));
    return buf;
  }
}

std::vector<uint8_t> bytes(std::string_view s) { return {s.begin(), s.end()}; }

uint16_t Response::error_code() const {
  if (!msg) return 0xFFFF;
  if (msg->cls() != stun::Class::kError) return 0;
  const auto ec = msg->error_code();
  return ec ? ec->code : 0xFFFF;
}

TurnClient::TurnClient(stun::Endpoint server, std::string username, std::string password,
                       std::string realm, const stun::Endpoint& local)
    : socket_(local),
      server_(server),
      username_(std::move(username)),
      password_(std::move(password)),
      realm_(std::move(realm)) {}

std::vector<uint8_t> TurnClient::build(stun::Method m, stun::Class c, const Attrs& attrs,
                                       bool sign) {
  ++counter_;
  std::memcpy(tid_.data(), &counter_, sizeof(counter_));
  tid_[11] = static_cast<uint8_t>(socket_.local().port);  // differ between clients
  tid_[10] = static_cast<uint8_t>(socket_.local().port >> 8);
  std::vector<uint8_t> out(2048);
  stun::MessageBuilder b(out, m, c, tid_);
  if (attrs) attrs(b);
  if (sign && !nonce_.empty()) {
    b.add_string(stun::attr::kUsername, username_);
    b.add_string(stun::attr::kRealm, realm_);
    b.add_string(stun::attr::kNonce, nonce_);
    const auto key = stun::long_term_key(username_, realm_, password_);
    b.add_integrity(key);
  }
  b.add_fingerprint();
  out.resize(b.finish());
  return out;
}

std::optional<Response> TurnClient::exchange(const std::vector<uint8_t>& req,
                                             const stun::TransactionId& tid) {
  EXPECT_FALSE(req.empty()) << "request did not fit";
  socket_.send_to(server_, req);
  for (;;) {
    auto raw = socket_.receive();
    if (!raw) return std::nullopt;
    Response r{std::move(*raw), std::nullopt};
    r.msg = stun::MessageView::parse(r.raw);
    if (r.msg && r.msg->transaction_id() == tid) return r;
  }
}

std::optional<Response> TurnClient::request(stun::Method m, const Attrs& attrs, bool sign) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    const auto req = build(m, stun::Class::kRequest, attrs, sign);
    auto r = exchange(req, tid_);
    if (!r || !r->msg) return r;
    const uint16_t code = r->error_code();
    if (!sign || (code != 401 && code != 438) || attempt == 1) return r;
    const auto nonce = r->msg->string(stun::attr::kNonce);
    if (!nonce) return r;
    if (code == 401 && !last_401) {
      last_401 = Response{r->raw, std::nullopt};
      last_401->msg = stun::MessageView::parse(last_401->raw);
    }
    nonce_ = std::string(*nonce);
  }
  return std::nullopt;
}

std::optional<stun::Endpoint> TurnClient::allocate(const Attrs& extra) {
  const auto r = request(stun::Method::kAllocate, [&](stun::MessageBuilder& b) {
    b.add_requested_transport(17);
    if (extra) extra(b);
  });
  if (!r || !r->msg || r->error_code() != 0) return std::nullopt;
  return r->msg->xor_address(stun::attr::kXorRelayedAddress);
}

}  // namespace callrelay::net::testing
