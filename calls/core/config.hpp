// The `calls:` configuration section as plain values, filled in by config/.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace callrelay::calls {

/// Timeouts and limits of the call state machine.
struct EngineConfig {
  uint32_t ring_timeout_ms = 45'000;      ///< calls.ring_timeout_s: ringing -> missed
  uint32_t connect_timeout_ms = 30'000;   ///< calls.connect_timeout_s: connecting -> failed
  uint32_t grace_ms = 20'000;             ///< calls.grace_s: a dropped device may resume
  uint32_t max_duration_ms = 14'400'000;  ///< calls.max_duration_s: active -> completed
  bool call_waiting = false;              ///< calls.call_waiting: ring a callee who is in a call
  uint32_t max_devices_per_user = 16;     ///< calls.max_devices_per_user (more: refused)
  uint32_t max_calls_per_device = 8;      ///< live calls a device may take part in
  uint32_t max_held_candidates = 64;      ///< per direction, held until usable
};

/// Limits on what clients send.
struct MessageLimits {
  size_t max_message_bytes = 65536;  ///< calls.max_message_bytes: one WebSocket text message
  size_t max_sdp_bytes = 32768;
  size_t max_candidate_bytes = 1024;
  size_t max_user_id_bytes = 256;
  size_t max_reason_bytes = 128;
};

/// The webhook that receives each record when its call ends.
struct WebhookConfig {
  std::string url;                  ///< calls.webhook.url; "": no webhook
  std::string secret;               ///< calls.webhook.secret: HMAC-SHA256 key
  uint32_t timeout_ms = 5000;       ///< calls.webhook.timeout_s
  uint32_t max_attempts = 8;        ///< calls.webhook.max_attempts
  size_t queue_size = 10000;        ///< calls.webhook.queue_size: beyond, records are not sent
};

struct CallsConfig {
  bool enabled = true;             ///< calls.enabled: the signaling endpoint and records API
  std::string token_secret;        ///< calls.token_secret; "": state_dir/signal-secret
  uint32_t max_token_ttl_s = 3600; ///< calls.max_token_ttl_s
  uint32_t credential_ttl_s = 900; ///< calls.credential_ttl_s: call-scoped TURN credentials
  uint32_t max_connections = 10000;  ///< calls.max_connections: signaling WebSockets
  /// calls.max_connections_per_address: signaling WebSockets one source address may hold
  /// (a NAT with many users shares one address: raise it for such sites).
  uint32_t max_connections_per_address = 100;
  uint32_t messages_per_second = 50; ///< calls.messages_per_second per device (burst 2x)
  std::string records_path;        ///< calls.records.path; "": state_dir/calls.sqlite3
  EngineConfig engine;
  MessageLimits limits;
  WebhookConfig webhook;
};

}  // namespace callrelay::calls
