#include "config/calls_section.hpp"

namespace callrelay::config::detail {
namespace {

constexpr int64_t kMaxTimeoutS = 3600;
constexpr int64_t kMaxDurationS = 7 * 86400;
constexpr size_t kMinSecretBytes = 32;  // HS256 key: as long as the hash (RFC 7518 section 3.2)

/// Seconds as milliseconds, within [min_s, max_s].
void seconds(Reader& r, const Field& f, int64_t min_s, int64_t max_s, uint32_t& out_ms) {
  if (auto n = r.integer(f, min_s, max_s)) out_ms = static_cast<uint32_t>(*n * 1000);
}

template <typename T>
void number(Reader& r, const Field& f, int64_t min, int64_t max, T& out) {
  if (auto n = r.integer(f, min, max)) out = static_cast<T>(*n);
}

void read_webhook(Reader& r, const Field& f, calls::WebhookConfig& out) {
  r.read_map(f, {
      {"url",
       [&](const Field& u) {
         const auto s = r.string(u);
         if (!s) return;
         if (s->rfind("https://", 0) != 0 && s->rfind("http://", 0) != 0) {
           r.error(u, "must be an http:// or https:// URL, not '" + *s + "'");
           return;
         }
         out.url = *s;
       }},
      {"secret",
       [&](const Field& s) {
         const auto v = r.string(s);
         if (v && v->size() < 16) {
           r.error(s, "must have at least 16 characters (it signs every post)");
           return;
         }
         if (v) out.secret = *v;
       }},
      {"timeout_s",
       [&](const Field& t) {
         uint32_t ms = 0;
         seconds(r, t, 1, 120, ms);
         if (ms != 0) out.timeout_ms = ms;
       }},
      {"max_attempts", [&](const Field& m) { number(r, m, 1, 100, out.max_attempts); }},
      {"queue_size", [&](const Field& q) { number(r, q, 1, 1'000'000, out.queue_size); }},
  });
  if (!out.url.empty() && out.secret.empty()) {
    r.error(f, "needs a secret to sign the posts (calls.webhook.secret)");
  }
}

}  // namespace

void read_calls_section(Reader& reader, const Field& f, calls::CallsConfig& out,
                        const std::filesystem::path& base_dir) {
  Reader& r = reader;
  calls::EngineConfig& e = out.engine;
  r.read_map(f, {
      {"enabled",
       [&](const Field& v) {
         if (auto b = r.boolean(v)) out.enabled = *b;
       }},
      {"token_secret",
       [&](const Field& v) {
         const auto s = r.string(v);
         if (s && s->size() < kMinSecretBytes) {
           r.error(v, "must have at least " + std::to_string(kMinSecretBytes) +
                          " characters (an HS256 key as long as the hash); or leave it out to "
                          "use the generated state_dir/signal-secret");
           return;
         }
         if (s) out.token_secret = *s;
       }},
      {"max_token_ttl_s", [&](const Field& v) { number(r, v, 60, 7 * 86400, out.max_token_ttl_s); }},
      {"credential_ttl_s", [&](const Field& v) { number(r, v, 60, 86400, out.credential_ttl_s); }},
      {"max_connections", [&](const Field& v) { number(r, v, 1, 1'000'000, out.max_connections); }},
      {"max_connections_per_address",
       [&](const Field& v) { number(r, v, 1, 1'000'000, out.max_connections_per_address); }},
      {"messages_per_second", [&](const Field& v) { number(r, v, 1, 10'000, out.messages_per_second); }},
      {"max_message_bytes",
       [&](const Field& v) { number(r, v, 4096, 1024 * 1024, out.limits.max_message_bytes); }},
      {"ring_timeout_s", [&](const Field& v) { seconds(r, v, 1, kMaxTimeoutS, e.ring_timeout_ms); }},
      {"connect_timeout_s",
       [&](const Field& v) { seconds(r, v, 1, kMaxTimeoutS, e.connect_timeout_ms); }},
      {"grace_s", [&](const Field& v) { seconds(r, v, 1, kMaxTimeoutS, e.grace_ms); }},
      {"max_duration_s",
       [&](const Field& v) { seconds(r, v, 60, kMaxDurationS, e.max_duration_ms); }},
      {"call_waiting",
       [&](const Field& v) {
         if (auto b = r.boolean(v)) e.call_waiting = *b;
       }},
      {"max_devices_per_user", [&](const Field& v) { number(r, v, 1, 1000, e.max_devices_per_user); }},
      {"records",
       [&](const Field& rec) {
         r.read_map(rec, {{"path", [&](const Field& p) {
                             const auto s = r.string(p);
                             if (!s || s->empty()) {
                               if (s) r.error(p, "must not be empty");
                               return;
                             }
                             std::filesystem::path path(*s);
                             if (path.is_relative()) path = base_dir / path;
                             out.records_path = path.string();
                           }}});
       }},
      {"webhook", [&](const Field& w) { read_webhook(r, w, out.webhook); }},
  });
  if (out.max_connections_per_address > out.max_connections)
    r.error(f, "max_connections_per_address (" + std::to_string(out.max_connections_per_address) +
                   ") must not exceed max_connections (" + std::to_string(out.max_connections) +
                   ")");
  // The SDP of an offer must fit in a message.
  if (out.limits.max_sdp_bytes + 1024 > out.limits.max_message_bytes)
    out.limits.max_sdp_bytes = out.limits.max_message_bytes - 1024;
}

}  // namespace callrelay::config::detail
