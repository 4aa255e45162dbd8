#include "http/server.hpp"

#include <asio.hpp>
#include <asio/ssl.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "base/log.hpp"
#include "http/conn_budget.hpp"
#include "http/http_session.hpp"
#include "http/ws_session.hpp"

namespace callrelay::http {
namespace {

/// Hard cap on a request head or body: between max_request_bytes and this, the client gets
/// the Router's 413 answer; beyond it, the server's own 413/431 and the connection ends
/// without the rest being read.
constexpr size_t kHardLimitFactor = 4;
constexpr size_t kMaxFieldNameBytes = 256;
constexpr size_t kMaxFields = 100;
constexpr auto kTickInterval = std::chrono::seconds(1);
/// After a failed accept (no descriptor left, say), wait this long before the next one
/// instead of spinning.
constexpr auto kAcceptRetry = std::chrono::milliseconds(100);

core::TimeMs unix_now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

const char* reason_phrase(int status) {
  static constexpr std::pair<int, const char*> kReasons[] = {
      {200, "OK"},
      {201, "Created"},
      {204, "No Content"},
      {301, "Moved Permanently"},
      {302, "Found"},
      {304, "Not Modified"},
      {400, "Bad Request"},
      {401, "Unauthorized"},
      {403, "Forbidden"},
      {404, "Not Found"},
      {405, "Method Not Allowed"},
      {413, "Payload Too Large"},
      {415, "Unsupported Media Type"},
      {426, "Upgrade Required"},
      {429, "Too Many Requests"},
      {431, "Request Header Fields Too Large"},
      {500, "Internal Server Error"},
      {503, "Service Unavailable"},
  };
  for (const auto& [code, text] : kReasons)
    if (code == status) return text;
  return "Error";
}

std::shared_ptr<asio::ssl::context> load_tls(const TlsFiles& files) {
  auto owned = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
  asio::ssl::context& ctx = *owned;
  ctx.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                  asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                  asio::ssl::context::no_tlsv1_1 | asio::ssl::context::single_dh_use);
  asio::error_code ec;
  ctx.use_certificate_chain_file(files.cert, ec);
  if (ec)
    throw std::runtime_error("http.tls.cert: cannot load '" + files.cert + "': " + ec.message() +
                             " (a PEM certificate chain)");
  ctx.use_private_key_file(files.key, asio::ssl::context::pem, ec);
  if (ec)
    throw std::runtime_error("http.tls.key: cannot load '" + files.key + "': " + ec.message() +
                             " (a PEM private key matching http.tls.cert)");
  return owned;
}

}  // namespace

namespace detail {

std::string to_wire(const Response& r, bool keep_alive, bool head_only) {
  std::string out = "HTTP/1.1 " + std::to_string(r.status) + " " + reason_phrase(r.status) + "\r\n";
  if (!r.content_type.empty()) out += "Content-Type: " + r.content_type + "\r\n";
  for (const auto& [name, value] : r.headers) out += name + ": " + value + "\r\n";
  out += "Content-Length: " + std::to_string(r.body.size()) + "\r\n";
  out += keep_alive ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n";
  if (!head_only) out += r.body;
  return out;
}

}  // namespace detail

/// An io_context whose pending handlers can be destroyed before the objects they refer to:
/// handlers still queued when the pool stopped (reads on idle keep-alive connections) hold
/// sessions, whose destructors use the server's budget: they must go while it still exists.
struct IoContext : asio::io_context {
  explicit IoContext(int concurrency_hint) : asio::io_context(concurrency_hint) {}
  /// Destroys every pending handler (asio's execution_context::shutdown, which the destructor
  /// would run anyway; a second run finds nothing left). Only once the threads have stopped.
  void destroy_pending_handlers() { shutdown(); }
};

struct HttpServer::Impl {
  Impl(const HttpConfig& cfg, Router& router, Tick t, base::LimitCounters* limits)
      : on_tick(std::move(t)),
        threads_wanted(std::clamp(cfg.threads, kMinHttpThreads, kMaxHttpThreads)),
        budget({cfg.max_connections_per_address, cfg.max_connections}, limits),
        io(static_cast<int>(threads_wanted)),
        shared{router,
               budget,
               limits,
               io,
               std::make_shared<detail::WsHub>(),
               detail::WsOptions{cfg.ws_ping_interval, cfg.ws_idle_timeout},
               RequestParser::Limits{cfg.max_request_bytes * kHardLimitFactor,
                                     cfg.max_request_bytes * kHardLimitFactor, kMaxFields,
                                     kMaxFieldNameBytes},
               cfg.header_timeout,
               cfg.idle_timeout,
               cfg.write_timeout,
               &unix_now_ms} {}
  ~Impl() { io.destroy_pending_handlers(); }  // before the budget and the hub go

  /// Binds and listens now (throws on failure); accepting starts when the threads run.
  void open(const stun::Endpoint& where) {
    const asio::ip::tcp::endpoint ep(asio::ip::make_address(where.ip_string()), where.port);
    acceptor.open(ep.protocol());
    acceptor.set_option(asio::ip::tcp::acceptor::reuse_address(true));
    acceptor.bind(ep);
    acceptor.listen(asio::socket_base::max_listen_connections);
    const auto local = acceptor.local_endpoint();
    bound = *stun::Endpoint::parse_ip(local.address().to_string(), local.port());
  }

