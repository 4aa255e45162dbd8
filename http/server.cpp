#include "http/server.hpp"

#include <restinio/all.hpp>
#include <restinio/tls.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <stdexcept>
#include <thread>

#include "base/log.hpp"
#include "http/ws_session.hpp"

namespace callrelay::http {
namespace {

/// Hard cap on a request body (RESTinio drops the connection above it, without reading the
/// body); between max_request_bytes and this, the client gets a 413 answer.
constexpr size_t kHardLimitFactor = 4;
constexpr size_t kMaxFieldNameBytes = 256;
constexpr size_t kMaxFields = 100;
constexpr auto kReadTimeout = std::chrono::seconds(10);
constexpr auto kHandleTimeout = std::chrono::seconds(10);
constexpr auto kWriteTimeout = std::chrono::seconds(10);
constexpr auto kTickInterval = std::chrono::seconds(1);

// Thread-safe traits: each connection runs on its own strand of the pool.
struct PlainTraits : restinio::default_traits_t {
  static constexpr bool use_connection_count_limiter = true;
};
struct TlsTraits : restinio::default_tls_traits_t {
  static constexpr bool use_connection_count_limiter = true;
};

core::TimeMs unix_now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

template <typename S>
std::string str(const S& sv) {
  return std::string(sv.data(), sv.size());
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; });
  return s;
}

/// Whether a comma-separated header value (Connection) has `token`, case-insensitively.
bool has_token(const std::string& value, std::string_view token) {
  const std::string v = lower(value);
  size_t start = 0;
  while (start <= v.size()) {
    const size_t comma = std::min(v.find(',', start), v.size());
    std::string_view part(v.data() + start, comma - start);
    while (!part.empty() && (part.front() == ' ' || part.front() == '\t')) part.remove_prefix(1);
    while (!part.empty() && (part.back() == ' ' || part.back() == '\t')) part.remove_suffix(1);
    if (part == token) return true;
    start = comma + 1;
  }
  return false;
}

template <typename Req>
Request to_request(const Req& req) {
  const auto& h = req->header();
  Request r;
  r.method = h.method().c_str();
  r.path = str(h.path());
  r.query = str(h.query());
  r.authorization = str(h.get_field_or(restinio::http_field::authorization, ""));
  r.origin = str(h.get_field_or("Origin", ""));
  r.content_type = str(h.get_field_or(restinio::http_field::content_type, ""));
  r.upgrade = lower(str(h.get_field_or(restinio::http_field::upgrade, "")));
  r.connection_upgrade = has_token(str(h.get_field_or("Connection", "")), "upgrade");
  r.sec_websocket_key = str(h.get_field_or(restinio::http_field::sec_websocket_key, ""));
  r.sec_websocket_version = str(h.get_field_or(restinio::http_field::sec_websocket_version, ""));
  r.body = req->body();
  r.client_ip = req->remote_endpoint().address().to_string();
  size_t size = r.method.size() + h.request_target().size() + 12;
  h.for_each_field([&size](const auto& f) { size += f.name().size() + f.value().size() + 4; });
  r.size = size + r.body.size();
  return r;
}

const char* reason(int status) {
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
      {500, "Internal Server Error"},
      {503, "Service Unavailable"},
  };
  for (const auto& [code, text] : kReasons)
    if (code == status) return text;
  return "Error";
}

asio::ssl::context load_tls(const TlsFiles& files) {
  asio::ssl::context ctx(asio::ssl::context::tls_server);
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
  return ctx;
}

}  // namespace

/// An io_context whose pending handlers can be destroyed before the objects they refer to.
/// Handlers still queued when the pool stopped (reads on idle keep-alive connections) hold
/// RESTinio connections, whose destructors use the server's connection limiter: they must go
/// while the server still exists, not when the io_context is destroyed after it.
struct IoContext : asio::io_context {
  explicit IoContext(int concurrency_hint) : asio::io_context(concurrency_hint) {}
  /// Destroys every pending handler (asio's execution_context::shutdown, which the destructor
  /// would run anyway; a second run finds nothing left). Only once the threads have stopped.
  void destroy_pending_handlers() { shutdown(); }
};

