#include "app/http_service.hpp"

#include "app/admin_views.hpp"
#include "relay/net/worker.hpp"

namespace callrelay::app {

std::vector<std::string> turn_uris(const config::Config& cfg, const net::Server& relay) {
  if (!cfg.api.uris.empty()) return cfg.api.uris;
  std::vector<stun::Endpoint> tcp, tls;
  for (const auto& l : relay.stream_listening())
    (l.transport == core::Transport::kTls ? tls : tcp).push_back(l.endpoint);
  return http::derive_turn_uris(cfg.api.public_host, relay.listening(), tcp, tls);
}

HttpService::HttpService(const config::Config& cfg, core::Authenticator& auth,
                         telemetry::Telemetry& metrics, const http::Readiness& readiness,
                         net::Server& relay, base::LimitCounters* limits)
    : keys_(cfg.api.keys),
      api_(cfg.api, turn_uris(cfg, relay), cfg.auth.rest_separator, auth, keys_),
      admin_(keys_,
             http::AdminApi::Actions{
                 [&relay](const std::string& user) {
                   return relay.end_user_counted(user, core::EndReason::kAdminEnded, kAdminWait);
                 },
                 [&relay](unsigned worker, uint64_t id) {
                   return relay.end_allocation(worker, id, core::EndReason::kAdminEnded,
                                               kAdminWait);
                 },
                 [this](std::optional<uint32_t> deadline_s) -> uint32_t {
                   return drain_ ? drain_(deadline_s) : 0;
                 },
                 [this, &metrics, &relay, &readiness] {
                   return admin_status(metrics, relay, readiness,
                                       drain_left_ ? drain_left_() : std::nullopt, net::now_ms());
                 },
                 [&metrics] { return admin_allocations(metrics, net::now_ms()); }}),
      router_(cfg.http.max_request_bytes, api_, readiness,
              [this, &metrics](core::TimeMs) {
                // Telemetry compares with the core's times: its clock, not the HTTP wall time.
                std::string text = metrics.scrape_text(net::now_ms());
                for (const auto& scrape : scrapes_) text += scrape();
                return text;
              }),
      server_(cfg.http, router_, [this, &metrics, &auth](core::TimeMs now) {
        metrics.tick(net::now_ms());   // the core's monotonic clock, like allocations' starts
        auth.prune_revocations(now);  // revocations are wall-time entries: the HTTP wall now
        for (const auto& tick : ticks_) tick(now);
      }, limits) {
  // A revoked credential stops relaying at once, on every worker (not only at its Refresh).
  api_.set_on_revoked([&relay](const std::string& username) { relay.end_username(username); });
  router_.add_route("/api/v1/admin/", [this](const http::Request& req, core::TimeMs now) {
    return admin_.handle(req, now);
  });
}

std::unique_ptr<HttpService> make_http_service(const config::Config& cfg, core::Authenticator& auth,
                                               telemetry::Telemetry& metrics,
                                               const http::Readiness& readiness,
                                               net::Server& relay,
                                               base::LimitCounters* limits) {
  if (!cfg.http.enabled) return nullptr;
  return std::make_unique<HttpService>(cfg, auth, metrics, readiness, relay, limits);
}

}  // namespace callrelay::app