  void accept() {
    acceptor.async_accept(asio::make_strand(io), [this](const asio::error_code& ec,
                                                        asio::ip::tcp::socket s) {
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) return;
      if (ec) {  // out of descriptors, say: try again shortly rather than spin
        log::debug("http.accept_failed", {{"error", ec.message()}}, "http: accept failed: ",
                   ec.message());
        retry.expires_after(kAcceptRetry);
        retry.async_wait([this](const asio::error_code& e) {
          if (!e && acceptor.is_open()) accept();
        });
        return;
      }
      admit(std::move(s));
      accept();
    });
  }

  /// Counts the connection in (or refuses it: the socket closes here) and starts its session.
  void admit(asio::ip::tcp::socket s) {
    asio::error_code ec;
    const auto remote = s.remote_endpoint(ec);
    if (ec) return;  // already gone
    std::string ip = remote.address().to_string();
    if (tls) {
      admit_session(std::make_shared<detail::HttpSession<detail::TlsStream>>(
          shared, detail::TlsStream(std::move(s), *tls), ip), ip);
    } else {
      admit_session(
          std::make_shared<detail::HttpSession<asio::ip::tcp::socket>>(shared, std::move(s), ip),
          ip);
    }
  }

  template <typename Session>
  void admit_session(const std::shared_ptr<Session>& session, const std::string& ip) {
    const ConnectionBudget::Id id = budget.open(ip, session);
    if (id != 0) session->start(id);
  }

  void schedule_tick() {
    timer.expires_after(kTickInterval);
    timer.async_wait([this](const asio::error_code& ec) {
      if (ec || stopping.load()) return;
      if (on_tick) on_tick(unix_now_ms());
      schedule_tick();
    });
  }

  /// Ends every WebSocket and waits until each has (their endpoint hears on_close).
  void end_websockets() {
    const auto alive = shared.hub->stop();
    std::mutex m;
    std::condition_variable cv;
    size_t left = alive.size();
    for (const auto& s : alive) {
      s->post_abort([&] {
        const std::lock_guard lock(m);
        if (--left == 0) cv.notify_all();
      });
    }
    std::unique_lock lock(m);
    cv.wait(lock, [&] { return left == 0; });
  }

  Tick on_tick;
  unsigned threads_wanted;
  ConnectionBudget budget;
  IoContext io;
  detail::Shared shared;
  asio::strand<asio::io_context::executor_type> acceptor_strand{asio::make_strand(io)};
  asio::ip::tcp::acceptor acceptor{acceptor_strand};
  asio::steady_timer retry{acceptor_strand};
  asio::steady_timer timer{io};  ///< only its own handler touches it while the pool runs
  std::shared_ptr<asio::ssl::context> tls;
  stun::Endpoint bound;
  std::atomic<bool> stopping{false};
  std::vector<std::thread> threads;
};

HttpServer::HttpServer(const HttpConfig& cfg, Router& router, Tick on_tick,
                       base::LimitCounters* limits)
    : impl_(std::make_unique<Impl>(cfg, router, std::move(on_tick), limits)) {
  if (cfg.tls) impl_->tls = load_tls(*cfg.tls);
  try {
    impl_->open(cfg.listen);
  } catch (const std::exception& e) {
    throw std::runtime_error("cannot listen for HTTP on " + cfg.listen.to_string() + ": " +
                             e.what() + " (is another process using it? set http.listen)");
  }
}

HttpServer::~HttpServer() { stop(); }

const stun::Endpoint& HttpServer::local_endpoint() const { return impl_->bound; }
bool HttpServer::tls() const { return impl_->tls != nullptr; }
size_t HttpServer::websockets() const { return impl_->shared.hub->size(); }
size_t HttpServer::connections() const { return impl_->budget.connections(); }

void HttpServer::start() {
  if (!impl_->threads.empty() || impl_->stopping.load()) return;
  impl_->schedule_tick();
  asio::post(impl_->acceptor_strand, [impl = impl_.get()] { impl->accept(); });
  for (unsigned i = 0; i < impl_->threads_wanted; ++i) {
    impl_->threads.emplace_back([impl = impl_.get()] {
      try {
        impl->io.run();
      } catch (const std::exception& e) {
        log::error("http.thread_stopped", {{"error", e.what()}},
                   "http: server thread stopped: ", e.what());
      }
    });
  }
}

void HttpServer::stop() {
  if (!impl_ || impl_->stopping.exchange(true)) return;
  if (impl_->threads.empty()) {
    asio::error_code ignored;
    impl_->acceptor.close(ignored);
    return;
  }
  std::promise<void> closed;
  asio::post(impl_->acceptor_strand, [impl = impl_.get(), &closed] {
    asio::error_code ignored;
    impl->acceptor.close(ignored);
    impl->retry.cancel();
    closed.set_value();
  });
  closed.get_future().wait();
  impl_->end_websockets();
  impl_->io.stop();  // also drops idle keep-alive connections
  for (auto& t : impl_->threads) t.join();
  impl_->threads.clear();
  impl_->io.destroy_pending_handlers();
}

}  // namespace callrelay::http