/// Everything but the RESTinio server type, which depends on plain or TLS traits.
struct HttpServer::Impl {
  virtual ~Impl() = default;
  virtual void open() = 0;
  /// Closes the listener (on RESTinio's open/close strand) and calls `done`.
  virtual void close_async(std::function<void()> done) = 0;
  virtual void close_now() = 0;  ///< before start(): no thread runs the io_context

  Impl(const HttpConfig& cfg, Router& r, Tick t)
      : router(r),
        on_tick(std::move(t)),
        threads_wanted(std::clamp(cfg.threads, kMinHttpThreads, kMaxHttpThreads)),
        io(static_cast<int>(threads_wanted)),
        ws_options{cfg.ws_ping_interval, cfg.ws_idle_timeout} {}

  void schedule_tick() {
    timer.expires_after(kTickInterval);
    timer.async_wait([this](const asio::error_code& ec) {
      if (ec || stopping.load()) return;
      if (on_tick) on_tick(unix_now_ms());
      schedule_tick();
    });
  }

  template <typename Req>
  restinio::request_handling_status_t respond(const Req& req, const Response& out, bool close) {
    auto resp = req->create_response(restinio::http_status_line_t{
        restinio::http_status_code_t{static_cast<uint16_t>(out.status)},
        std::string(reason(out.status))});
    if (!out.content_type.empty())
      resp.append_header(restinio::http_field::content_type, out.content_type);
    for (const auto& [name, value] : out.headers) resp.append_header(name, value);
    if (close || out.status >= 400) resp.connection_close();  // errors end the connection
    return resp.set_body(out.body).done();
  }

  /// Ends every WebSocket and waits until each has (their endpoint hears on_close).
  void end_websockets() {
    const auto alive = hub->stop();
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

  Router& router;
  Tick on_tick;
  unsigned threads_wanted;
  IoContext io;
  asio::steady_timer timer{io};  ///< only its own handler touches it while the pool runs
  std::shared_ptr<detail::WsHub> hub = std::make_shared<detail::WsHub>();
  detail::WsOptions ws_options;
  stun::Endpoint bound;
  bool is_tls = false;
  std::atomic<bool> stopping{false};
  std::vector<std::thread> threads;
};

namespace {

template <typename Traits>
struct ServerOf final : HttpServer::Impl {
  using Socket = typename Traits::stream_socket_t;

  ~ServerOf() override { io.destroy_pending_handlers(); }  // before `server` goes

  template <typename Extra>
  ServerOf(const HttpConfig& cfg, Router& r, HttpServer::Tick t, Extra&& extra)
      : Impl(cfg, r, std::move(t)), server(restinio::external_io_context(io), [&](auto& s) {
          const auto addr = asio::ip::make_address(cfg.listen.ip_string());
          s.address(addr)
              .port(cfg.listen.port)
              .max_parallel_connections(cfg.max_connections)
              .read_next_http_message_timelimit(kReadTimeout)
              .handle_request_timeout(kHandleTimeout)
              .write_http_response_timelimit(kWriteTimeout)
              .incoming_http_msg_limits(
                  restinio::incoming_http_msg_limits_t{}
                      .max_url_size(cfg.max_request_bytes * kHardLimitFactor)
                      .max_field_name_size(kMaxFieldNameBytes)
                      .max_field_value_size(cfg.max_request_bytes)
                      .max_field_count(kMaxFields)
                      .max_body_size(cfg.max_request_bytes * kHardLimitFactor))
              .acceptor_post_bind_hook([this](asio::ip::tcp::acceptor& a) {
                const auto ep = a.local_endpoint();
                bound = *stun::Endpoint::parse_ip(ep.address().to_string(), ep.port());
              })
              .request_handler([this](auto req) { return serve(std::move(req)); });
          extra(s);
        }) {}

  void open() override { server.open_sync(); }
  void close_now() override { server.close_sync(); }
  void close_async(std::function<void()> done) override {
    server.close_async([done] { done(); }, [done](std::exception_ptr) { done(); });
  }

