#include "tests/telemetry/telemetry_test_support.hpp"

#include <sstream>

namespace callrelay::telemetry::testing {

std::unique_ptr<core::AllocationInfo> fake_allocation(uint64_t id, const std::string& user_id,
                                                      core::TimeMs started, core::Transport t,
                                                      stun::Family f) {
  auto a = std::make_unique<core::AllocationInfo>();
  a->id = id;
  a->username = "1700000000:" + user_id;
  a->user_id = user_id;
  a->realm = "example.org";
  a->client.transport = t;
  a->client.client = *core::Endpoint::parse("192.0.2.1:" + std::to_string(40000 + id));
  a->client.server = *core::Endpoint::parse("198.51.100.2:3478");
  a->relayed = *core::Endpoint::parse(f == stun::Family::kIPv6 ? "[2001:db8::1]:50000"
                                                               : "203.0.113.5:50000");
  a->started = started;
  a->secret_index = 0;
  return a;
}

void relay(core::AllocationInfo& a, uint64_t to_peer_bytes, uint64_t to_client_bytes,
           uint64_t packets) {
  a.traffic.bytes_to_peer.add(to_peer_bytes);
  a.traffic.packets_to_peer.add(packets);
  a.traffic.bytes_to_client.add(to_client_bytes);
  a.traffic.packets_to_client.add(packets);
}

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

bool has_line(const std::string& text, const std::string& line) {
  for (const auto& l : lines(text)) {
    if (l == line) return true;
  }
  return false;
}

std::optional<double> value(const std::string& text, const std::string& series) {
  for (const auto& l : lines(text)) {
    if (l.size() > series.size() && l.compare(0, series.size(), series) == 0 &&
        l[series.size()] == ' ') {
      return std::stod(l.substr(series.size() + 1));
    }
  }
  return std::nullopt;
}

size_t sample_count(const std::string& text, const std::string& name) {
  size_t n = 0;
  for (const auto& l : lines(text)) {
    if (l.size() > name.size() && l.compare(0, name.size(), name) == 0 &&
        (l[name.size()] == '{' || l[name.size()] == ' ')) {
      ++n;
    }
  }
  return n;
}

}  // namespace callrelay::telemetry::testing
