#include "relay/net/stream_service.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <mutex>
#include <string>

#include "relay/net/socket_ops.hpp"
#include "relay/net/stream_guard.hpp"
#include "base/log.hpp"

namespace callrelay::net {

core::TimeMs now_ms();    // worker.cpp

namespace {

/// Half-open protection for connections that carry an allocation but no traffic: keepalive
/// probes after 30 s of silence, every 10 s, 3 unanswered close; unacknowledged data closes
/// after 30 s.
constexpr int kKeepIdleS = 30;
constexpr int kKeepIntervalS = 10;
constexpr int kKeepCount = 3;
constexpr unsigned kUserTimeoutMs = 30000;
constexpr int kBacklog = 1024;

std::string openssl_reason() {
  const unsigned long e = ERR_get_error();
  if (e == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  ERR_clear_error();
  return buf;
}

asio::ip::tcp::endpoint to_asio(const stun::Endpoint& ep) {
  return {asio::ip::make_address(ep.ip_string()), ep.port};
}

stun::Endpoint from_asio(const asio::ip::tcp::endpoint& ep) {
  const auto e = from_sockaddr(ep.data(), static_cast<socklen_t>(ep.size()));
  return e ? *e : stun::Endpoint{};
}

/// Lines about refused connections: at most 10 a second for the whole process.
log::RateLimit& refusal_log() {
  static log::RateLimit limit(10, 1000);
  return limit;
}

const char* refusal_text(StreamGuard::Verdict v) {
  switch (v) {
    case StreamGuard::Verdict::kPerAddress: return "too many connections from this address";
    case StreamGuard::Verdict::kTotal: return "too many connections in total";
    case StreamGuard::Verdict::kTlsRate: return "over the TLS handshakes-per-second limit";
    case StreamGuard::Verdict::kFdReserve: return "descriptors are kept for relay sockets";
    case StreamGuard::Verdict::kAccept: break;
  }
  return "accepted";
}

void set_int(int fd, int level, int name, int value) {
  ::setsockopt(fd, level, name, &value, sizeof value);  // best effort
}

/// Whether the kernel offers kernel TLS (the "tls" TCP upper-layer protocol), which could take
/// record encryption out of user space; read from the kernel's list of available ULPs.
bool kernel_tls_available() {
  std::ifstream ulps("/proc/sys/net/ipv4/tcp_available_ulp");
  std::string name;
  while (ulps >> name) {
    if (name == "tls") return true;
  }
  return false;
}

/// Says once per process where TLS records are encrypted: in user space, by OpenSSL into the
/// connection's TlsSession (kernel TLS needs OpenSSL to write to the socket itself, a record at
/// a time, where the session gathers the records of one write for one send), with whether this
/// kernel could have done it.
void log_record_path() {
  static std::once_flag once;
  std::call_once(once, [] {
    const bool ktls = kernel_tls_available();
    log::info("tls.record_path", {{"encryption", "user space"}, {"kernel_tls_available", ktls}},
              "tls: records are encrypted in user space (OpenSSL); kernel TLS is ",
              ktls ? "available on this kernel but not used by the TLS listener"
                   : "not available on this kernel (no tls ULP)");
  });
}

}  // namespace

std::shared_ptr<asio::ssl::context> make_tls_context(const TlsSettings& tls) {
  auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
  SSL_CTX* native = ctx->native_handle();
  const int min = tls.min_version == "1.3" ? TLS1_3_VERSION : TLS1_2_VERSION;
  if (SSL_CTX_set_min_proto_version(native, min) != 1) {
    throw std::runtime_error("tls: cannot set the minimum version: " + openssl_reason());
  }
  // The server's order of suites wins (AES-128-GCM first: every TLS 1.3 peer has it, RFC 8446
  // section 9.1, and it costs less per relayed byte than AES-256-GCM), except that a client
  // listing ChaCha20-Poly1305 first (no AES instructions) keeps it.
  SSL_CTX_set_options(native, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                  SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_PRIORITIZE_CHACHA);
  if (SSL_CTX_set_cipher_list(native, kTls12Ciphers) != 1) {
    throw std::runtime_error("tls: cannot set the cipher list: " + openssl_reason());
  }
  if (SSL_CTX_set_ciphersuites(native, kTls13Suites) != 1) {
    throw std::runtime_error("tls: cannot set the TLS 1.3 suites: " + openssl_reason());
  }
  if (SSL_CTX_use_certificate_chain_file(native, tls.cert_file.c_str()) != 1) {
    throw std::runtime_error("tls: cannot load the certificate chain '" + tls.cert_file +
                             "': " + openssl_reason());
  }
  if (SSL_CTX_use_PrivateKey_file(native, tls.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    throw std::runtime_error("tls: cannot load the private key '" + tls.key_file +
                             "': " + openssl_reason());
  }
  if (SSL_CTX_check_private_key(native) != 1) {
    throw std::runtime_error("tls: the key '" + tls.key_file +
                             "' does not match the certificate '" + tls.cert_file +
                             "': " + openssl_reason());
  }
  log_record_path();
  return ctx;
}

StreamService::StreamService(asio::io_context& ctx, core::TurnServer& core, Dispatch dispatch,
                             Flush flush, const StreamLimits& limits)
    : ctx_(ctx),
      core_(core),
      dispatch_(std::move(dispatch)),
      flush_(std::move(flush)),
      limits_(limits),
      sweep_(ctx) {}

StreamService::~StreamService() { close_all(); }

stun::Endpoint StreamService::listen(const stun::Endpoint& endpoint, bool join,
                                     std::shared_ptr<asio::ssl::context> tls) {
  const asio::ip::tcp::endpoint ep = to_asio(endpoint);
  auto a = std::make_unique<Acceptor>(
      Acceptor{asio::ip::tcp::acceptor(ctx_), std::move(tls), {}, asio::steady_timer(ctx_)});
  asio::ip::tcp::acceptor& s = a->socket;
  using ReusePort = asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;
  s.open(ep.protocol());
  if (ep.address().is_v6()) s.set_option(asio::ip::v6_only(true));
  s.set_option(asio::socket_base::reuse_address(true));
  // The first socket binds alone, so a port someone else holds fails clearly; then it opens
  // the reuse group the other workers' sockets join.
  if (join) s.set_option(ReusePort(true));
  s.bind(ep);
  if (!join) s.set_option(ReusePort(true));
  s.listen(kBacklog);
  a->bound = from_asio(s.local_endpoint());
  const stun::Endpoint bound = a->bound;
  acceptors_.push_back(std::move(a));
  return bound;
}

void StreamService::start() {
  for (size_t ai = 0; ai < acceptors_.size(); ++ai) accept(ai);
  arm_sweep();
}

void StreamService::accept(size_t ai) {
  Acceptor& a = *acceptors_[ai];
  a.socket.async_accept([this, ai](const asio::error_code& ec, asio::ip::tcp::socket socket) {
    if (stopping_ || ec == asio::error::operation_aborted) return;
    Acceptor& acc = *acceptors_[ai];
    if (!ec) {
      adopt(acc, std::move(socket));
      return accept(ai);
    }
    // Out of descriptors or memory: try again shortly instead of spinning.
    log::warn("listener.accept_failed",
              {{"transport", acc.tls ? "tls" : "tcp"}, {"address", acc.bound.to_string()},
               {"error", ec.message()}},
              acc.tls ? "tls" : "tcp", " ", acc.bound.to_string(), ": accept: ", ec.message());
    acc.retry.expires_after(std::chrono::milliseconds(100));
    acc.retry.async_wait([this, ai](const asio::error_code& e) {
      if (!e && !stopping_) accept(ai);
    });
  });
}

void StreamService::adopt(Acceptor& a, asio::ip::tcp::socket socket) {
  asio::error_code ec;
  const auto remote = socket.remote_endpoint(ec);
  const auto local = ec ? asio::ip::tcp::endpoint() : socket.local_endpoint(ec);
  if (ec) return;  // reset before we looked at it
  const core::Transport transport = a.tls ? core::Transport::kTls : core::Transport::kTcp;
  if (limits_.max_connections != 0 && connections_.size() >= limits_.max_connections) {
    if (limits_.counters != nullptr) limits_.counters->hit(base::Limit::kTcpTotal);
    log::limited(refusal_log(), limits_.counters, log::Level::kWarn, "stream.refused",
                 {{"transport", core::to_string(transport)},
                  {"client", from_asio(remote).to_string()}, {"reason", "max_connections"}},
                 core::to_string(transport), " ", from_asio(remote).to_string(),
                 ": streams.max_connections reached; closing");
    return;  // the socket closes here
  }
  if (!admitted(a, from_asio(remote), socket.native_handle())) return;  // closes here
  socket.set_option(asio::ip::tcp::no_delay(true), ec);
  socket.set_option(asio::socket_base::keep_alive(true), ec);
  const int fd = socket.native_handle();
  set_int(fd, IPPROTO_TCP, TCP_KEEPIDLE, kKeepIdleS);
  set_int(fd, IPPROTO_TCP, TCP_KEEPINTVL, kKeepIntervalS);
  set_int(fd, IPPROTO_TCP, TCP_KEEPCNT, kKeepCount);
  set_int(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, static_cast<int>(kUserTimeoutMs));

  const core::FiveTuple tuple{transport, from_asio(remote), from_asio(local), next_id()};
  const core::TimeMs now = now_ms();
  auto c = a.tls ? make_tls_connection(*this, std::move(socket), a.tls, tuple, limits_, now)
                 : make_tcp_connection(*this, std::move(socket), tuple, limits_, now);
  if (log::enabled(log::Level::kDebug)) {
    log::debug("stream.connected",
               {{"transport", core::to_string(transport)}, {"client", tuple.client.to_string()},
                {"server", tuple.server.to_string()}},
               core::to_string(transport), " ", tuple.client.to_string(), ": connected to ",
               tuple.server.to_string());
  }
  connections_.emplace(tuple.listener, c);
  c->start();
}

void StreamService::set_tls_context(std::shared_ptr<asio::ssl::context> tls) {
  if (!tls) return;
  for (auto& a : acceptors_) {
    if (a->tls) a->tls = tls;
  }
}

bool StreamService::admitted(const Acceptor& a, const stun::Endpoint& remote, int fd) {
  if (limits_.guard == nullptr) return true;
  const auto verdict = limits_.guard->admit(remote, fd, a.tls != nullptr, now_ms());
  if (verdict == StreamGuard::Verdict::kAccept) return true;
  log::limited(refusal_log(), limits_.counters, log::Level::kWarn, "stream.refused",
               {{"transport", a.tls ? "tls" : "tcp"}, {"client", remote.to_string()},
                {"reason", refusal_text(verdict)}},
               a.tls ? "tls " : "tcp ", remote.to_string(), ": connection refused: ",
               refusal_text(verdict));
  return false;
}

uint32_t StreamService::next_id() {
  for (;;) {
    const uint32_t id = next_id_;
    next_id_ = next_id_ == UINT32_MAX ? kFirstConnectionId : next_id_ + 1;
    if (connections_.count(id) == 0) return id;
  }
}

void StreamService::send(const core::FiveTuple& to, std::span<const uint8_t> data) {
  const auto it = connections_.find(to.listener);
  if (it == connections_.end() || !(it->second->tuple() == to)) return;
  it->second->send(to, data, false);
}

std::shared_ptr<StreamConnection> StreamService::find(const core::FiveTuple& tuple) const {
  const auto it = connections_.find(tuple.listener);
  if (it == connections_.end() || !(it->second->tuple() == tuple)) return nullptr;
  return it->second;
}

bool StreamService::hand_off(StreamConnection& c, std::span<const uint8_t> frame) {
  const auto cid = connection_bind_target(frame);
  if (!cid) return false;
  const auto owner = links_->owners.owner(*cid);
  // Unknown (the core answers 400), ours, or on a control connection (the core's 400 too).
  if (!owner || *owner == worker_ || *owner >= links_->deliver.size() ||
      core_.has_allocation(c.tuple())) {
    return false;
  }
  auto h = c.hand_off(frame);
  if (!h) return !c.is_open();
  // The connection lives on with the owner: it is no longer this worker's, and its admission
  // stays counted (the adopting worker releases it when the connection closes).
  connections_.erase(c.id());
  count_stream_handoff();
  if (log::enabled(log::Level::kDebug)) {
    log::debug("stream.handed_off",
               {{"transport", core::to_string(h->transport)}, {"client", h->client.to_string()},
                {"connection_id", *cid}, {"to_worker", *owner}},
               core::to_string(h->transport), " ", h->client.to_string(), ": ConnectionBind for ",
               *cid, " handed to worker ", *owner);
  }
  links_->deliver[*owner](std::move(h));
  return true;
}

void StreamService::adopt(std::unique_ptr<StreamHandoff> h) {
  if (stopping_) return;  // dropped: closes the descriptor and releases the admission
  asio::ip::tcp::socket socket(ctx_);
  asio::error_code ec;
  socket.assign(h->client.is_v4() ? asio::ip::tcp::v4() : asio::ip::tcp::v6(), h->fd, ec);
  if (ec) {
    log::warn("stream.adopt_failed", {{"client", h->client.to_string()}, {"error", ec.message()}},
              core::to_string(h->transport), " ", h->client.to_string(),
              ": cannot adopt a connection handed over by another worker: ", ec.message());
    return;
  }
  h->fd = -1;  // the socket owns it now
  const core::FiveTuple tuple{h->transport, h->client, h->server, next_id()};
  auto c = make_adopted_connection(*this, std::move(socket), *h, tuple, limits_, now_ms());
  h->guard = nullptr;  // released by on_closed from now on
  connections_.emplace(tuple.listener, c);
  c->start_adopted(h->bytes);
}

void StreamService::on_frame(StreamConnection& c, std::span<const uint8_t> frame,
                             int64_t now_us) {
  if (links_ != nullptr && hand_off(c, frame)) return;
  dispatch_(core_.on_client_packet(c.tuple(), frame, now_us / 1000, media_clock_ ? now_us : -1),
            /*batched=*/true);
  if (after_frame_ && c.is_open()) after_frame_(c);
}

void StreamService::on_closed(StreamConnection& c) {
  // A spliced (RFC 6062 data) connection has no allocation; its peer side learns of the close
  // through its RawSink.
  if (!stopping_ && !c.spliced()) core_.on_client_closed(c.tuple(), now_ms());  // the allocation ends now
  if (limits_.guard != nullptr) limits_.guard->release(c.tuple().client);
  connections_.erase(c.id());
}

void StreamService::arm_sweep() {
  // Often enough that a timeout fires within a quarter of itself (and at least every second).
  const core::TimeMs shortest =
      std::min(limits_.idle_timeout_ms, limits_.allocated_idle_timeout_ms);
  const core::TimeMs period = std::clamp<core::TimeMs>(shortest / 4, 5, 1000);
  sweep_.expires_after(std::chrono::milliseconds(period));
  sweep_.async_wait([this](const asio::error_code& ec) {
    if (ec || stopping_) return;
    const core::TimeMs now = now_ms();
    // Closing erases from the map: collect first (rarely anything).
    std::vector<std::pair<std::shared_ptr<StreamConnection>, const char*>> expired;
    for (const auto& [id, c] : connections_) {
      (void)id;
      if (const char* why = c->timed_out(now)) {
        expired.emplace_back(c, why);
      } else if (c->trim_if_idle(now)) {
        tls_buffer_trims_.fetch_add(1, std::memory_order_relaxed);
      }
    }
    for (const auto& [c, why] : expired) c->close_for(why);
    arm_sweep();
  });
}

void StreamService::close_all() {
  if (stopping_) return;
  stopping_ = true;
  asio::error_code ignored;
  for (auto& a : acceptors_) {
    a->socket.close(ignored);
    a->retry.cancel();
  }
  sweep_.cancel();
  auto all = std::move(connections_);
  connections_.clear();
  for (auto& [id, c] : all) {
    (void)id;
    c->close();
  }
}

}  // namespace callrelay::net