  restinio::request_handling_status_t serve(restinio::request_handle_t req) {
    const core::TimeMs now = unix_now_ms();
    const Request r = to_request(req);
    if (auto up = router.route_upgrade(r, now)) {
      if (auto* refused = std::get_if<Response>(&*up)) return respond(req, *refused, true);
      return upgrade(req, std::get<WsAccept>(std::move(*up)));
    }
    // A request that asked for an upgrade we do not do ends its connection after the answer.
    return respond(req, router.handle(r, now), !r.upgrade.empty());
  }

  /// Takes the socket out of RESTinio's HTTP connection (as restinio::websocket::basic::
  /// upgrade does) and hands it to our own WsSession: RESTinio's WebSocket connection
  /// resizes its buffer to each frame's declared length before reading it (ws_connection.hpp,
  /// handle_parsed_and_valid_header), so a client declaring 2^62 bytes would make it allocate
  /// that much; WsReader refuses the frame on its header instead.
  restinio::request_handling_status_t upgrade(restinio::request_handle_t& req, WsAccept acc) {
    try {
      auto conn = std::move(restinio::impl::access_req_connection(*req));
      if (!conn) throw std::runtime_error("the connection was already taken");
      auto& http_conn = dynamic_cast<restinio::impl::connection_t<Traits>&>(*conn);
      auto internals = http_conn.move_upgrade_internals();
      // internals.m_lifetime_monitor ends with this scope: the socket leaves the HTTP
      // connection count (max_connections); the endpoint limits WebSockets.
      auto session = std::make_shared<detail::WsSession<Socket>>(
          io, std::move(internals.m_socket), *acc.endpoint, acc.session, hub, ws_options);
      session->start(
          "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
          "Connection: Upgrade\r\nSec-WebSocket-Accept: " +
          acc.accept_key + "\r\n\r\n");
    } catch (const std::exception& e) {
      log::warn("http: WebSocket upgrade failed: ", e.what());
      acc.endpoint->on_close(acc.session);
      return restinio::request_rejected();
    }
    return restinio::request_accepted();
  }

  restinio::http_server_t<Traits> server;
};

}  // namespace

HttpServer::HttpServer(const HttpConfig& cfg, Router& router, Tick on_tick) {
  const std::string where = cfg.listen.to_string();
  if (cfg.tls) {
    auto ctx = std::make_shared<asio::ssl::context>(load_tls(*cfg.tls));
    impl_ = std::make_unique<ServerOf<TlsTraits>>(
        cfg, router, std::move(on_tick), [ctx](auto& s) { s.tls_context(std::move(*ctx)); });
    impl_->is_tls = true;
  } else {
    impl_ = std::make_unique<ServerOf<PlainTraits>>(cfg, router, std::move(on_tick), [](auto&) {});
  }
  try {
    impl_->open();  // binds and listens now; accepting starts when the threads run
  } catch (const std::exception& e) {
    throw std::runtime_error("cannot listen for HTTP on " + where + ": " + e.what() +
                             " (is another process using it? set http.listen)");
  }
}

HttpServer::~HttpServer() { stop(); }

const stun::Endpoint& HttpServer::local_endpoint() const { return impl_->bound; }
bool HttpServer::tls() const { return impl_->is_tls; }
size_t HttpServer::websockets() const { return impl_->hub->size(); }

void HttpServer::start() {
  if (!impl_->threads.empty() || impl_->stopping.load()) return;
  impl_->schedule_tick();
  for (unsigned i = 0; i < impl_->threads_wanted; ++i) {
    impl_->threads.emplace_back([impl = impl_.get()] {
      try {
        impl->io.run();
      } catch (const std::exception& e) {
        log::error("http: server thread stopped: ", e.what());
      }
    });
  }
}

void HttpServer::stop() {
  if (!impl_ || impl_->stopping.exchange(true)) return;
  if (impl_->threads.empty()) {
    impl_->close_now();
    return;
  }
  std::promise<void> closed;
  impl_->close_async([&closed] { closed.set_value(); });
  closed.get_future().wait();
  impl_->end_websockets();
  impl_->io.stop();  // also drops idle keep-alive connections
  for (auto& t : impl_->threads) t.join();
  impl_->threads.clear();
}

}  // namespace callrelay::http
