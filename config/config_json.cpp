#include "config/config_json.hpp"

#include <string>
#include <vector>

#include "cluster/redis/redis_url.hpp"
#include "relay/stun/integrity.hpp"

namespace callrelay::config {
namespace {

using nlohmann::json;

json endpoints(const std::vector<stun::Endpoint>& list) {
  json out = json::array();
  for (const auto& ep : list) out.push_back(ep.to_string());
  return out;
}

json ip_or_null(const std::optional<stun::Endpoint>& ip) {
  return ip ? json(ip->ip_string()) : json(nullptr);
}

/// Relay addresses as written: none null, one a string, several a list.
json ips_or_null(const std::vector<stun::Endpoint>& ips) {
  if (ips.empty()) return nullptr;
  if (ips.size() == 1) return ips.front().ip_string();
  json out = json::array();
  for (const auto& ip : ips) out.push_back(ip.ip_string());
  return out;
}

json cidrs(const std::vector<core::Cidr>& list) {
  json out = json::array();
  for (const auto& c : list) out.push_back(c.base.ip_string() + "/" + std::to_string(c.prefix));
  return out;
}

/// "***" for a configured secret, null for none.
json masked_or_null(const std::string& secret) {
  return secret.empty() ? json(nullptr) : json(kMasked);
}

/// A URL with the password of its user part ("https://user:pass@host/") replaced by "***".
std::string mask_url_password(const std::string& url) {
  const size_t scheme_end = url.find("://");
  if (scheme_end == std::string::npos) return url;
  const size_t authority = scheme_end + 3;
  const size_t authority_end = url.find_first_of("/?#", authority);
  const size_t at = url.rfind('@', authority_end == std::string::npos ? url.size() : authority_end);
  if (at == std::string::npos || at < authority) return url;
  const size_t colon = url.find(':', authority);
  if (colon == std::string::npos || colon > at) return url;
  return url.substr(0, colon + 1) + kMasked + url.substr(at);
}

json auth_json(const Config& cfg) {
  json secrets = json::array();
  for (size_t i = 0; i < cfg.auth.rest_secrets.size(); ++i) secrets.push_back(kMasked);
  json users = json::object();
  for (const auto& [name, password] : cfg.auth.static_users) users[name] = kMasked;
  json algorithms = json::array();
  for (const auto a : cfg.auth.password_algorithms)
    algorithms.push_back(a == stun::PasswordAlgorithm::kSha256 ? "sha256" : "md5");
  return {
      {"secrets", secrets},
      {"secret_file", cfg.auth_secret_file.empty() ? json(nullptr) : json(cfg.auth_secret_file)},
      {"separator", std::string(1, cfg.auth.rest_separator)},
      {"users", users},
      {"nonce_lifetime", cfg.nonce_lifetime_s},
      {"strict_expiry", cfg.core.strict_expiry},
      {"password_algorithms", algorithms},
      {"max_revocations", cfg.auth.max_revocations}};
}

json allocations_json(const core::CoreConfig& c) {
  return {{"default_lifetime", c.default_lifetime_s},
          {"max_lifetime", c.max_lifetime_s},
          {"permission_lifetime", c.permission_lifetime_s},
          {"channel_lifetime", c.channel_lifetime_s},
          {"reservation_lifetime", c.reservation_lifetime_s},
          {"max_per_user", c.max_allocations_per_user},
          {"max_total", c.max_allocations},
          {"max_permissions", c.max_permissions_per_allocation},
          {"max_channels", c.max_channels_per_allocation},
          {"rfc5766_channels", c.accept_rfc5766_channels},
          {"tcp_relay", c.tcp_relay},
          {"max_tcp_connections", c.max_tcp_connections_per_allocation},
          {"media_quality", c.media_quality}};
}

json limits_json(const core::AbuseConfig& a) {
  return {{"unauthenticated",
           {{"enabled", a.reflection_enabled},
            {"table_slots", a.table_slots},
            {"allowance_bytes", a.allowance_bytes},
            {"allowance_bytes_per_s", a.allowance_bytes_per_s},
            {"challenges_per_s", a.challenges_per_s},
            {"challenge_burst", a.challenge_burst}}},
          {"tcp",
           {{"max_per_address", a.tcp_max_per_address},
            {"max_total", a.tcp_max_total},
            {"unauthenticated_bytes", a.tcp_unauth_bytes},
            {"fd_reserve", a.fd_reserve}}},
          {"tls", {{"handshakes_per_s", a.tls_handshakes_per_s}}}};
}

json http_json(const http::HttpConfig& h) {
  const auto seconds = [](std::chrono::milliseconds ms) {
    return std::chrono::duration_cast<std::chrono::seconds>(ms).count();
  };
  json tls = h.tls ? json{{"cert", h.tls->cert}, {"key", h.tls->key}} : json(nullptr);
  return {{"enabled", h.enabled},
          {"listen", h.listen.to_string()},
          {"tls", tls},
          {"max_request_bytes", h.max_request_bytes},
          {"threads", h.threads},
          {"max_connections", h.max_connections},
          {"max_connections_per_address", h.max_connections_per_address},
          {"header_timeout_s", seconds(h.header_timeout)},
          {"idle_timeout_s", seconds(h.idle_timeout)},
          {"status_page", h.status_page}};
}

json api_json(const http::ApiConfig& api) {
  json keys = json::array();
  for (const auto& k : api.keys) {
    keys.push_back({{"name", k.name},
                    {"key", kMasked},
                    {"admin", k.admin},
                    {"max_ttl", k.max_ttl_s},
                    {"allowed_origins", k.allowed_origins}});
  }
  return {{"keys", keys},
          {"uris", api.uris},
          {"public_host", api.public_host.empty() ? json(nullptr) : json(api.public_host)},
          {"default_ttl", api.default_ttl_s}};
}

json calls_json(const calls::CallsConfig& c) {
  const calls::EngineConfig& e = c.engine;
  const calls::WebhookConfig& w = c.webhook;
  json webhook = w.url.empty() ? json(nullptr)
                               : json{{"url", mask_url_password(w.url)},
                                      {"secret", masked_or_null(w.secret)},
                                      {"timeout_s", w.timeout_ms / 1000},
                                      {"max_attempts", w.max_attempts},
                                      {"queue_size", w.queue_size}};
  return {{"enabled", c.enabled},
          {"token_secret", masked_or_null(c.token_secret)},
          {"max_token_ttl_s", c.max_token_ttl_s},
          {"credential_ttl_s", c.credential_ttl_s},
          {"max_connections", c.max_connections},
          {"max_connections_per_address", c.max_connections_per_address},
          {"messages_per_second", c.messages_per_second},
          {"max_message_bytes", c.limits.max_message_bytes},
          {"ring_timeout_s", e.ring_timeout_ms / 1000},
          {"connect_timeout_s", e.connect_timeout_ms / 1000},
          {"grace_s", e.grace_ms / 1000},
          {"max_duration_s", e.max_duration_ms / 1000},
          {"call_waiting", e.call_waiting},
          {"max_devices_per_user", e.max_devices_per_user},
          {"records", {{"path", c.records_path.empty() ? json(nullptr) : json(c.records_path)}}},
          {"webhook", webhook}};
}

json transport_json(const Config& cfg) {
  return {{"listen",
           {{"udp", endpoints(cfg.listen.udp)},
            {"tcp", endpoints(cfg.listen.tcp)},
            {"tls", endpoints(cfg.listen.tls)}}},
          {"relay",
           {{"ports", {{"min", cfg.relay.port_min}, {"max", cfg.relay.port_max}}},
            {"bind_ipv4", ips_or_null(cfg.relay.bind_ipv4)},
            {"bind_ipv6", ips_or_null(cfg.relay.bind_ipv6)},
            {"external_ipv4", ip_or_null(cfg.relay.external_ipv4)},
            {"external_ipv6", ip_or_null(cfg.relay.external_ipv6)},
            {"io", cfg.relay.io},
            {"multiplex_peers", cfg.relay.multiplex_peers},
            {"allocations_per_port", cfg.relay.allocations_per_port},
            {"udp_gso", cfg.relay.udp_gso}}},
          {"tls",
           {{"cert", cfg.tls.cert.empty() ? json(nullptr) : json(cfg.tls.cert)},
            {"key", cfg.tls.key.empty() ? json(nullptr) : json(cfg.tls.key)},
            {"min_version", cfg.tls.min_version},
            {"records", cfg.tls.pack_records ? "packed" : "per_frame"}}},
          {"streams",
           {{"idle_timeout", cfg.streams.idle_timeout_s},
            {"max_frame", cfg.streams.max_frame_bytes},
            {"send_queue", cfg.streams.send_queue_bytes},
            {"max_connections", cfg.streams.max_connections}}}};
}

}  // namespace

json to_masked_json(const Config& cfg) {
  json out = transport_json(cfg);
  const core::BandwidthConfig& bw = cfg.core.bandwidth;
  json alternates = endpoints(cfg.drain.alternate_servers);
  out.update(json{
      {"workers", cfg.workers},
      {"state_dir", cfg.state_dir},
      {"realm", cfg.auth.realm},
      {"software", cfg.core.software},
      {"auth", auth_json(cfg)},
      {"allocations", allocations_json(cfg.core)},
      {"binding_requires_auth", cfg.core.require_auth_for_binding},
      {"peers", {{"allow", cidrs(cfg.peers.allow)}, {"deny", cidrs(cfg.peers.deny)}}},
      {"log", {{"level", cfg.log.level}, {"format", cfg.log.format}}},
      {"telemetry",
       {{"per_allocation",
         {{"enabled", cfg.telemetry.per_allocation_enabled},
          {"max_series", cfg.telemetry.per_allocation_max_series}}},
        {"bitrate_window", cfg.telemetry.bitrate_window_s}}},
      {"http", http_json(cfg.http)},
      {"api", api_json(cfg.api)},
      {"calls", calls_json(cfg.calls)},
      {"bandwidth",
       {{"max_bps", bw.max_bps},
        {"user_max_bps", bw.user_max_bps},
        {"total_max_bps", bw.total_max_bps},
        {"burst_ms", bw.burst_ms}}},
      {"limits", limits_json(cfg.core.abuse)},
      {"drain", {{"deadline_s", cfg.drain.deadline_s}, {"alternate_servers", alternates}}},
      {"demo", {{"enabled", cfg.demo.enabled}}},
      {"cluster",
       {{"instance_id", cfg.cluster.instance_id},
        {"postgres_url", cfg.cluster.postgres_url.empty()
                             ? json(nullptr)
                             : json(mask_postgres_url(cfg.cluster.postgres_url))},
        {"redis_url", cfg.cluster.redis_url.empty()
                          ? json(nullptr)
                          : json(cluster::mask_redis_url(cfg.cluster.redis_url))},
        {"region", cfg.cluster.region},
        {"relay_uris", cfg.cluster.relay_uris}}},
  });
  return out;
}

}  // namespace callrelay::config
