#include "telemetry/log_observer.hpp"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <sstream>

#include "base/log.hpp"

namespace callrelay::telemetry {
namespace {

/// Appends `s` as a JSON string literal (RFC 8259 section 7 escapes).
void json_string(std::ostringstream& out, std::string_view s) {
  out << '"';
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out << '\\' << ch;
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", c);
      out << buf;
    } else {
      out << ch;
    }
  }
  out << '"';
}

/// "2026-01-31T12:00:00.123Z".
std::string iso_time(core::TimeMs ms) {
  const core::TimeMs floor_s = ms >= 0 ? ms / 1000 : (ms - 999) / 1000;  // before 1970: floor
  const std::time_t secs = static_cast<std::time_t>(floor_s);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[96];
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(ms - floor_s * 1000));
  return buf;
}

}  // namespace

std::string allocation_json(const core::AllocationInfo& a, core::EndReason reason,
                            core::TimeMs now) {
  return allocation_json(a, reason, now, now);
}

std::string allocation_json(const core::AllocationInfo& a, core::EndReason reason,
                            core::TimeMs now, core::TimeMs end_unix_ms) {
  const core::TimeMs duration = std::max<core::TimeMs>(now - a.started, 0);
  std::ostringstream out;
  out << "{\"event\":\"allocation_ended\",\"user_id\":";
  json_string(out, a.user_id);
  out << ",\"realm\":";
  json_string(out, a.realm);
  out << ",\"transport\":\"" << core::to_string(a.client.transport) << '"' << ",\"client\":\""
      << a.client.client.to_string() << '"' << ",\"server\":\"" << a.client.server.to_string()
      << '"' << ",\"relayed\":\"" << a.relayed.to_string() << '"';
  // A dual allocation (RFC 8656 section 7.2) has a second, IPv6 relayed address.
  if (a.relayed_additional) {
    out << ",\"relayed_additional\":\"" << a.relayed_additional->to_string() << '"';
  }
  out << ",\"start\":\"" << iso_time(end_unix_ms - duration) << '"' << ",\"end\":\""
      << iso_time(end_unix_ms) << '"' << ",\"duration_ms\":" << duration
      << ",\"bytes_to_peer\":" << a.traffic.bytes_to_peer.get()
      << ",\"packets_to_peer\":" << a.traffic.packets_to_peer.get()
      << ",\"bytes_to_client\":" << a.traffic.bytes_to_client.get()
      << ",\"packets_to_client\":" << a.traffic.packets_to_client.get()
      << ",\"peers_contacted\":" << a.peers_contacted << ",\"reason\":\"" << core::to_string(reason)
      << "\"}";
  return out.str();
}

void LogObserver::on_allocation_created(const core::AllocationInfo&) {
  counts_.allocations_created.add(1);
}

void LogObserver::on_allocation_ended(const core::AllocationInfo& a, core::EndReason reason,
                                      core::TimeMs now) {
  counts_.allocations_ended.add(1);
  if (!log::enabled(log::Level::kInfo)) return;
  // Already one JSON object: written as it is in text mode, merged into the line in json mode.
  log::record(log::Level::kInfo,
              allocation_json(a, reason, now, wall_ != nullptr ? wall_->unix_ms() : now),
              log::concat("allocation of user '", a.user_id, "' from ", a.client.client.to_string(),
                          " ended: ", core::to_string(reason)));
}

void LogObserver::on_request(stun::Method, core::Transport, uint16_t code) {
  counts_.requests.add(1);
  if (code != 0) counts_.error_responses.add(1);
}

void LogObserver::on_auth_failure(core::AuthFailure why) {
  counts_.auth_failures.add(1);
  // A stale nonce is the normal start of every authenticated exchange (RFC 8489 section 9.2):
  // not worth a line. The rest come from clients anyone can run: a budget of lines, shared by
  // every worker, that never blocks the packet thread.
  if (why == core::AuthFailure::kStaleNonce) return;
  static log::RateLimit budget(10, 1000);
  log::limited(budget, nullptr, log::Level::kInfo, "auth.failed",
               {{"reason", core::to_string(why)}}, "TURN authentication failed: ",
               core::to_string(why));
}

void LogObserver::on_peer_denied(core::PeerDenyReason) { counts_.peers_denied.add(1); }

void LogObserver::on_drop(core::DropReason) { counts_.drops.add(1); }

}  // namespace callrelay::telemetry
