// The names the shared state uses in Redis, all under one prefix ("callrelay:" by default, so
// that several deployments, or tests, can share one Redis by prefix).
//
//   <prefix>revoked:<username>   the wall time (Unix ms) a revocation lasts until; expires then
//   <prefix>revocations          the channel every revocation is published on (JSON)
//   <prefix>quota:<user>         hash: instance id -> that instance's live allocations of user
//   <prefix>instance:<id>        an instance's load and health (JSON), expiring a few seconds
//                                after its last refresh: a missing key is a dead instance
#pragma once

#include <string>
#include <string_view>

namespace callrelay::cluster {

inline constexpr std::string_view kDefaultPrefix = "callrelay:";

struct SharedKeys {
  std::string prefix = std::string(kDefaultPrefix);

  std::string revoked(std::string_view username) const { return prefix + "revoked:" + std::string(username); }
  std::string revoked_pattern() const { return glob_escaped() + "revoked:*"; }
  std::string revocation_channel() const { return prefix + "revocations"; }
  std::string quota(std::string_view user) const { return prefix + "quota:" + std::string(user); }
  std::string quota_pattern() const { return glob_escaped() + "quota:*"; }
  std::string instance_prefix() const { return prefix + "instance:"; }
  std::string instance(std::string_view id) const { return instance_prefix() + std::string(id); }
  std::string instance_pattern() const { return glob_escaped() + "instance:*"; }

  /// The prefix with SCAN MATCH's glob characters escaped.
  std::string glob_escaped() const {
    std::string out;
    for (const char c : prefix) {
      if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') out.push_back('\\');
      out.push_back(c);
    }
    return out;
  }
};

}  // namespace callrelay::cluster
