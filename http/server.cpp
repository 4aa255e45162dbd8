#include "http/server.hpp"

#include <restinio/all.hpp>
#include <restinio/tls.hpp>

#include <chrono>
#include <stdexcept>
#include <thread>

#include "base/log.hpp"

namespace callrelay::http {
namespace {

constexpr size_t kMaxConnections = 256;
/// Hard cap on a request body (RESTinio drops the connection above it, without reading the
/// body); between max_request_bytes and this, the client gets a 413 answer.
constexpr size_t kHardLimitFactor = 4;
constexpr size_t kMaxFieldNameBytes = 256;
constexpr size_t kMaxFields = 100;
constexpr auto kReadTimeout = std::chrono::seconds(10);
constexpr auto kHandleTimeout = std::chrono::seconds(10);
constexpr auto kWriteTimeout = std::chrono::seconds(10);
constexpr auto kTickInterval = std::chrono::seconds(1);

struct PlainTraits : restinio::default_single_thread_traits_t {
  static constexpr bool use_connection_count_limiter = true;
};
struct TlsTraits : restinio::single_thread_tls_traits_t<restinio::asio_timer_manager_t,
                                                        restinio::null_logger_t> {
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
  r.body = req->body();
  r.client_ip = req->remote_endpoint().address().to_string();
  size_t size = r.method.size() + h.request_target().size() + 12;
  h.for_each_field([&size](const auto& f) { size += f.name().size() + f.value().size() + 4; });
  r.size = size + r.body.size();
  return r;
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

/// Everything but the RESTinio server type, which depends on plain or TLS traits.
struct HttpServer::Impl {
  virtual ~Impl() = default;
  virtual void open() = 0;
  virtual void close() = 0;

  Impl(Router& r, Tick t) : router(r), on_tick(std::move(t)) {}

  void schedule_tick() {
    timer.expires_after(kTickInterval);
    timer.async_wait([this](const asio::error_code& ec) {
      if (ec || stopping) return;
      if (on_tick) on_tick(unix_now_ms());
      schedule_tick();
    });
  }

  template <typename Req>
  restinio::request_handling_status_t serve(Req req) {
    const Response out = router.handle(to_request(req), unix_now_ms());
    auto resp = req->create_response(restinio::http_status_line_t{
        restinio::http_status_code_t{static_cast<uint16_t>(out.status)},
        std::string(reason(out.status))});
    if (!out.content_type.empty())
      resp.append_header(restinio::http_field::content_type, out.content_type);
    for (const auto& [name, value] : out.headers) resp.append_header(name, value);
    if (out.status >= 400) resp.connection_close();  // errors end the connection
    return resp.set_body(out.body).done();
  }

  static const char* reason(int status) {
    switch (status) {
      case 200:
        return "OK";
      case 204:
        return "No Content";
      case 400:
        return "Bad Request";
      case 401:
        return "Unauthorized";
      case 403:
        return "Forbidden";
      case 404:
        return "Not Found";
      case 405:
        return "Method Not Allowed";
      case 413:
        return "Payload Too Large";
      case 415:
        return "Unsupported Media Type";
      case 429:
        return "Too Many Requests";
      case 503:
        return "Service Unavailable";
      default:
        return "Error";
    }
  }

  Router& router;
  Tick on_tick;
  asio::io_context io{1};
  asio::steady_timer timer{io};
  stun::Endpoint bound;
  bool is_tls = false;
  bool stopping = false;
  std::thread thread;
};

namespace {

template <typename Traits>
struct ServerOf final : HttpServer::Impl {
  template <typename Extra>
  ServerOf(const HttpConfig& cfg, Router& r, HttpServer::Tick t, Extra&& extra)
      : Impl(r, std::move(t)), server(restinio::external_io_context(io), [&](auto& s) {
          const auto addr = asio::ip::make_address(cfg.listen.ip_string());
          s.address(addr)
              .port(cfg.listen.port)
              .max_parallel_connections(kMaxConnections)
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
  void close() override { server.close_sync(); }

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
    impl_->open();  // binds and listens now; accepting starts when the thread runs
  } catch (const std::exception& e) {
    throw std::runtime_error("cannot listen for HTTP on " + where + ": " + e.what() +
                             " (is another process using it? set http.listen)");
  }
}

HttpServer::~HttpServer() { stop(); }

const stun::Endpoint& HttpServer::local_endpoint() const { return impl_->bound; }
bool HttpServer::tls() const { return impl_->is_tls; }

void HttpServer::start() {
  if (impl_->thread.joinable()) return;
  impl_->schedule_tick();
  impl_->thread = std::thread([impl = impl_.get()] {
    try {
      impl->io.run();
    } catch (const std::exception& e) {
      log::error("http: server thread stopped: ", e.what());
    }
  });
}

void HttpServer::stop() {
  if (!impl_) return;
  if (impl_->thread.joinable()) {
    asio::post(impl_->io, [impl = impl_.get()] {
      impl->stopping = true;
      impl->timer.cancel();
      impl->close();
      impl->io.stop();  // also drops idle keep-alive connections
    });
    impl_->thread.join();
  } else {
    impl_->stopping = true;
    impl_->close();
  }
}

}  // namespace callrelay::http
