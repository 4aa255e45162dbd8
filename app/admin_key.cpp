#include "app/admin_key.hpp"

#include <fcntl.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string_view>

#include "calls/core/base64url.hpp"

namespace callrelay::app {
namespace {

constexpr size_t kKeyBytes = 32;

bool openssl_random(uint8_t* out, size_t n) { return RAND_bytes(out, static_cast<int>(n)) == 1; }

std::string trim(const std::string& s) {
  const auto first = s.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return {};
  return s.substr(first, s.find_last_not_of(" \t\r\n") - first + 1);
}

/// Whether `key` can be presented as "Authorization: Bearer <key>" and is long enough.
bool well_formed(std::string_view key) {
  if (key.size() < kMinAdminKeyChars || key.size() > kMaxAdminKeyChars) return false;
  for (const char c : key)
    if (c <= ' ' || c > '~') return false;
  return true;
}

/// The file's key; throws when it exists but cannot be read or holds none. nullopt: absent.
std::optional<std::string> read_key_file(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return std::nullopt;
  std::ifstream in(path);
  if (!in) {
    throw std::runtime_error("cannot read '" + path + "': " + std::strerror(errno) +
                             " (run as the service's user or root)");
  }
  std::stringstream buf;
  buf << in.rdbuf();
  const std::string key = trim(buf.str());
  if (!well_formed(key)) {
    throw std::runtime_error("'" + path + "' does not hold an admin key (" +
                             std::to_string(kMinAdminKeyChars) + " to " +
                             std::to_string(kMaxAdminKeyChars) +
                             " printable characters): delete it to have the server make one");
  }
  return key;
}

/// Writes `key` to a private temporary file and links it to `path` unless `path` exists.
/// Returns false when `path` appeared meanwhile; throws std::runtime_error naming the file
/// on any other failure.
bool write_new(const std::string& path, const std::string& key) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  ::unlink(tmp.c_str());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) throw std::runtime_error("cannot create '" + tmp + "': " + std::strerror(errno));
  const std::string line = key + "\n";
  const bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) &&
                  ::fsync(fd) == 0;
  const int write_err = errno;
  ::close(fd);
  // link() never replaces: a server starting at the same moment keeps the key it wrote.
  const bool linked = ok && ::link(tmp.c_str(), path.c_str()) == 0;
  const int link_err = errno;
  ::unlink(tmp.c_str());
  if (!ok) throw std::runtime_error("cannot write '" + tmp + "': " + std::strerror(write_err));
  if (!linked && link_err != EEXIST)
    throw std::runtime_error("cannot create '" + path + "': " + std::strerror(link_err));
  return linked;
}

std::string make_directory(const std::filesystem::path& dir) {
  std::error_code ec;
  if (std::filesystem::is_directory(dir, ec)) return {};
  if (dir.has_parent_path()) std::filesystem::create_directories(dir.parent_path(), ec);
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
    return "cannot create the state directory '" + dir.string() + "': " + std::strerror(errno);
  return {};
}

std::string mode_warning(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || (st.st_mode & 077) == 0) return {};
  return "'" + path + "' can be read by others than its owner: chmod 600 it";
}

}  // namespace

std::string admin_key_path(const std::string& state_dir) {
  return (std::filesystem::path(state_dir) / kAdminKeyFile).string();
}

AdminKeyFile load_or_create_admin_key(const std::string& state_dir, RandomSource random) {
  AdminKeyFile out;
  out.path = admin_key_path(state_dir);
  if (auto existing = read_key_file(out.path)) {
    out.key = std::move(*existing);
    out.warning = mode_warning(out.path);
    return out;
  }
  std::array<uint8_t, kKeyBytes> bytes{};
  if (!(random ? random : openssl_random)(bytes.data(), bytes.size()))
    throw std::runtime_error("no secure random source for the admin key (OpenSSL RAND_bytes)");
  const std::string key = calls::base64url_encode(
      std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
  if (std::string problem = make_directory(std::filesystem::path(state_dir)); !problem.empty()) {
    out.warning = problem +
                  ": no admin key file (give `callrelay ctl` --key, or mark a key of "
                  "api.keys admin: true)";
    return out;
  }
  try {
    out.created = write_new(out.path, key);
  } catch (const std::runtime_error& e) {
    out.warning = std::string(e.what()) +
                  ": no admin key file (give `callrelay ctl` --key, or "
                  "mark a key of api.keys admin: true)";
    return out;
  }
  // Another server made the file first: its key is the one both accept.
  out.key = out.created ? key : read_key_file(out.path).value_or(std::string());
  if (out.key.empty()) out.warning = "'" + out.path + "' vanished while it was made: no admin key";
  return out;
}

std::optional<std::string> read_admin_key(const std::string& state_dir) {
  return read_key_file(admin_key_path(state_dir));
}

http::ApiKey admin_api_key(const std::string& key, uint32_t max_ttl_s) {
  http::ApiKey k;
  k.max_ttl_s = max_ttl_s;
  k.name = kAdminKeyName;
  k.key = key;
  k.admin = true;
  return k;
}

}  // namespace callrelay::app
