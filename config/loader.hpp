// The configuration loader shared by config.cpp and the section readers that need its state
// (streams_section.cpp): the key handlers and the Loader that reads one document into a Config.
// Internal to callrelay_config.
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "config/yaml_reader.hpp"

namespace callrelay::config::detail {

using stun::Family;

inline constexpr int64_t kMaxLifetimeS = 86400;  // one day: longer lifetimes only pin state
inline constexpr int64_t kMaxWorkers = 1024;
inline constexpr int64_t kMinRelayPort = 1024;    // below: privileged, well-known services
inline constexpr int64_t kMaxChannels = 4096;     // RFC 8656 section 12: numbers 0x4000-0x4FFF
inline constexpr size_t kMaxRealmChars = 127;     // RFC 8489 section 14.9: fewer than 128 characters
inline constexpr size_t kMaxSoftwareChars = 127;  // RFC 8489 section 14.14: fewer than 128 characters
inline constexpr size_t kMaxUsernameBytes = 512;  // RFC 8489 section 14.3: less than 513 bytes
inline constexpr size_t kMaxPathChars = 4096;

using Handler = std::function<void(const Field&)>;

/// Reads one document into a Config, collecting every problem in `reader_`.
class Loader {
 public:
  Loader(std::string source, std::filesystem::path base_dir)
      : reader_(std::move(source)), base_dir_(std::move(base_dir)) {}

  /// The Config, or (when anything is wrong) throws ConfigError listing every problem.
  Config load(const std::string& yaml_text);

 private:
  // One reader per mapping or non-trivial key; each records its problems and goes on.
  void read_root(const Field& root);
  void read_listen(const Field& f);
  void read_udp(const Field& f);
  void read_relay(const Field& f);
  void read_ports(const Field& f);
  void read_auth(const Field& f);
  void read_secrets(const Field& f);
  void read_secret_file(const Field& f);
  void read_separator(const Field& f);
  void read_users(const Field& f);
  void read_password_algorithms(const Field& f);
  void read_allocations(const Field& f);
  void read_peers(const Field& f);
  void read_log(const Field& f);
  void read_telemetry(const Field& f);
  void read_log_level(const Field& f);
  void read_log_format(const Field& f);
  void check_relations();
  void resolve_secret_file();
  // TCP/TLS listeners, the certificate and stream limits (section at the end of this file).
  void read_stream_listen(const Field& f, std::vector<stun::Endpoint>& out, bool& given);
  void read_tls(const Field& f);
  void read_tls_file(const Field& f, std::string& out);
  void read_tls_min_version(const Field& f);
  void read_tls_records(const Field& f);
  void read_streams(const Field& f);
  void apply_stream_defaults();

  /// A handler calling one of the readers above.
  Handler on(void (Loader::*read)(const Field&));
  /// Handlers validating one scalar and storing it into `out`; `seen` (if given) records
  /// where a valid value came from, for checks that relate two keys.
  Handler flag(bool& out);
  Handler port(uint16_t& out, Field* seen);
  Handler u32(uint32_t& out, int64_t min, int64_t max, Field* seen = nullptr);
  Handler text(std::string& out, size_t max_chars);
  Handler address(std::optional<stun::Endpoint>& out, Family family);
  Handler cidrs(std::vector<core::Cidr>& out);

  Reader reader_;
  std::filesystem::path base_dir_;
  Config cfg_;
  bool listen_given_ = false;
  bool tcp_given_ = false, tls_given_ = false;
  Field listen_tls_, tls_cert_;
  Field ports_min_, ports_max_, default_lifetime_, max_lifetime_, secret_file_;
  Field demo_enabled_;
};

std::string family_name(stun::Family f);
std::string trim(std::string_view s);
/// Opens a file for reading; nullopt on success, else why it cannot be read.
std::optional<std::string> open_regular(const std::filesystem::path& path, std::ifstream& in);

}  // namespace callrelay::config::detail
