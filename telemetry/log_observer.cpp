#include "telemetry/log_observer.hpp"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <string_view>
#include <utility>

#include "base/log.hpp"
#include "base/log_json.hpp"

namespace callrelay::telemetry {
namespace {

void append_number(std::string& out, uint64_t v) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

/// `,"key":"text"` for text of callrelay's own making (addresses, enum names): no escaping.
void append_plain(std::string& out, std::string_view key, std::string_view text) {
  out.append(",\"").append(key).append("\":\"").append(text).push_back('"');
}

}  // namespace

std::string allocation_json(const core::AllocationInfo& a, core::EndReason reason,
                            core::TimeMs now) {
  return allocation_json(a, reason, now, now);
}

std::string allocation_json(const core::AllocationInfo& a, core::EndReason reason,
                            core::TimeMs now, core::TimeMs end_unix_ms) {
  const core::TimeMs duration = std::max<core::TimeMs>(now - a.started, 0);
  // Appended into one buffer: written for every allocation that ends, so a burst of expiries
  // is a burst of these lines, on the worker's thread between its packets.
  std::string out;
  out.reserve(512);
  out.append("{\"event\":\"allocation_ended\",\"user_id\":");
  log::append_json_string(out, a.user_id);  // client-chosen bytes: escaped
  out.append(",\"realm\":");
  log::append_json_string(out, a.realm);
  append_plain(out, "transport", core::to_string(a.client.transport));
  append_plain(out, "client", a.client.client.to_string());
  append_plain(out, "server", a.client.server.to_string());
  append_plain(out, "relayed", a.relayed.to_string());
  // A dual allocation (RFC 8656 section 7.2) has a second, IPv6 relayed address.
  if (a.relayed_additional) {
    append_plain(out, "relayed_additional", a.relayed_additional->to_string());
  }
  append_plain(out, "start", log::rfc3339_ms(end_unix_ms - duration));
  append_plain(out, "end", log::rfc3339_ms(end_unix_ms));
  out.append(",\"duration_ms\":");
  append_number(out, static_cast<uint64_t>(duration));
  const std::pair<std::string_view, uint64_t> counts[] = {
      {"bytes_to_peer", a.traffic.bytes_to_peer.get()},
      {"packets_to_peer", a.traffic.packets_to_peer.get()},
      {"bytes_to_client", a.traffic.bytes_to_client.get()},
      {"packets_to_client", a.traffic.packets_to_client.get()},
      {"peers_contacted", a.peers_contacted}};
  for (const auto& [key, value] : counts) {
    out.append(",\"").append(key).append("\":");
    append_number(out, value);
  }
  append_plain(out, "reason", core::to_string(reason));
  out.push_back('}');
  return out;
}

void LogObserver::on_allocation_created(const core::AllocationInfo&) {
  counts_.allocations_created.add(1);
}

void LogObserver::on_allocation_ended(const core::AllocationInfo& a, core::EndReason reason,
                                      core::TimeMs now) {
  counts_.allocations_ended.add(1);
  if (!log::enabled(log::Level::kInfo)) return;
  // Already one JSON object: written as it is in text mode, merged into the line in json mode.
  // Only a json line carries the message (an info line is not kept for recent_lines): in text
  // mode it is not built, a stream and a string per line saved in a burst of expiries.
  std::string message;
  if (log::format() == log::Format::kJson) {
    message = log::concat("allocation of user '", a.user_id, "' from ",
                          a.client.client.to_string(), " ended: ", core::to_string(reason));
  }
  log::record(log::Level::kInfo,
              allocation_json(a, reason, now, wall_ != nullptr ? wall_->unix_ms() : now),
              message);
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
